"""The fault suite: a dump and a training run are interrupted at three seeded points each, by
Ctrl-C (SIGINT), kill -9 (SIGKILL) and Ctrl-C again, resumed by re-running the same command every
time, and their final files compared byte for byte with an uninterrupted run.

The stages run as real processes (`python -m mechinterp ...`); each is slowed a little per batch
(a sleep around the store writer or the training batch reader) so that the signal lands mid-run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from builders import SLOW_DUMP, SLOW_TRAIN
from conftest import REPO

from mechinterp.cli import main as cli
from mechinterp.formats.store import read_meta
from sae_jax.synthetic import write_synthetic_store

POINTS = sorted(np.random.default_rng(18).uniform(0.15, 0.85, 3))  # fractions of the run, the same every time
SIGNALS = (signal.SIGINT, signal.SIGKILL, signal.SIGINT)  # one per point


def interrupt_and_resume(code: str, argv: list[str], progress, total: int) -> list[int]:
    """Start, signal once progress() >= each seeded point, re-run; then re-run to the end.
    Returns the progress seen at each signal."""
    seen = []
    for frac, sig in zip(POINTS, SIGNALS):
        start = progress()
        proc = subprocess.Popen([sys.executable, "-c", code, *argv], cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 120  # past the point, and past what the previous run had saved
        while time.time() < deadline and proc.poll() is None and (progress() < frac * total or progress() <= start):
            time.sleep(0.05)
        assert proc.poll() is None, f"finished before the point {frac:.2f}: {proc.communicate()[1][-2000:]}"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        seen.append(progress())
        if sig == signal.SIGINT:
            assert proc.returncode == 130 and "re-run the same command to resume" in err and "Traceback" not in err, err
        else:
            assert proc.returncode == -signal.SIGKILL
    cli(argv)  # the last resume runs to the end (in this process: only the interrupted ones need their own)
    return seen


def bytes_of(path: Path, names) -> dict[str, bytes]:
    return {n: (path / n).read_bytes() for n in names}


@pytest.mark.slow  # fresh interpreters in subprocesses
def test_dump_interrupted_three_times_equals_uninterrupted(tiny_dir, docs_dir, tmp_path):
    def argv(out):
        return ["dump", "--model", str(tiny_dir), "--corpus", f"dir:{docs_dir}", "--out", str(out), "--ctx", "16",
                "--batch", "2", "--flush_every", "1", "--n_tokens", str(15 * 40), "--hook", "blocks.1.hook_mlp_out",
                "--no_progress"]
    ref, out = tmp_path / "ref", tmp_path / "out"
    cli(argv(ref))  # the uninterrupted reference

    def windows_done() -> int:
        try:
            return read_meta(out).windows_done
        except Exception:  # not written yet, or being replaced
            return 0
    seen = interrupt_and_resume(SLOW_DUMP, argv(out), windows_done, 40)
    assert seen == sorted(seen) and 0 < seen[0] and seen[-1] < 40, seen
    assert bytes_of(out, ["acts.npy", "tokens.npy"]) == bytes_of(ref, ["acts.npy", "tokens.npy"])
    m, m_ref = json.loads((out / "meta.json").read_text()), json.loads((ref / "meta.json").read_text())
    assert m == m_ref


@pytest.mark.slow  # fresh interpreters in subprocesses
def test_training_interrupted_three_times_equals_uninterrupted(tmp_path):
    store = write_synthetic_store(tmp_path / "store", d_in=32, n_features=96, n_windows=128, active=4)
    steps = 120

    def argv(out):
        return ["train-sae", "--acts", str(store), "--out", str(out), "--arch", "topk", "--k", "4", "--d_sae", "128",
                "--steps", str(steps), "--batch", "128", "--ckpt_every", "10", "--eval_tokens", "1000", "--no_progress"]
    ref, out = tmp_path / "ref", tmp_path / "out"
    cli(argv(ref))  # the uninterrupted reference

    def last_checkpoint() -> int:
        steps_saved = [int(p.name) for p in (out / "checkpoints").glob("*") if p.name.isdigit()]
        return max(steps_saved, default=0)
    seen = interrupt_and_resume(SLOW_TRAIN, argv(out), last_checkpoint, steps)
    assert seen == sorted(seen) and seen[-1] < steps, seen
    files = ["sae_weights.safetensors"]
    assert bytes_of(out / "sae", files) == bytes_of(ref / "sae", files)
    metrics, metrics_ref = (json.loads((p / "sae" / "metrics.json").read_text()) for p in (out, ref))
    timing = ("tokens_per_s",)
    for m in (metrics, metrics_ref):
        m["final_train"] = {k: v for k, v in m["final_train"].items() if k not in timing}
    assert metrics == metrics_ref
