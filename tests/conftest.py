"""Shared fixtures. The real default model is loaded once per session (its GGUF conversion
is cached under $MECHINTERP_CACHE after the first run); unit tests use tiny random models."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")



@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


# fixtures that load a real model; a test that uses one (directly or through another fixture) is
# marked slow, so `make test-fast` (-m "not slow") leaves it out
REAL_MODEL_FIXTURES = {"smollm2", "smollm2_store", "smollm2_sae", "shift_sae", "shift_result", "residue_dump", "exact_sae",
                       "sapiens"}
LAYERS = {"unit": "no real model", "model": "the real small models", "system": "stages end to end",
          "peer": "peers in their own environments"}


def pytest_collection_modifyitems(config, items):
    """Every test lives in one layer (tests/<layer>/); a unit test may not load a real model."""
    for item in items:
        layer = Path(str(item.fspath)).parent.name
        if layer not in LAYERS:
            raise pytest.UsageError(f"{item.nodeid}: tests live in tests/{{{','.join(LAYERS)}}}/")
        real = REAL_MODEL_FIXTURES & set(getattr(item, "fixturenames", ()))
        if real and layer == "unit":
            raise pytest.UsageError(f"{item.nodeid} loads a real model ({', '.join(sorted(real))}): move it to tests/model/")
        if real or layer in ("system", "peer"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def smollm2():
    from extract.models import load_model

    return load_model("smollm2-135m-q4", device="cpu")


@pytest.fixture(scope="session")
def gpt2_tok():
    from extract.models import gpt2_tokenizer

    return gpt2_tokenizer()


@pytest.fixture(scope="session")
def tiny_model_factory(gpt2_tok):
    from extract.hooked import HookedModel
    from extract.tiny_models import tiny_hf_model

    def make(family: str, **overrides) -> HookedModel:
        model = tiny_hf_model(family, **overrides)
        return HookedModel(model, gpt2_tok, name=f"tiny-{family}", bos_token_id=gpt2_tok.eos_token_id)
    return make


@pytest.fixture(scope="session")
def docs_dir(tmp_path_factory):
    """40 short English documents (BBC articles cut to 400 characters): a small, fast corpus."""
    from extract.corpus import open_corpus

    root = tmp_path_factory.mktemp("docs")
    bbc = open_corpus("bbc")
    for i in range(40):
        (root / f"{i:02d}.txt").write_text(bbc[i * 50][:400])
    return root


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory, gpt2_tok):
    """A tiny random Llama saved as a local model directory, loadable by scripts in subprocesses."""
    import torch
    import transformers as tf

    torch.manual_seed(0)
    cfg = tf.LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=50257)
    path = tmp_path_factory.mktemp("tiny-llama")
    tf.LlamaForCausalLM(cfg).save_pretrained(path)
    gpt2_tok.save_pretrained(path)
    return path


def run_script(*args: str, env: dict | None = None, timeout: int = 600):
    """Run one of scripts/ with the test interpreter; returns the CompletedProcess."""
    import subprocess

    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


# --------------------------------------------------------------------- real data, once per session
# One store and one SAE serve every test on real activations (the SHIFT tests included): SmolLM2
# on synthetic biographies (the SHIFT training split) at blocks.4.hook_resid_pre, where the
# SHIFT probe reads; a layer-4 dump costs a few seconds.
REAL_HOOK = "blocks.4.hook_resid_pre"
SAE_TEST_STEPS = 300


@pytest.fixture(scope="session")
def smollm2_store(smollm2, tmp_path_factory) -> Path:
    from extract.biographies import corpus_bios, write_jsonl
    from extract.dump import DumpConfig, dump_activations

    root = tmp_path_factory.mktemp("smollm2_store")
    write_jsonl(corpus_bios(1500, seed=1), root / "bios.jsonl")
    (result,) = dump_activations(DumpConfig(model=smollm2.name, hooks=(REAL_HOOK,), n_tokens=48_000,
                                            out=str(root / "acts"), corpus=f"dir:{root / 'bios.jsonl'}",
                                            progress=False), model=smollm2)
    return result.path


@pytest.fixture(scope="session")
def smollm2_sae(smollm2_store, tmp_path_factory) -> tuple[Path, dict]:
    """(export directory, held-out metrics) of a TopK SAE (2048 latents, k 32) trained on smollm2_store.
    SMOLLM2_TEST_SAE=<out dir of an earlier run> reuses one."""
    from sae_jax.config import TrainConfig
    from sae_jax.pipeline import train_sae

    if os.environ.get("SMOLLM2_TEST_SAE"):
        out = Path(os.environ["SMOLLM2_TEST_SAE"])
        return out / "sae", json.loads((out / "sae" / "metrics.json").read_text())
    out = tmp_path_factory.mktemp("smollm2_sae")
    metrics = train_sae(smollm2_store, out, dict(arch="topk", d_sae=2048, k=32),
                        TrainConfig(steps=SAE_TEST_STEPS, batch=1024, eval_tokens=2048, ckpt_every=SAE_TEST_STEPS,
                                    progress=False))
    return out / "sae", metrics


def execute_notebook(name: str, cwd: Path, timeout: int = 600) -> tuple[str, str]:
    """Run notebooks/<name> top to bottom in the 'python3' kernel (jupyter starts it with this
    interpreter; the kernel inherits os.environ) in `cwd`, so that what it writes under runs/
    stays out of the repository; returns (text outputs, HTML outputs)."""
    import nbclient
    import nbformat

    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
    nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    return ("".join(o.get("text", "") for o in outputs),
            "".join(str(o.get("data", {}).get("text/html", "")) for o in outputs))


# --- antibody models: a residue dump of the tiny real sapiens-vh model, and an SAE that is exact on it
@pytest.fixture(scope="session")
def residue_dump(tmp_path_factory):
    from extract.bio.dump import BioDumpConfig, dump_residues

    out = tmp_path_factory.mktemp("bio") / "acts"
    cfg = BioDumpConfig(model="sapiens-vh", sequences="abnativ:vh", n_sequences=40, layers="1,3", ctx=32,
                        hooks=("blocks.{L}.hook_normalized_resid_post", "blocks.{L}.mlp.hook_post"), out=str(out),
                        device="cpu", progress=False,
                        batch=16)
    return out, cfg, dump_residues(cfg)



@pytest.fixture(scope="session")
def exact_sae(residue_dump, tmp_path_factory):
    """(SAE export, bio-eval results): latents = the residual dimensions of blocks.3 with either sign."""
    import numpy as np

    from interventions.bio.evaluate import BioEvalConfig, evaluate
    from mechinterp.formats.sae import export_sae
    from mechinterp.formats.store import open_store

    out, _, _ = residue_dump
    hook = "blocks.3.hook_normalized_resid_post"
    store = open_store(out / hook)
    eye = np.eye(store.d_model, dtype=np.float32)
    weights = dict(W_enc=np.concatenate([eye, -eye], 1), b_enc=np.zeros(2 * store.d_model, np.float32),
                   W_dec=np.concatenate([eye, -eye], 0), b_dec=np.zeros(store.d_model, np.float32))
    sae = export_sae(tmp_path_factory.mktemp("exact") / "sae", weights, "relu", 0, 1.0, store.meta, str(out / hook),
                     {}, {})
    return sae, evaluate(BioEvalConfig(sae=str(sae), n_loss_sequences=8, device="cpu"))
