"""sae_jax.features: streaming statistics equal a brute-force numpy computation on a small store."""

from __future__ import annotations

import numpy as np
import pytest
from builders import make_sae

from mechinterp.formats.feature_stats import load_feature_stats
from mechinterp.formats.sae import encode_np, load_export
from mechinterp.formats.store import open_store
from sae_jax.features import FeatureStatsConfig, compute_feature_stats
from sae_jax.row_hash import row_hash, row_unhash
from sae_jax.synthetic import write_synthetic_store


def brute(sae_dir, store_path, cfg):
    w, c = load_export(sae_dir)
    store = open_store(store_path)
    x = store.read_windows(np.arange(store.n_windows))
    if cfg.max_tokens:
        x = x[:cfg.max_tokens]
    return encode_np(w, c, x), store


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    return write_synthetic_store(tmp_path_factory.mktemp("fs") / "store", d_in=16, n_windows=24, ctx=33, seed=1)


@pytest.mark.parametrize("arch", ["standard", "topk", "jumprelu"])
def test_stats_equal_brute_force(tmp_path, store_path, arch):
    sae = make_sae(tmp_path, store_path, arch)
    cfg = FeatureStatsConfig(top_n=7, chunk_rows=100, per_band=3, ctx_before=5, ctx_after=2, max_tokens=700)
    st = compute_feature_stats(sae, store_path, cfg)
    f, store = brute(sae, store_path, cfg)
    n, S = f.shape
    assert int(st["n_tokens"]) == n == 700
    np.testing.assert_array_equal(st["count"], (f > 0).sum(0))
    np.testing.assert_allclose(st["mean"], f.sum(0) / n, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(st["max"], f.max(0), rtol=1e-5, atol=1e-6)
    firing = np.where((f > 0).sum(0) > 0, f.sum(0) / np.maximum((f > 0).sum(0), 1), 0)
    np.testing.assert_allclose(st["mean_firing"], firing, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(st["dead"], (f > 0).sum(0) == 0)
    np.testing.assert_array_equal(st["dense"], (f > 0).mean(0) > 0.1)
    if arch != "topk":
        assert st["dead"][3] and st["dense"][5]
    edges = st["hist_edges"]
    for s in range(S):
        v = f[:, s][f[:, s] > 0]
        # top-N: sorted by (-value, row)
        order = np.lexsort((np.arange(n)[f[:, s] > 0], -v))[:cfg.top_n]
        rows_ref = np.flatnonzero(f[:, s] > 0)[order]
        got = st["top_rows"][s][st["top_rows"][s] >= 0]
        np.testing.assert_array_equal(got, rows_ref)
        np.testing.assert_allclose(st["top_values"][s][:len(got)], v[order], rtol=1e-5, atol=1e-6)
        # histogram: bin j holds edges[j] <= v < edges[j+1], out-of-range values clipped to the ends
        ref = np.zeros(len(edges) - 1, np.int64)
        for val in v:
            j = 0
            while j + 1 < len(edges) - 1 and val >= edges[j + 1]:
                j += 1
            ref[j] += 1
        np.testing.assert_array_equal(st["hist"][s], ref)
        # band samples are rows where the latent fires, with the value recomputed
        for b in range(st["sample_rows"].shape[1]):
            for r, val in zip(st["sample_rows"][s, b], st["sample_values"][s, b]):
                if r >= 0:
                    assert f[r, s] > 0
                    np.testing.assert_allclose(val, f[r, s], rtol=1e-4, atol=1e-5)


def test_top_windows_hold_the_maximum_at_the_highlighted_token(tmp_path, store_path):
    sae = make_sae(tmp_path, store_path, "standard")
    cfg = FeatureStatsConfig(top_n=5, chunk_rows=64, ctx_before=4, ctx_after=3)
    st = compute_feature_stats(sae, store_path, cfg)
    f, store = brute(sae, store_path, cfg)
    offs = list(st["ctx_offsets"])
    hi = offs.index(0)
    for s in np.flatnonzero(~st["dead"]):
        for i, r in enumerate(st["top_rows"][s]):
            if r < 0:
                continue
            ctx = st["top_ctx"][s, i]
            np.testing.assert_allclose(ctx[hi], st["top_values"][s, i], rtol=1e-4, atol=1e-5)
            w, pos = store.row_location(r)
            rpw = store.rows_per_window
            for j, o in enumerate(offs):     # the context really is the store's neighbourhood of the row
                rr = r + o
                if 0 <= (r % rpw) + o < rpw:
                    np.testing.assert_allclose(ctx[j], f[rr, s], rtol=1e-4, atol=1e-5)
                else:
                    assert np.isnan(ctx[j])
        # the first top example holds the latent's global maximum at the highlighted token
        assert st["top_ctx"][s, 0][hi] == pytest.approx(f[:, s].max(), rel=1e-4)
        assert np.nanmax(st["top_ctx"][s, 0]) <= f[:, s].max() * (1 + 1e-5)


def test_band_samples_cover_quantiles_and_do_not_depend_on_chunking(tmp_path, store_path):
    sae = make_sae(tmp_path, store_path, "standard")
    a = compute_feature_stats(sae, store_path, FeatureStatsConfig(chunk_rows=32, per_band=4, seed=3))
    b = compute_feature_stats(sae, store_path, FeatureStatsConfig(chunk_rows=1000, per_band=4, seed=3))
    for k in ("count", "top_rows", "hist", "sample_rows"):
        np.testing.assert_array_equal(a[k], b[k])
    # samples from the lowest band are weaker than those from the highest
    live = np.flatnonzero(a["count"] > 50)
    lo = np.nanmean(np.where(a["sample_rows"][live, 0] >= 0, a["sample_values"][live, 0], np.nan))
    hi = np.nanmean(np.where(a["sample_rows"][live, -1] >= 0, a["sample_values"][live, -1], np.nan))
    assert lo < hi
    a.save(tmp_path / "st")
    c = load_feature_stats(tmp_path / "st")
    np.testing.assert_array_equal(c["top_rows"], a["top_rows"])
    assert c.summary["d_sae"] == 48


def test_row_hash_is_a_bijection():
    rows = np.arange(0, 1 << 20, 7, dtype=np.int64)
    salt = np.uint32(0xDEADBEEF)
    h = row_hash(rows, salt)
    assert len(np.unique(h)) == len(rows)
    np.testing.assert_array_equal(row_unhash(h, salt), rows)


def test_graph_cards_search_the_store_in_chunks_and_find_what_one_pass_finds(store_path, tmp_path):
    """The graph page's feature cards read the store a chunk of windows at a time (memory of one chunk)
    and keep each feature's running top contexts: the same examples as one pass over every window."""
    from interventions.attribution.cards import _examples
    from interventions.sae import load_sae

    store = open_store(store_path)
    tc = load_sae(make_sae(tmp_path, store_path, "standard"))
    feats = np.array([0, 1, 2, 7, 11])
    chunked, searched = _examples(tc, store, feats, 20, 3, 6, 2, chunk=3)
    whole, _ = _examples(tc, store, feats, 20, 3, 6, 2, chunk=1000)
    assert searched == 20 and chunked == whole
    assert all(len(ex) == 3 for ex in chunked) and all(max(e["acts"]) > 0 for ex in chunked for e in ex)
