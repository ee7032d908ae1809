"""The cache_activations stage: round trip against run_with_cache, interrupt and resume, bad
input, fp16 overflow, full disk, and a 2-process torchrun dump equal to a single-process one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO

from extract.corpus import CorpusError, open_corpus
from extract.dump import DumpConfig, DumpError, dump_activations
from extract.windows import WindowStream
from mechinterp.cli.runs import default_store_dir
from mechinterp.formats.store import StoreError, open_store, read_meta

SCRIPT = str(REPO / "scripts" / "cache_activations.py")


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    from extract.models import load_model

    return load_model(str(tiny_dir), device="cpu")


def cfg_for(out, corpus, **kw):
    base = dict(out=str(out), corpus=f"dir:{corpus}", ctx=16, batch=4, n_tokens=15 * 20, progress=False)
    return DumpConfig(**{**base, **kw})


def arrays(path):
    return np.load(Path(path) / "acts.npy"), np.load(Path(path) / "tokens.npy")


# ---------------------------------------------------------------------------- round trip


@pytest.mark.slow
def test_round_trip_real_model(smollm2, tmp_path, docs_dir):
    hooks = ("blocks.2.hook_resid_pre", "blocks.1.hook_mlp_out", "blocks.0.attn.hook_z")
    cfg = cfg_for(tmp_path / "out", docs_dir, hooks=hooks, ctx=32, n_tokens=31 * 10, batch=4, eval_fraction=0.2)
    results = dump_activations(cfg, model=smollm2)
    assert [r.path for r in results] == [tmp_path / "out" / h for h in hooks]

    stream = WindowStream(open_corpus(cfg.corpus), smollm2.tokenizer, 32, smollm2.bos_token_id, 0, 0.2)
    expected_windows = np.stack(list(stream.windows(stream.plan(10))))
    for hook, r in zip(hooks, results):
        store = open_store(r.path)
        m = store.meta
        assert (m.complete, m.n_windows, m.windows_done, m.hook, m.dtype, m.ctx) == (True, 10, 10, hook, "float16", 32)
        assert (m.model, m.keep_bos, m.first_pos, m.rows_per_window) == ("smollm2-135m-q4", False, 1, 31)
        assert m.weights.endswith(".gguf") and m.corpus["spec"] == cfg.corpus
        assert m.corpus["train_windows"] == [0, 8] and m.corpus["eval_windows"] == [8, 10]
        assert m.d_model == (576 if "hook_z" not in hook else 9 * 64)
        assert store.n_rows == 310
        acts, toks = arrays(r.path)
        assert acts.dtype == np.float16 and acts.shape == (310, m.d_model)
        np.testing.assert_array_equal(toks, expected_windows)
        assert (toks[:, 0] == smollm2.bos_token_id).all()
        # rows equal a direct run_with_cache of the same windows, read at the hook's own name
        layer = int(hook.split(".")[1])
        _, cache = smollm2.run_with_cache(torch.from_numpy(toks).long(), names=[hook], stop_at_layer=layer + 1)
        direct = cache[hook].reshape(10, 32, -1)[:, 1:].reshape(-1, m.d_model).numpy()
        np.testing.assert_allclose(acts.astype(np.float32), direct, rtol=2e-3, atol=2e-3 * np.abs(direct).max())
        assert np.abs(direct).max() > 0.1  # not a vacuous comparison of zeros
        # row -> (window, position) -> the token whose activation it is
        w, pos = store.row_location(77)
        assert (w, pos) == (2, 77 - 62 + 1) and store.window_tokens(w)[pos] == toks[2, pos]
        ctx_toks, i = store.context(77, before=4, after=2)
        assert ctx_toks[i] == toks[w, pos] and len(ctx_toks) == 7
        not_bos = toks[:, 1:].reshape(-1) != smollm2.bos_token_id  # BOS separators stay out of the stats
        norms = np.linalg.norm(direct[not_bos].astype(np.float64), axis=1)
        assert m.stats["mean_norm"] == pytest.approx(norms.mean(), rel=1e-3)
        train, ev = store.split()
        assert ev.tolist() == [8, 9] and train.tolist() == list(range(8))
        assert r.rows_written == 310 and r.bytes > 310 * m.d_model * 2


def test_keep_bos_float32_default_out_and_rerun(tiny, tmp_path, docs_dir):
    cfg = DumpConfig(corpus=f"dir:{docs_dir}", ctx=16, batch=4, n_tokens=16 * 6, keep_bos=True, dtype="float32",
                     layer=1, site="resid_post", progress=False)
    runs = lambda m, h: default_store_dir(m, h, tmp_path / "runs")
    (r,) = dump_activations(cfg, model=tiny, default_dir=runs)
    # a local model folder by its name and a hash of where it is (two folders of one name never share one)
    assert r.path.parent.parent == tmp_path / "runs" / "acts" and r.path.name == "blocks.1.hook_resid_post"
    assert re.fullmatch(r"tiny-llama0-[0-9a-f]{8}", r.path.parent.name), r.path
    acts, toks = arrays(r.path)
    assert acts.dtype == np.float32 and acts.shape == (96, 64)
    _, cache = tiny.run_with_cache(torch.from_numpy(toks).long(), names=["blocks.1.hook_resid_post"])
    np.testing.assert_allclose(acts, cache["blocks.1.hook_resid_post"].reshape(96, 64).numpy(), rtol=1e-5, atol=1e-5)
    # the same command again: nothing to do, the store untouched
    (again,) = dump_activations(cfg, model=tiny, default_dir=runs)
    assert again.skipped and "already complete" in again.summary()


def test_default_hook_is_middle_resid_pre(tiny, smollm2):
    from extract.dump import hook_names

    assert hook_names(smollm2, DumpConfig()) == ["blocks.15.hook_resid_pre"]
    # the SAE stage's default --acts is the one store under the default dump's folder
    from extract.dump import store_paths

    assert store_paths(DumpConfig(), smollm2.name, hook_names(smollm2, DumpConfig()), 0, 1, default_store_dir) == \
        {"blocks.15.hook_resid_pre": default_store_dir(smollm2.name, "blocks.15.hook_resid_pre")}
    with pytest.raises(DumpError, match="name an output folder"):  # the library never invents runs/
        store_paths(DumpConfig(), smollm2.name, ["blocks.15.hook_resid_pre"], 0, 1)
    assert smollm2.min_stop_layer(["blocks.15.hook_resid_pre"]) == 15  # block 15 itself never runs
    assert smollm2.min_stop_layer(["blocks.15.hook_resid_pre", "blocks.3.hook_mlp_out"]) == 15
    assert smollm2.min_stop_layer(["hook_embed"]) == 0
    assert smollm2.min_stop_layer(["ln_final.hook_normalized"]) is None
    with pytest.raises(DumpError, match="out of range"):
        hook_names(tiny, DumpConfig(layer=5))
    with pytest.raises(DumpError, match="one vector per token position"):
        hook_names(tiny, DumpConfig(hooks=("blocks.0.attn.hook_pattern",)))


# ---------------------------------------------------------------------------- bad input


def test_mismatched_truncated_missing_meta(tiny, tmp_path, docs_dir):
    out = tmp_path / "s"
    dump_activations(cfg_for(out, docs_dir, layer=1), model=tiny)
    with pytest.raises(StoreError, match=r"holds a different store \(.*dtype: store has 'float16', asked for 'float32'"):
        dump_activations(cfg_for(out, docs_dir, layer=1, dtype="float32"), model=tiny)
    with pytest.raises(StoreError, match="hook: store has 'blocks.1.hook_resid_pre', asked for 'blocks.0.hook_mlp_out'"):
        dump_activations(cfg_for(out, docs_dir, hooks=("blocks.0.hook_mlp_out",)), model=tiny)
    with pytest.raises(StoreError, match="n_windows"):
        dump_activations(cfg_for(out, docs_dir, layer=1, n_tokens=15 * 21), model=tiny)
    # truncated acts.npy: refused by the reader and by a resume
    meta = json.loads((out / "meta.json").read_text())
    os.truncate(out / "acts.npy", (out / "acts.npy").stat().st_size // 2)
    with pytest.raises(StoreError, match="truncated or corrupt"):
        open_store(out)
    meta["complete"] = False
    (out / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="truncated or corrupt"):
        dump_activations(cfg_for(out, docs_dir, layer=1), model=tiny)
    (out / "meta.json").unlink()
    with pytest.raises(StoreError, match="not an activation store"):
        open_store(out)
    (out / "meta.json").write_text("{not json")
    with pytest.raises(StoreError, match="corrupt"):
        open_store(out)


def test_empty_corpus_and_too_many_tokens(tiny, tmp_path, docs_dir):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no .txt"):
        dump_activations(cfg_for(tmp_path / "o1", tmp_path / "empty"), model=tiny)
    with pytest.raises(CorpusError, match=r"too small.*hold \d+ tokens = \d+ windows of 16, and 6334 are needed"):
        dump_activations(cfg_for(tmp_path / "o2", docs_dir, n_tokens=100_000), model=tiny)
    assert not (tmp_path / "o2").exists()  # refused before anything was written


def test_fp16_overflow_is_refused(tiny_dir, tmp_path, docs_dir):
    from extract.models import load_model

    model = load_model(str(tiny_dir), device="cpu")
    with torch.no_grad():
        model.model.model.embed_tokens.weight.mul_(1e6)
    with pytest.raises(StoreError, match=r"\d+ rows of this batch overflow float16 .* --dtype float32"):
        dump_activations(cfg_for(tmp_path / "o", docs_dir, hooks=("hook_embed",)), model=model)
    (r,) = dump_activations(cfg_for(tmp_path / "o32", docs_dir, hooks=("hook_embed",), dtype="float32"), model=model)
    assert np.abs(np.load(r.path / "acts.npy")).max() > 65504


def test_full_disk_fails_cleanly(tiny, tmp_path, docs_dir, monkeypatch):
    import shutil

    import mechinterp.formats.store_writer as store_mod

    real = shutil.disk_usage
    monkeypatch.setattr(store_mod.shutil, "disk_usage", lambda p: real(p)._replace(free=1000))
    with pytest.raises(StoreError, match=r"needs 0.0 MB \(.* KB per token\), 0.0 MB free, room for about 7 tokens"):
        dump_activations(cfg_for(tmp_path / "a", docs_dir), model=tiny)
    monkeypatch.setattr(store_mod.shutil, "disk_usage", real)

    def enospc(fd, off, size):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(store_mod.os, "posix_fallocate", enospc, raising=False)
    with pytest.raises(StoreError, match="cannot allocate .* No space left on device"):
        dump_activations(cfg_for(tmp_path / "b", docs_dir), model=tiny)
    assert not (tmp_path / "b" / "acts.npy").exists()


@pytest.mark.slow  # fresh interpreters in subprocesses
def test_script_user_error_is_one_line(tiny_dir, tmp_path):
    proc = subprocess.run([sys.executable, SCRIPT, "--model", str(tiny_dir), "--corpus", f"dir:{tmp_path}/none",
                           "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: corpus dir:") and "Traceback" not in proc.stderr


# interrupt and resume: tests/system/test_faults.py


# ---------------------------------------------------------------------------- several processes


@pytest.mark.slow  # fresh interpreters in subprocesses
def test_torchrun_two_ranks_equal_single_process(tiny, tiny_dir, tmp_path, docs_dir):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun not installed beside the interpreter")
    single = tmp_path / "single"
    dump_activations(cfg_for(single, docs_dir, layer=1, n_tokens=15 * 24, batch=4), model=tiny)
    out = tmp_path / "dist"
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", SCRIPT, "--model", str(tiny_dir),
                           "--corpus", f"dir:{docs_dir}", "--out", str(out), "--ctx", "16", "--batch", "4",
                           "--n_tokens", str(15 * 24), "--layer", "1", "--no_progress"],
                          capture_output=True, text=True, timeout=150, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 shards" in proc.stdout and "read as one store of 360 rows" in proc.stdout
    shards = [read_meta(out / f"rank{r}") for r in (0, 1)]
    assert [s.shard for s in shards] == [{"rank": 0, "world_size": 2, "first_window": 0},
                                         {"rank": 1, "world_size": 2, "first_window": 12}]
    assert all(s.complete and s.n_windows == 12 for s in shards)
    union, ref = open_store(out), open_store(single)
    assert union.n_windows == ref.n_windows == 24
    toks = np.stack([union.window_tokens(w) for w in range(24)])
    np.testing.assert_array_equal(toks, np.load(single / "tokens.npy"))
    np.testing.assert_allclose(union.read_windows(np.arange(24)), ref.read_windows(np.arange(24)), rtol=1e-3, atol=1e-4)
    # the held-out windows (the last 1 of 24) are found through the shard's first_window
    assert union.split()[1].tolist() == ref.split()[1].tolist() == [23]
    # one rank missing: refused
    import shutil

    shutil.rmtree(out / "rank1")
    with pytest.raises(StoreError, match="1 of 2 shards"):
        open_store(out)
