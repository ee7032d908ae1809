"""Model registry, loading, devices, bad input, and the smoke stage."""

from __future__ import annotations

import pytest
import torch
from conftest import run_script

from extract import models
from extract.models import ModelLoadError, load_model, resolve_device

PROMPT = "When Mary and John went to the store, John gave a drink to"


def test_default_model_answers_ioi(smollm2):
    assert smollm2.config.model_type == "llama" and smollm2.n_layers == 30 and smollm2.d_model == 576
    toks = smollm2.to_tokens(PROMPT, prepend_bos=False)
    with torch.no_grad():
        logits = smollm2(toks)[0, -1]
    diff = float(logits[smollm2.to_single_token(" Mary")] - logits[smollm2.to_single_token(" John")])
    assert 5.0 < diff < 7.5  # DESIGN.md: about 6 logits
    assert smollm2.to_str_tokens(smollm2.to_tokens("Hi"))[0] == "<|endoftext|>"


def test_converted_cache_is_reused(smollm2):
    spec = models.REGISTRY["smollm2-135m-q4"]
    path = models.converted_dir(spec)
    assert (path / "source.json").exists() and (path / "model.safetensors").exists()
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    again = load_model("smollm2-135m-q4", device="cpu")
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp  # read again, not converted again
    assert torch.equal(again.model.model.norm.weight, smollm2.model.model.norm.weight)


def test_gpt2_random_has_gpt2_small_shapes_and_real_bpe():
    m = load_model("gpt2-random", device="cpu")
    assert (m.n_layers, m.d_model, m.n_heads, m.d_vocab) == (12, 768, 12, 50257)
    assert m.to_tokens(PROMPT, prepend_bos=False)[0, :4].tolist() == [2215, 5335, 290, 1757]
    _, cache = m.run_with_cache(m.to_tokens(PROMPT), names=["blocks.6.hook_resid_pre"], stop_at_layer=7)
    assert cache["blocks.6.hook_resid_pre"].shape == (1, 15, 768)


def test_unknown_model_lists_the_registry():
    with pytest.raises(ModelLoadError, match="unknown model 'gtp2'.*smollm2-135m-q4.*gpt2"):
        load_model("gtp2")


def test_hub_unreachable_fails_fast_with_advice(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty local cache
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(models, "_hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(ModelLoadError, match="cannot reach the Hugging Face hub.*smollm2-135m-q4"):
        load_model("gpt2", device="cpu")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE"):
        load_model("EleutherAI/pythia-70m", device="cpu")


def test_devices():
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ModelLoadError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="no CUDA device"):
            resolve_device("cuda")


def test_interrupted_conversion_is_not_taken_for_a_finished_one(tmp_path, monkeypatch):
    monkeypatch.setenv("MECHINTERP_CACHE", str(tmp_path))
    half = tmp_path / "models" / "smollm2-135m-q4"
    half.mkdir(parents=True)
    (half / "config.json").write_text("{}")  # a conversion killed before source.json
    calls = []

    def fake_run(cmd, **kw):  # stands in for the child process; we only check it is started again
        calls.append(cmd)
        raise KeyboardInterrupt
    monkeypatch.setattr(models.subprocess, "run", fake_run)
    with pytest.raises(KeyboardInterrupt):
        models.converted_dir(models.REGISTRY["smollm2-135m-q4"])
    assert calls and calls[0][2] == "extract.convert_gguf"


@pytest.mark.slow  # fresh interpreters in subprocesses
def test_smoke_stage_prints_what_the_seed_asks():
    proc = run_script("scripts/smoke.py", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "device: cpu" in out
    assert "logits shape: (1, 15, 49152)" in out
    assert "activation hook shape: (1, 15, 576)  (blocks.15.hook_resid_pre)" in out
    assert "top next tokens: ' Mary'" in out


@pytest.mark.slow  # a fresh interpreter
def test_smoke_script_bad_input_is_one_line_and_exit_2():
    """The script as a real process; its other bad inputs are rows of tests/system/test_bad_inputs.py."""
    proc = run_script("scripts/smoke.py", "--model", "nope")
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: unknown model 'nope'") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
