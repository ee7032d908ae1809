"""The crosscoder on a synthetic pair of models with known features: both share a dictionary, and
model B alone adds one direction on one token. The crosscoder must find that latent (its decoder norm
almost all in B, latent scaling near 0, its strongest tokens that token), keep the shared ones shared,
resume to the same weights, and refuse dumps that are not of the same tokens or width."""

from __future__ import annotations

import numpy as np
import pytest

from mechinterp.formats.crosscoder import decode, encode, load_crosscoder
from mechinterp.formats.errors import SAEError
from mechinterp.formats.paired import open_pair
from mechinterp.formats.store import StoreMeta, open_store
from mechinterp.formats.store_writer import StoreWriter
from sae_jax.config import TrainConfig
from sae_jax.crosscoder import CrosscoderConfig, train_crosscoder

D, CTX, N_WIN, TOKEN = 16, 33, 160, 7


def _dump(path, model, acts, tokens):
    meta = StoreMeta(model=model, weights=model, hook="blocks.1.hook_resid_pre", layer=1, d_model=acts.shape[-1], ctx=CTX,
                     keep_bos=False, n_windows=len(tokens), dtype="float32", corpus={"name": "synthetic"})
    w = StoreWriter.create_or_resume(path, meta)
    w.write(acts, tokens)
    w.finish()
    return path


def _pair(tmp_path, d=D, sink: float = 0.0):
    """sink: model A's first token after BOS in every 4th window gets this norm (a massive activation
    that model B lacks)."""
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 50, (N_WIN, CTX)).astype(np.int32)
    tokens[:, 0] = 0
    shared = rng.normal(size=(24, d))
    shared /= np.linalg.norm(shared, axis=1, keepdims=True)
    codes = np.zeros((N_WIN, CTX - 1, 24))
    for _ in range(3):
        np.put_along_axis(codes, rng.integers(0, 24, (N_WIN, CTX - 1, 1)), rng.uniform(1, 2, (N_WIN, CTX - 1, 1)), -1)
    x_a = (codes @ shared).astype(np.float32)
    only_b = np.linalg.svd(shared.T)[0][:, -1]                     # a direction the shared dictionary lacks
    x_b = x_a + 3.0 * (tokens[:, 1:, None] == TOKEN) * only_b.astype(np.float32)
    x_a[::4, 0] = sink * shared[0]
    return (_dump(tmp_path / "a", "base", x_a, tokens), _dump(tmp_path / "b", "organism", x_b.astype(np.float32), tokens),
            tokens, only_b)


def test_the_crosscoder_finds_the_latent_only_model_b_has(tmp_path):
    a, b, tokens, only_b = _pair(tmp_path)
    tcfg = TrainConfig(steps=400, batch=512, lr=3e-3, progress=False, ckpt_every=200)
    info = train_crosscoder(a, b, tmp_path / "xc", CrosscoderConfig(d_sae=64, k=4), tcfg)
    assert info["metrics"]["fvu_a"] < 0.2 and info["metrics"]["fvu_b"] < 0.2
    w, saved = load_crosscoder(tmp_path / "xc")
    assert saved["models"] == {"a": "base", "b": "organism"} and saved["d_model"] == D
    alive = w["freq"] > 0.001
    best = int(np.argmax(np.where(alive, w["rel_norm"], 0)))
    assert w["rel_norm"][best] > 0.9 and abs(w["nu_eps"][best]) < 0.2 and np.isfinite(w["nu_r"][best])
    assert (w["top_tokens"][best] == TOKEN).all()
    d_b = w["W_dec"][best, D:]
    assert abs(d_b @ only_b) / np.linalg.norm(d_b) > 0.9
    assert 0.4 < np.median(w["rel_norm"][alive]) < 0.6                 # the rest is shared
    # the saved per-latent numbers are the format's own contract applied to the dump
    x_a, x_b = open_store(a).read_windows(np.arange(4)), open_store(b).read_windows(np.arange(4))
    f = encode(w, x_a, x_b)
    r_a, r_b = decode(w, f)
    assert ((f > 0).sum(1).mean()) < 12 and np.mean((r_b - x_b) ** 2) < 0.2 * np.var(x_b, 0).sum()
    # resumes to the same weights
    train_crosscoder(a, b, tmp_path / "half", CrosscoderConfig(d_sae=64, k=4), tcfg, stop_at=200)
    train_crosscoder(a, b, tmp_path / "half", CrosscoderConfig(d_sae=64, k=4), tcfg)
    np.testing.assert_allclose(load_crosscoder(tmp_path / "half")[0]["W_dec"], w["W_dec"], atol=1e-5)


def test_massive_rows_of_either_model_are_left_out_of_training_and_measurement(tmp_path):
    a, b, _, only_b = _pair(tmp_path, sink=400.0)
    pair = open_pair(a, b, two_models=True, massive=10.0)
    rows = np.concatenate(list(pair.batches(64, loop=False, skip_bos=True, buffer_rows=1024)))
    assert np.linalg.norm(rows[:, :D], axis=1).max() < 10 * pair.inp.mean_norm
    assert len(rows) > 0.9 * N_WIN * (CTX - 1) - 64 * (N_WIN * (CTX - 1) // 1024 + 1)
    assert len(pair.read_windows(np.arange(8), skip_bos=True)) == 8 * (CTX - 1) - 2
    # resuming mid-way reads on to the same batches
    first = list(pair.batches(64, seed=1, loop=False, skip_bos=True, buffer_rows=1024))
    again = list(pair.batches(64, seed=1, loop=False, skip_bos=True, buffer_rows=1024, start_batch=20))
    np.testing.assert_array_equal(np.concatenate(first[20:]), np.concatenate(again))
    tcfg = TrainConfig(steps=400, batch=512, lr=3e-3, progress=False, ckpt_every=400)
    info = train_crosscoder(a, b, tmp_path / "xc", CrosscoderConfig(d_sae=64, k=4), tcfg)
    assert info["massive"] == 10.0 and info["metrics"]["massive_tokens"] == N_WIN // 4
    assert info["metrics"]["fvu_a"] < 0.2 and info["metrics"]["fvu_b"] < 0.2
    w, _ = load_crosscoder(tmp_path / "xc")
    best = int(np.argmax(np.where(w["freq"] > 0.001, w["rel_norm"], 0)))
    assert w["rel_norm"][best] > 0.9 and abs(w["W_dec"][best, D:] @ only_b) / np.linalg.norm(w["W_dec"][best, D:]) > 0.9


def test_dumps_of_other_tokens_or_widths_are_refused(tmp_path):
    a, b, tokens, _ = _pair(tmp_path)
    other = tokens.copy()
    other[:, 5] = 1
    x = np.zeros((N_WIN, CTX - 1, D), np.float32)
    c = _dump(tmp_path / "c", "other", x + 1, other)
    with pytest.raises(SAEError, match="hold different tokens"):
        train_crosscoder(a, c, tmp_path / "xc", CrosscoderConfig(d_sae=32, k=4), TrainConfig(steps=5, progress=False))
    wide = _dump(tmp_path / "wide", "wide", np.ones((N_WIN, CTX - 1, D + 2), np.float32), tokens)
    with pytest.raises(SAEError, match="a crosscoder pairs two models of one width"):
        train_crosscoder(a, wide, tmp_path / "xc", CrosscoderConfig(d_sae=32, k=4), TrainConfig(steps=5, progress=False))
    assert not (tmp_path / "xc" / "crosscoder.json").exists()
