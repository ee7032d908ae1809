"""Every reuse and resume is keyed on content: change an input in place (the model's weights, a
transcoder set, the activations, a setting) and the stage recomputes or refuses, saying what
changed; it never hands back the old result."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field

import pytest
import torch
from builders import random_transcoders, write_set

from mechinterp.cli import main as cli

PROMPT = "When Mary and John went to the store, John gave a drink to"
DUMP = ["--corpus", "dir:{docs}", "--ctx", "16", "--n_tokens", "600", "--hook", "blocks.1.hook_resid_pre",
        "--no_progress"]
TRAIN = ["--arch", "topk", "--k", "4", "--d_sae", "64", "--steps", "20", "--batch", "128", "--ckpt_every", "10",
         "--eval_tokens", "200", "--no_progress"]


@pytest.fixture
def model_dir(tiny_dir, tmp_path):
    """A copy of the tiny Llama whose weights a test may change in place."""
    return shutil.copytree(tiny_dir, tmp_path / "model")


def reweigh(path, seed: int) -> None:
    """Overwrite the model folder's weights with others (same shapes, same files)."""
    import transformers as tf

    model = tf.AutoModelForCausalLM.from_pretrained(path)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=g))
    model.save_pretrained(path)


def refused(argv, capfd) -> str:
    capfd.readouterr()
    with pytest.raises(SystemExit) as e:
        cli(argv)
    err = capfd.readouterr().err
    assert e.value.code == 2 and err.count("error:") == 1 and "Traceback" not in err, err
    return err


def dump_argv(model_dir, docs_dir, out):
    return ["dump", "--model", str(model_dir), *[a.format(docs=docs_dir) for a in DUMP], "--out", str(out)]


def files(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_dump_train_and_eval_notice_changed_weights_and_settings(model_dir, docs_dir, tmp_path, capfd):
    store, run = tmp_path / "store", tmp_path / "run"
    cli(dump_argv(model_dir, docs_dir, store))
    cli(["train-sae", "--acts", str(store), "--out", str(run), *TRAIN])
    evaluate = ["eval-sae", "--sae", str(run / "sae"), "--metrics", "core", "--n_windows", "4", "--device", "cpu"]
    cli(evaluate)
    first = json.loads((run / "sae" / "metrics.json").read_text())["core"]
    assert set(first["inputs"]) == {"the model's weights", "the SAE", "the store", "--n_windows"}
    capfd.readouterr()
    cli(evaluate)
    assert "core: already in" in capfd.readouterr().out
    cli([*evaluate[:-2], "--n_windows", "3", "--device", "cpu"])
    assert "core: recomputing (--n_windows changed)" in capfd.readouterr().out

    reweigh(model_dir, seed=1)
    cli([*evaluate[:-2], "--n_windows", "3", "--device", "cpu"])
    assert "core: recomputing (the model's weights changed)" in capfd.readouterr().out
    assert json.loads((run / "sae" / "metrics.json").read_text())["core"]["fvu"] != first["fvu"]

    before = files(store)  # a complete store of the old weights is not taken for the new weights' store
    err = refused(dump_argv(model_dir, docs_dir, store), capfd)
    assert f"error: {store} holds a different store (the model's weights changed since it was written)" in err
    assert files(store) == before

    other = tmp_path / "store_new"  # the new weights' activations; the checkpoint was made on the old ones
    cli(dump_argv(model_dir, docs_dir, other))
    before = files(run)
    err = refused(["train-sae", "--acts", str(other), "--out", str(run), *TRAIN], capfd)
    assert "error: the activations changed since the checkpoint in" in err and "the model's weights changed" in err
    assert files(run) == before


def test_trace_recomputes_when_the_set_or_the_weights_change(model_dir, tmp_path, capfd):
    set_dir = write_set(tmp_path / "set", str(model_dir), 64, 2)
    out = tmp_path / "graph"
    argv = ["trace", "--set", str(set_dir), "--prompt", PROMPT, "--out", str(out), "--device", "cpu",
            "--n_checks", "2", "--batch", "32"]
    cli(argv)
    scores = json.loads((out / "results.json").read_text())["scores"]
    cli(argv)
    assert "reusing the graph" in capfd.readouterr().err

    from safetensors.torch import save_file

    w, _ = random_transcoders(64, 2, seed=7, model_name=str(model_dir))[1]  # layer 1 retrained in place
    save_file({k: v.contiguous() for k, v in w.items()}, str(set_dir / "layer_1" / "sae" / "sae_weights.safetensors"))
    cli(argv)
    assert "recomputing the graph in" in (err := capfd.readouterr().err) and "the transcoder set changed" in err
    assert json.loads((out / "results.json").read_text())["scores"] != scores

    reweigh(model_dir, seed=2)
    cli(argv)
    assert "the model's weights changed since it was made" in capfd.readouterr().err


def test_a_recipe_redoes_the_stages_that_read_a_redone_stage(model_dir, docs_dir, tmp_path, capfd):
    from mechinterp.cli.pipeline import RecipeRun, Stage, run_stages

    @dataclass(frozen=True)
    class Run(RecipeRun):
        size: str = "tiny"
        in_process: bool = True
        force: tuple[str, ...] = field(default=())

    pipeline = [
        Stage("dump", "dump", lambda r: dict(model=str(model_dir), corpus=f"dir:{docs_dir}", ctx=16, n_tokens=600,
                                            hooks=("blocks.1.hook_resid_pre",), out=str(r / "acts"), progress=False),
              lambda r: (r / "acts" / "meta.json").exists(), lambda r: [r / "acts"]),
        Stage("sae", "train-sae", lambda r: dict(acts=str(r / "acts"), out=str(r / "sae"), arch="topk", k=4, d_sae=64,
                                                 steps=20, batch=128, eval_tokens=200, progress=False),
              lambda r: (r / "sae" / "sae" / "cfg.json").exists(), lambda r: [r / "sae"]),
        Stage("ioi", "ioi", lambda r: dict(out=str(r / "ioi")), lambda r: (r / "ioi").exists(), lambda r: [r / "ioi"]),
    ]
    sizes, expected = {"tiny": {}}, {"dump": 1, "sae": 1, "ioi": 1}
    (tmp_path / "run" / "ioi").mkdir(parents=True)  # reads neither: stays done
    run_stages(tmp_path / "run", Run(), pipeline, sizes, expected)
    run_stages(tmp_path / "run", Run(), pipeline, sizes, expected)
    assert capfd.readouterr().out.count("done already, skipped") == 4
    run_stages(tmp_path / "run", Run(force=("dump",)), pipeline, sizes, expected)
    out = capfd.readouterr().out
    assert "sae: dump ran after it; redoing it" in out and "ioi: done already, skipped" in out
