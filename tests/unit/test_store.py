"""The numpy-only store: held-out split by the corpus's documents, shard order, truncation on
resume, released pages, and the reader importing no torch."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO

from mechinterp.formats.store import StoreError, StoreMeta, open_store
from mechinterp.formats.store_writer import StoreWriter


def make(path, n_windows=6, ctx=5, d=3, rank=0, world=1, first=0, eval_windows=(5, 6), fill=0.0):
    corpus = {"spec": "test", "eval_windows": list(eval_windows)} if eval_windows else {}
    meta = StoreMeta(model="m", weights="w", hook="blocks.0.hook_resid_pre", layer=0, d_model=d, ctx=ctx,
                     keep_bos=False, n_windows=n_windows, corpus=corpus,
                     shard={"rank": rank, "world_size": world, "first_window": first})
    w = StoreWriter.create_or_resume(path, meta)
    for i in range(n_windows):
        acts = np.full((1, ctx, d), fill + first + i, np.float32)
        w.write(acts, np.full((1, ctx), first + i, np.int32))
    w.finish()
    return path


def test_split_by_corpus_heldout_and_random(tmp_path):
    store = open_store(make(tmp_path / "s", n_windows=10, eval_windows=(8, 10)))
    train, ev = store.split()
    assert ev.tolist() == [8, 9] and train.tolist() == list(range(8))
    assert store.split(by="corpus")[1].tolist() == [8, 9]
    tr_r, ev_r = store.split(0.3, seed=1, by="random")
    assert len(ev_r) == 3 and sorted(tr_r.tolist() + ev_r.tolist()) == list(range(10))
    plain = open_store(make(tmp_path / "p", eval_windows=None))
    assert len(plain.split(0.5)[1]) == 3
    with pytest.raises(StoreError, match="records no held-out documents"):
        plain.split(by="corpus")


def test_shards_in_rank_order_with_first_window(tmp_path):
    parent = tmp_path / "dist"
    world, per = 11, 2  # rank10 sorts before rank2 by name
    for r in range(world):
        make(parent / f"rank{r}", n_windows=per, rank=r, world=world, first=r * per,
             eval_windows=(world * per - 3, world * per))
    store = open_store(parent)
    assert store.n_windows == 22
    assert [int(store.window_tokens(w)[0]) for w in range(22)] == list(range(22))
    assert store.window_rows(21)[0, 0] == 21
    assert store.split()[1].tolist() == [19, 20, 21]
    with pytest.raises(StoreError, match="1 of 11 shards"):  # a shard alone is not the dump
        open_store(parent / "rank10")


def test_resume_refuses_truncated_acts(tmp_path):
    meta = StoreMeta(model="m", weights="w", hook="h", layer=0, d_model=4, ctx=8, keep_bos=False, n_windows=50)
    w = StoreWriter.create_or_resume(tmp_path, meta)
    w.write(np.ones((10, 8, 4), np.float32), np.zeros((10, 8), np.int32))
    w.flush()
    del w
    size = (tmp_path / "acts.npy").stat().st_size
    os.truncate(tmp_path / "acts.npy", size // 3)
    again = StoreMeta(model="m", weights="w", hook="h", layer=0, d_model=4, ctx=8, keep_bos=False, n_windows=50)
    with pytest.raises(StoreError, match="truncated or corrupt"):
        StoreWriter.create_or_resume(tmp_path, again)
    assert (tmp_path / "acts.npy").stat().st_size == size // 3  # not silently zero-extended


def test_flush_releases_written_pages(tmp_path):
    """Written memmap pages leave the process's RSS at each flush: RSS does not grow with the store."""
    if not os.path.exists("/proc/self/statm"):
        pytest.skip("needs /proc")
    page = os.sysconf("SC_PAGE_SIZE")

    def rss_mb():
        return int(open("/proc/self/statm").read().split()[1]) * page / 2**20

    meta = StoreMeta(model="m", weights="w", hook="h", layer=0, d_model=1024, ctx=129, keep_bos=False, n_windows=400)
    w = StoreWriter.create_or_resume(tmp_path, meta)  # 400 * 128 * 1024 * 2 B = 100 MB
    base = rss_mb()
    batch = np.random.default_rng(0).standard_normal((20, 129, 1024), dtype=np.float32)
    for _ in range(20):
        w.write(batch, np.zeros((20, 129), np.int32))
        w.flush()
    grown = rss_mb() - base
    w.finish()
    assert grown < 40, f"RSS grew by {grown:.0f} MB while writing a 100 MB store"
    np.testing.assert_array_equal(np.load(tmp_path / "acts.npy", mmap_mode="r")[-1], batch[-1, -1].astype(np.float16))


def test_reader_imports_no_torch(tmp_path):
    make(tmp_path / "s")
    code = (f"import sys; from mechinterp.formats.store import open_store; s = open_store({str(tmp_path / 's')!r}); "
            "next(s.batches(4, loop=False)); assert 'torch' not in sys.modules, 'torch imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=REPO)
    assert proc.returncode == 0, proc.stderr


def test_bos_separator_rows_are_left_out_of_stats_and_training_batches(tmp_path):
    """BOS tokens inside windows (document separators) carry attention-sink activations; the
    normalisation statistics and skip_bos reads leave them out."""
    from mechinterp.formats.store import StoreMeta, open_store
    from mechinterp.formats.store_writer import StoreWriter

    meta = StoreMeta(model="t", weights="w", hook="blocks.0.hook_resid_pre", layer=0, d_model=4, ctx=6,
                     keep_bos=False, n_windows=8)
    w = StoreWriter.create_or_resume(tmp_path / "s", meta)
    rng = np.random.default_rng(0)
    tokens = rng.integers(5, 50, size=(8, 6)).astype(np.int32)
    tokens[:, 0] = 1  # BOS first in every window ...
    tokens[::2, 3] = 1  # ... and as a separator inside every other window
    acts = rng.normal(size=(8, 6, 4)).astype(np.float32)
    acts[tokens == 1] *= 1000.0
    w.write(acts, tokens)
    w.finish()
    store = open_store(tmp_path / "s")
    kept = acts[:, 1:][tokens[:, 1:] != 1]
    assert store.meta.stats["bos_rows"] == 4 and store.meta.stats["norm_rows"] == 36
    assert store.mean_norm == pytest.approx(np.linalg.norm(kept, axis=1).mean(), rel=1e-5)
    np.testing.assert_allclose(store.read_windows(np.arange(8), skip_bos=True), kept, rtol=1e-3)
    batches = list(store.batches(4, loop=False, skip_bos=True, buffer_rows=40, chunk_windows=8))
    assert len(batches) == 9 and max(float(np.abs(b).max()) for b in batches) < 100
    again = list(store.batches(4, loop=False, skip_bos=True, buffer_rows=40, chunk_windows=8, start_batch=5))
    np.testing.assert_array_equal(again[0], batches[5])
