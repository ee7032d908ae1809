"""What a failure leaves behind: a refused writer changes no byte of the lock files it found, a write
cut by a full disk leaves neither its temporary file nor a half-written target, and a set missing
layers says so (faults injected at the system boundary: a flock held, os.write / the safetensors
write / orbax's write raising ENOSPC)."""

from __future__ import annotations

import errno
import json
import os
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest
from builders import write_set

from mechinterp.formats import transcoder_set as ts
from mechinterp.formats.atomic import TMP_MARK, atomic_write_text
from mechinterp.formats.sae import CFG, WEIGHTS
from mechinterp.formats.store import StoreError
from mechinterp.formats.store_writer import FolderLock, StoreLock


def files(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under root: (bytes, mtime_ns)."""
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))
            if p.is_file()}


def enospc(*a, **k):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    from extract.models import load_model

    return load_model(str(tiny_dir), device="cpu")


def test_a_refused_dump_changes_no_byte_of_the_lock_files_it_found(tiny, docs_dir, tmp_path):
    """A two-store dump whose second store another dump holds: the first store's lock file (a killed
    dump's, pid 4242) keeps its bytes and its time, and nothing else is written."""
    from extract.dump import DumpConfig, dump_activations

    first, second = tmp_path / "blocks.0.hook_resid_pre", tmp_path / "blocks.1.hook_resid_pre"
    first.mkdir()
    (first / StoreLock.NAME).write_text("4242")
    os.utime(first / StoreLock.NAME, ns=(10**18, 10**18))
    cfg = DumpConfig(model=tiny.name, hooks=(first.name, second.name), ctx=16, n_tokens=15 * 20, batch=8,
                     corpus=f"dir:{docs_dir}", out=str(tmp_path), progress=False)
    with StoreLock(second):                       # another dump, mid-run
        before = files(tmp_path)
        with pytest.raises(StoreError, match=f"{second} is being written by another dump \\(pid {os.getpid()}\\)"):
            dump_activations(cfg, model=tiny)
        assert files(tmp_path) == before
    assert files(tmp_path) == {f"{first.name}/{StoreLock.NAME}": (b"4242", 10**18)}


def test_a_lock_taken_then_refused_is_put_back_and_a_finished_run_leaves_its_pid(tmp_path):
    held, found = tmp_path / "held", tmp_path / "found"
    found.mkdir()
    (found / StoreLock.NAME).write_bytes(b"777\n")
    with StoreLock(held), pytest.raises(StoreError), ExitStack() as stack:
        stack.enter_context(StoreLock(found))    # taken (pid rewritten) ...
        stack.enter_context(StoreLock(held))     # ... then refused by the next one
    assert (found / StoreLock.NAME).read_bytes() == b"777\n" and not held.exists()
    with StoreLock(found):
        pass
    assert (found / StoreLock.NAME).read_bytes() == str(os.getpid()).encode()
    with FolderLock(tmp_path / "run"):
        (tmp_path / "run" / "out.txt").write_text("x")
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["out.txt"]   # a finished run's lock goes


def test_a_full_disk_leaves_no_temporary_file_and_the_target_as_it_was(tmp_path, monkeypatch):
    target = tmp_path / "summary.txt"
    atomic_write_text(target, "old")
    real = os.write

    def half_then_full(fd, data):  # the disk fills up after a few bytes
        real(fd, bytes(data[:2]))
        enospc()
    with monkeypatch.context() as m:
        m.setattr(os, "write", half_then_full)
        with pytest.raises(OSError) as e:
            atomic_write_text(target, "a new summary, longer than the old one")
    assert e.value.errno == errno.ENOSPC
    assert [p.name for p in tmp_path.iterdir()] == ["summary.txt"] and target.read_text() == "old"
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["summary.txt"]


def test_a_transcoder_set_cut_by_a_full_disk_is_not_left_readable(tmp_path, monkeypatch):
    exports_root = write_set(tmp_path / "tcs", "tiny", 16, 3)
    exports = {L: exports_root / f"layer_{L}" / "sae" for L in range(3)}
    out = ts.write_transcoder_set(tmp_path / "ct", exports, scan="s")
    assert sorted(ts.read_transcoder_set(out)[1]) == [0, 1, 2]
    real = ts.save_file

    def full_at_layer_1(tensors, path):  # a partial file, as a real full disk leaves it, then ENOSPC
        if ".layer_1." in Path(path).name:
            Path(path).write_bytes(b"\0" * 100)
            enospc()
        real(tensors, path)
    monkeypatch.setattr(ts, "save_file", full_at_layer_1)
    with pytest.raises(OSError):
        ts.write_transcoder_set(out, exports, scan="s")
    assert not [p for p in out.iterdir() if TMP_MARK in p.name]
    assert sorted(p.name for p in out.iterdir()) == [ts.layer_file(L) for L in range(3)]  # no config: not a set
    with pytest.raises(ts.SAEError, match="is not a transcoder set"):
        ts.read_transcoder_set(out)


def test_a_checkpoint_cut_by_a_full_disk_leaves_no_partial_checkpoint(tmp_path, monkeypatch):
    import jax.numpy as jnp
    from orbax.checkpoint._src.handlers import json_checkpoint_handler as J

    from mechinterp.formats.errors import SAEError
    from sae_jax.checkpoint import Checkpointer

    ck = Checkpointer(tmp_path / "checkpoints")
    state = {"W": jnp.arange(4096.0).reshape(64, 64), "step": jnp.int32(1)}
    ck.save(1, state, {"step": 1})

    async def full(self, x, directory):
        enospc()
    monkeypatch.setattr(J.JsonCheckpointHandler, "_save_fn", full)
    with pytest.raises(SAEError, match="the disk filled up while writing checkpoint 2 to "):
        ck.save(2, {"W": state["W"] + 1, "step": jnp.int32(2)}, {"step": 2})
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["1"]
    assert ck.latest_step() == 1
    np.testing.assert_array_equal(ck.restore(1, state)["W"], np.arange(4096.0).reshape(64, 64))
    ck.close()


def test_which_layers_of_a_set_are_complete(tmp_path):
    root = write_set(tmp_path / "set", "tiny", 16, 2)
    (root / "layer_3" / "checkpoints").mkdir(parents=True)         # training begun, no export
    (root / "layer_1" / "sae" / CFG).unlink()                      # an export cut short before its cfg
    assert ts.set_layers(root, 5) == {"n_layers": 5, "complete": [0], "unfinished": [1, 3], "missing": [2, 4]}
    assert ts.set_layers(root) == {"n_layers": 4, "complete": [0], "unfinished": [1, 3], "missing": [2]}
    assert (ts.layer_export(root, 0) / WEIGHTS).is_file()


@pytest.mark.slow  # a dump, a training run and the replacement model, end to end
def test_a_partial_set_is_said_partial_when_trained_and_when_evaluated(tiny_dir, docs_dir, tmp_path, capfd):
    from mechinterp.cli import main as cli

    acts, out = tmp_path / "pairs", tmp_path / "tcs"
    cli(["dump", "--model", str(tiny_dir), "--corpus", f"dir:{docs_dir}", "--ctx", "16", "--n_tokens", str(15 * 150),
         "--hook", "blocks.{L}.hook_mlp_in", "--hook", "blocks.{L}.hook_mlp_out", "--out", str(acts), "--no_progress"])
    cli(["train-transcoders", "--acts", str(acts), "--out", str(out), "--layers", "0", "--arch", "topk", "--k", "16",
         "--d_sae", "256", "--steps", "150", "--batch", "256", "--lr", "3e-3", "--eval_tokens", "2000", "--no_progress"])
    said = capfd.readouterr().out
    assert (f"warning: {out} is a partial set of {tiny_dir}'s 2 layers, so no circuit_tracer set is written: "
            "train layer(s) 1 with `mechinterp train-transcoders --layers 1` (same --acts and --out)") in said
    summary = json.loads((out / ts.SUMMARY).read_text())
    assert (summary["layers_complete"], summary["layers_missing"], summary["set_complete"]) == ([0], [1], False)
    assert "circuit_tracer" not in summary and not (out / "circuit_tracer").exists()

    cli(["eval-transcoders", "--set", str(out), "--n_windows", "2", "--device", "cpu", "--no_per_layer"])
    err = [line for line in capfd.readouterr().err.splitlines() if line.startswith("warning")]
    assert err == [f"warning: {out} has no transcoder for layer(s) 1 of {tiny_dir} (2 layers); 'all replaced' below "
                   "replaces layer(s) 0 only; train the others with `mechinterp train-transcoders --layers 1`"]
    rep = json.loads((out / "replacement.json").read_text())
    assert rep["layers"] == {"replaced": [0], "n_layers": 2, "complete": [0], "unfinished": [], "missing": [1]}
    assert np.isfinite(rep["ce_all_replaced"]) and rep["ce_all_replaced"] != rep["ce_clean"]
