"""Per-latent statistics of an exported SAE over an activation store, for the feature browser.

    stats = compute_feature_stats("runs/sae/sae", "runs/acts/...", FeatureStatsConfig(top_n=20))
    stats.save("runs/browser/sae")          # feature_stats.npz + feature_stats.json

One streaming pass over the store in chunks of whole windows (bounded memory: nothing grows
with the number of tokens except one float per row for TopK SAEs). The SAE is encoded in JAX
(jit, the export's contract on raw activations); the bookkeeping works on the chunk's nonzero
entries only, in numpy, because on CPU XLA's top_k and scatter over the dense [rows, d_sae]
block cost about as much as the encode itself while the nonzeros are a few percent of it:

- frequency, sum (-> mean over all tokens and over firing tokens): bincounts;
- top-N (value, global row) per latent: a running top-N; only entries above the latent's
  current N-th value are merged (ties: the lower row wins, as in a full sort by (-value, row));
- histogram of nonzero activations on fixed log-spaced bins (bin j: edges[j] <= v < edges[j+1],
  values below/above the range go to the first/last bin);
- quantile samples: in every (latent, histogram bin) the `reservoir` rows with the smallest
  seeded hash are kept (a uniform sample, independent of the chunking: merging is a minimum).
  The hash is a bijection of the row id, so only the hash is stored. At the end the bins are
  grouped into bands of the latent's own distribution (quantile edges `bands`, read off the
  histogram) and `per_band` samples are drawn per band, weighted by each bin's mass in it.

- where the firings fall: per token, per previous token, per position (sae_jax/token_mass.py),
  the evidence of the labels.

A second, small pass computes each chosen example's activations over its context window (only
the windows that are referenced, only the latents that reference them), so the page can colour
every token. Dead: never fired; dense: fires on more than `dense_freq` of the tokens.

This module never imports torch.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from mechinterp.formats import sae as sae_format
from mechinterp.formats.bounds import bounds, check_bounds
from mechinterp.formats.feature_stats import FeatureStats
from mechinterp.formats.sae import DENSE_FREQ, kind, load_export, open_sae_store
from sae_jax.architectures import contract
from sae_jax.row_hash import row_hash, row_unhash
from sae_jax.token_mass import TokenMass

_EMPTY = np.uint32(0xFFFFFFFF)


@dataclass
class FeatureStatsConfig:
    top_n: int = field(default=20, metadata=bounds(1))
    """Top-activating examples kept per latent."""
    bands: tuple[float, ...] = field(default=(0.0, 0.5, 0.9, 0.99, 1.0), metadata=bounds(0, 1))
    """Quantile edges (of the latent's nonzero activations) of the sampled bands."""
    per_band: int = field(default=5, metadata=bounds(1))
    """Examples sampled per band."""
    reservoir: int = field(default=2, metadata=bounds(1))
    """Rows kept per (latent, histogram bin) for the band samples."""
    hist_lo: float = field(default=1e-4, metadata=bounds(0, open_low=True))
    hist_hi: float = field(default=1e4, metadata=bounds(0, open_low=True))
    bins_per_decade: int = field(default=16, metadata=bounds(1))
    """Histogram: log-spaced bins from hist_lo to hist_hi."""
    ctx_before: int = field(default=16, metadata=bounds(0))
    ctx_after: int = field(default=4, metadata=bounds(0))
    """Tokens shown before / after an example's own token."""
    chunk_rows: int = field(default=4096, metadata=bounds(1))
    """Rows encoded per step (rounded down to whole windows, at least one)."""
    max_tokens: int | None = field(default=None, metadata=bounds(1))
    """Stop after this many rows (None: the whole split)."""
    windows: str = field(default="all", metadata={"choices": ("all", "train", "eval")})
    """Which windows: all, train or eval (the store's split)."""
    seed: int = 0
    """Seeds the quantile-band samples."""
    dense_freq: float = field(default=DENSE_FREQ, metadata=bounds(0, 1, open_low=True))
    """A latent firing on more than this fraction of the tokens counts as dense."""
    contexts: bool = True
    """Compute the context activations (second, small pass)."""
    label_tokens: int = field(default=24, metadata=bounds(0))
    """Tokens (and previous tokens) kept per latent with their firing counts, for the labels (0: none)."""

    def __post_init__(self):
        check_bounds(self)
        self.bands = tuple(float(b) for b in self.bands)
        if self.top_n < 1 or self.per_band < 0 or self.reservoir < 1:
            raise ValueError("top_n and reservoir must be >= 1, per_band >= 0")
        if len(self.bands) < 2 or list(self.bands) != sorted(self.bands) or self.bands[0] < 0 or self.bands[-1] > 1:
            raise ValueError(f"bands must be increasing quantiles in [0, 1], got {self.bands}")
        if not 0 < self.hist_lo < self.hist_hi:
            raise ValueError("need 0 < hist_lo < hist_hi")
        if self.windows not in ("all", "train", "eval"):
            raise ValueError(f"windows must be all, train or eval, got {self.windows!r}")

    @property
    def edges(self) -> np.ndarray:
        n = int(round(np.log10(self.hist_hi / self.hist_lo) * self.bins_per_decade))
        return np.logspace(np.log10(self.hist_lo), np.log10(self.hist_hi), n + 1).astype(np.float32)


# ----------------------------------------------------------------------------- encoding


class Encoder:
    """The export's encode contract as a jitted JAX function of (params, x).

    Dense architectures return f [rows, d_sae]; topk returns the k largest pre-activations and
    their latent ids (sparse: relu is applied by the caller)."""

    def __init__(self, weights: dict[str, np.ndarray], cfg: dict):
        self.arch, _ = kind(cfg)
        self.center = bool(cfg.get("apply_b_dec_to_input", True))  # False for transcoders
        self.k = int(cfg.get("k", 0))
        self.weights = {k: np.asarray(v, np.float32) for k, v in weights.items()}
        self.d_in, self.d_sae = self.weights["W_enc"].shape
        self.params = {k: jnp.asarray(v) for k, v in self.weights.items() if k in ("W_enc", "b_enc", "threshold")}
        self.params["offset"] = jnp.asarray(self.weights["b_dec"] if self.center else np.zeros(self.d_in, np.float32))
        self._fn = jax.jit(self._encode)

    def _encode(self, p, x):
        pre = (x - p["offset"]) @ p["W_enc"] + p["b_enc"]
        if self.arch == "topk":  # sparse: the k largest and their ids (the caller applies relu)
            return jax.lax.top_k(pre, self.k)
        return contract.activate(self.arch, pre, threshold=p.get("threshold"))

    def __call__(self, x: np.ndarray):
        return self._fn(self.params, jnp.asarray(x))

    def block(self, x: np.ndarray, latents: np.ndarray, kth: np.ndarray | None = None) -> np.ndarray:
        """Activations of some latents only, numpy: x [R, d_in], latents [L] -> [R, L]. kth [R]: each
        row's k-th largest pre-activation, for topk (a tiny tolerance, scaled by ||x|| ||w||,
        absorbs float differences between this product and the jitted matmul)."""
        w = self.weights
        if "W_enc_T" not in w:
            w["W_enc_T"] = np.ascontiguousarray(w["W_enc"].T)
        cols = w["W_enc_T"][latents]                                    # [L, d_in]
        xc = x - w["b_dec"] if self.center else x
        pre = xc @ cols.T + w["b_enc"][latents]
        f = np.maximum(pre, 0)
        if self.arch == "topk":
            scale = np.linalg.norm(xc, axis=1)[:, None] * np.linalg.norm(cols, axis=1)   # >= sum |x_i w_i|
            f = f * (pre >= kth[:, None] - 4e-6 * scale - 1e-7)
        elif self.arch == "jumprelu":
            f = f * (pre > w["threshold"][latents])
        return f


def _chunks(store, windows: np.ndarray, chunk_rows: int, max_tokens: int | None):
    """(x float32 [rows, d], global row ids [rows]) over the windows, whole windows per chunk."""
    rpw = store.rows_per_window
    per = max(1, chunk_rows // rpw)
    seen, limit = 0, max_tokens if max_tokens is not None else np.inf
    for i in range(0, len(windows), per):
        if seen >= limit:
            return
        ws = windows[i:i + per]
        rows = (ws[:, None].astype(np.int64) * rpw + np.arange(rpw)).ravel()
        x = store.read_windows(ws)
        n = int(min(len(rows), limit - seen))
        seen += n
        yield x[:n], rows[:n]


def _select_windows(store, which: str) -> np.ndarray:
    if which == "all":
        return np.arange(store.n_windows)
    train, ev = store.split()
    return train if which == "train" else ev


def encode_pass(sae_dir: str | Path, store_path: str | Path | None = None, chunk_rows: int = 4096,
                max_tokens: int | None = None) -> dict:
    """The baseline for the benchmark: one jitted encode over the store (read + encode), no stats."""
    weights, cfg = load_export(sae_dir)
    store = open_sae_store(sae_dir, cfg, store_path)
    enc = Encoder(weights, cfg)
    t0, n, out = time.perf_counter(), 0, None
    for x, rows in _chunks(store, np.arange(store.n_windows), chunk_rows, max_tokens):
        out = enc(x)
        n += len(rows)
    jax.block_until_ready(out)
    return {"tokens": n, "wall_s": time.perf_counter() - t0}


# ----------------------------------------------------------------------------- the pass


class _Accumulator:
    def __init__(self, d_sae: int, cfg: FeatureStatsConfig, n_rows_store: int, topk: bool):
        self.S, self.cfg, N = d_sae, cfg, cfg.top_n
        self.edges = cfg.edges
        self.nb = len(self.edges) - 1
        self.count = np.zeros(d_sae, np.int64)
        self.sum = np.zeros(d_sae, np.float64)
        self.hist = np.zeros(d_sae * self.nb, np.int64)
        self.top_v = np.zeros((d_sae, N), np.float32)
        self.top_r = np.full((d_sae, N), -1, np.int64)
        self.thr = np.zeros(d_sae, np.float32)
        rng = np.random.default_rng([cfg.seed, 7])
        self.salt = rng.integers(0, 1 << 32, (cfg.reservoir, d_sae), dtype=np.uint64).astype(np.uint32)
        self.res = np.full((cfg.reservoir, d_sae * self.nb), _EMPTY, np.uint32)
        self.kth = np.full(n_rows_store, np.nan, np.float32) if topk else None
        self.n_tokens = 0

    def add(self, lat: np.ndarray, v: np.ndarray, rows: np.ndarray) -> None:
        """One chunk's nonzero entries: latent ids, values (> 0), global rows (increasing chunks)."""
        S, nb = self.S, self.nb
        self.count += np.bincount(lat, minlength=S)
        self.sum += np.bincount(lat, v, minlength=S)
        b = np.clip(np.searchsorted(self.edges, v, side="right") - 1, 0, nb - 1)
        key = lat * nb + b
        self.hist += np.bincount(key, minlength=S * nb)
        for j in range(self.cfg.reservoir):
            np.minimum.at(self.res[j], key, row_hash(rows, self.salt[j, lat]))
        cand = v > self.thr[lat]
        if cand.any():
            self._merge(lat[cand], v[cand], rows[cand])

    def _merge(self, lat, v, rows) -> None:
        N = self.cfg.top_n
        have = self.top_r >= 0
        el, ep = np.nonzero(have)
        lat = np.concatenate([el, lat])
        v = np.concatenate([self.top_v[el, ep], v])
        rows = np.concatenate([self.top_r[el, ep], rows])
        order = np.lexsort((rows, -v, lat))
        lat, v, rows = lat[order], v[order], rows[order]
        rank = np.arange(len(lat)) - np.searchsorted(lat, lat, side="left")
        keep = rank < N
        self.top_v[lat[keep], rank[keep]] = v[keep]
        self.top_r[lat[keep], rank[keep]] = rows[keep]
        self.thr = np.where(self.top_r[:, N - 1] >= 0, self.top_v[:, N - 1], 0).astype(np.float32)


def _nonzeros(enc: Encoder, out, rows: np.ndarray, acc: _Accumulator):
    if enc.arch == "topk":
        vals, idx = (np.asarray(a) for a in out)
        acc.kth[rows] = vals[:, -1]
        keep = vals > 0
        r, _ = np.nonzero(keep)
        return idx[keep].astype(np.int64), vals[keep], rows[r]
    f = np.asarray(out)
    flat = np.flatnonzero(f > 0)
    r, lat = np.divmod(flat, f.shape[1])
    return lat, f.reshape(-1)[flat], rows[r]


def compute_feature_stats(sae_dir: str | Path, store_path: str | Path | None = None,
                          cfg: FeatureStatsConfig | None = None, progress: bool = False) -> FeatureStats:
    """Statistics of every latent of the export at `sae_dir` over the store it was trained on
    (or `store_path`). See the module docstring for what is computed and how."""
    cfg = cfg or FeatureStatsConfig()
    weights, scfg = load_export(sae_dir)
    store_path = store_path or sae_format.store_path(scfg)
    store = open_sae_store(sae_dir, scfg, store_path)
    if store.n_rows >= 1 << 32:
        raise ValueError("stores of 2^32 rows or more are not supported; pass --max_tokens")
    enc = Encoder(weights, scfg)
    acc = _Accumulator(enc.d_sae, cfg, store.n_rows, enc.arch == "topk")
    mass = TokenMass(store, enc.d_sae, cfg.label_tokens) if cfg.label_tokens else None

    def count(out, rows):
        nz = _nonzeros(enc, out, rows, acc)
        acc.add(*nz)
        if mass is not None:
            mass.rows_seen(rows)
            mass.add(*nz)

    windows = _select_windows(store, cfg.windows)
    t0 = time.perf_counter()
    pending = None
    for i, (x, rows) in enumerate(_chunks(store, windows, cfg.chunk_rows, cfg.max_tokens)):
        out = enc(x)                                   # dispatched asynchronously ...
        if pending is not None:                        # ... while the previous chunk is counted
            count(*pending)
        pending = (out, rows)
        acc.n_tokens += len(rows)
        if progress and i % 50 == 0:
            print(f"  stats: {acc.n_tokens} tokens, {time.perf_counter() - t0:.1f}s", flush=True)
    if pending is not None:
        count(*pending)
    t_pass = time.perf_counter() - t0
    arrays = _finish(acc, cfg)
    if mass is not None:
        arrays.update(mass.finish())
    t1 = time.perf_counter()
    if cfg.contexts:
        arrays.update(_contexts(store, enc, acc, arrays, cfg))
    n = max(acc.n_tokens, 1)
    summary = {
        "sae": str(Path(sae_dir).resolve()), "store": str(Path(store_path).resolve()), "n_tokens": acc.n_tokens, "d_sae": enc.d_sae,
        "architecture": enc.arch, "hook": store.meta.hook, "model": store.meta.model,
        "first_pos": store.meta.first_pos, "rows_per_window": store.rows_per_window,
        "dead": int(arrays["dead"].sum()), "dense": int(arrays["dense"].sum()),
        "l0": float(acc.count.sum() / n), "config": asdict(cfg),
        "timing": {"stats_pass_s": t_pass, "contexts_s": time.perf_counter() - t1},
    }
    return FeatureStats(arrays, summary)


def _finish(acc: _Accumulator, cfg: FeatureStatsConfig) -> dict[str, np.ndarray]:
    S, nb, n = acc.S, acc.nb, max(acc.n_tokens, 1)
    hist = acc.hist.reshape(S, nb)
    count = acc.count
    out = {
        "n_tokens": np.int64(acc.n_tokens), "count": count, "sum": acc.sum,
        "freq": (count / n).astype(np.float64), "mean": acc.sum / n,
        "mean_firing": np.where(count > 0, acc.sum / np.maximum(count, 1), 0.0),
        "max": acc.top_v[:, 0].copy(), "top_values": acc.top_v, "top_rows": acc.top_r,
        "hist": hist.astype(np.int64), "hist_edges": acc.edges,
        "dead": count == 0, "dense": count / n > cfg.dense_freq, "bands": np.asarray(cfg.bands, np.float64),
    }
    out["sample_rows"] = _band_samples(acc, hist, count, cfg)
    return out


def _band_samples(acc: _Accumulator, hist: np.ndarray, count: np.ndarray, cfg: FeatureStatsConfig) -> np.ndarray:
    """[S, n_bands, per_band] rows (-1: none) drawn from the per-bin reservoirs."""
    S, nb, m, P = acc.S, acc.nb, cfg.reservoir, cfg.per_band
    B = len(cfg.bands) - 1
    rows = np.stack([row_unhash(acc.res[j].reshape(S, nb), acc.salt[j][:, None]) for j in range(m)], -1)  # [S, nb, m]
    valid = np.broadcast_to((hist > 0)[:, :, None], rows.shape).copy()
    for j in range(1, m):                      # two hashes may keep the same row, or a bin hold < m rows
        valid[:, :, j] &= (hist > j) & ~(rows[:, :, :j] == rows[:, :, j:j + 1]).any(-1)
    n_in_bin = np.maximum(valid.sum(-1), 1)
    tot = np.maximum(count, 1)[:, None].astype(np.float64)
    hi = np.cumsum(hist, 1) / tot
    lo = hi - hist / tot
    out = np.full((S, B, P), -1, np.int64)
    if P == 0:
        return out
    rng = np.random.default_rng([cfg.seed, 11])
    flat_rows = rows.reshape(S, nb * m)
    for b in range(B):
        qlo, qhi = cfg.bands[b], cfg.bands[b + 1]
        mass = np.clip(np.minimum(hi, qhi) - np.maximum(lo, qlo), 0, None)          # [S, nb]
        w = (mass / n_in_bin)[:, :, None] * valid                                    # [S, nb, m]
        w = w.reshape(S, nb * m)
        with np.errstate(divide="ignore"):
            score = np.log(w) + rng.gumbel(size=w.shape)                             # Gumbel top-P:
        pick = np.argsort(-score, axis=1)[:, :P]                                     # weighted, no replacement
        ok = np.take_along_axis(w, pick, 1) > 0
        out[:, b] = np.where(ok, np.take_along_axis(flat_rows, pick, 1), -1)
    return out


def _contexts(store, enc: Encoder, acc: _Accumulator, arrays: dict, cfg: FeatureStatsConfig) -> dict:
    """Activations of each example's latent over its context, aligned to token offsets
    -ctx_before..ctx_after around the example's token (NaN: no activation row there, e.g. BOS).
    Window by window (each referenced window is read once), only for the latents it shows."""
    S, N = acc.S, cfg.top_n
    top_r, samp_r = arrays["top_rows"], arrays["sample_rows"]
    B, P = samp_r.shape[1:]
    lat = np.concatenate([np.repeat(np.arange(S), N), np.repeat(np.arange(S), B * P)])
    row = np.concatenate([top_r.ravel(), samp_r.ravel()])
    offs = np.arange(-cfg.ctx_before, cfg.ctx_after + 1)
    ctx = np.full((len(row), len(offs)), np.nan, np.float32)
    rpw = store.rows_per_window
    ok = np.flatnonzero(row >= 0)
    win, p = np.divmod(row[ok], rpw)
    order = np.argsort(win, kind="stable")
    ok, win, p = ok[order], win[order], p[order]
    starts = np.flatnonzero(np.r_[True, win[1:] != win[:-1]])
    for s0, s1 in zip(starts, np.r_[starts[1:], len(ok)]):
        w = int(win[s0])
        lats, col = np.unique(lat[ok[s0:s1]], return_inverse=True)
        kth = acc.kth[w * rpw:(w + 1) * rpw] if acc.kth is not None else None
        f = enc.block(np.asarray(store.window_rows(w), np.float32), lats, kth)      # [rpw, n_lats]
        pos = p[s0:s1, None] + offs                                                 # rows in the window
        inside = (pos >= 0) & (pos < rpw)
        ctx[ok[s0:s1]] = np.where(inside, f[np.clip(pos, 0, rpw - 1), col[:, None]], np.nan)
    val = np.nan_to_num(ctx[:, cfg.ctx_before])
    nt, C = S * N, len(offs)
    s_val, s_ctx = val[nt:].reshape(S, B, P), ctx[nt:].reshape(S, B, P, C)
    srt = np.argsort(np.where(samp_r >= 0, -s_val, np.inf), axis=-1, kind="stable")   # strongest first
    return {"top_ctx": ctx[:nt].reshape(S, N, C), "top_values_ctx": val[:nt].reshape(S, N),
            "sample_rows": np.take_along_axis(samp_r, srt, -1), "sample_values": np.take_along_axis(s_val, srt, -1),
            "sample_ctx": np.take_along_axis(s_ctx, srt[..., None], -2), "ctx_offsets": offs.astype(np.int64)}
