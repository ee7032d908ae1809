"""Held-out metrics: MSE, FVU / explained variance, L0, dead and dense latents, frequencies.

FVU = sum ||y - y_hat||^2 / sum ||y - mean(y)||^2 over all held-out tokens (one global
ratio, scale-free; y is the input of an SAE, the target of a transcoder). Dead: never fired in
the evaluated tokens; dense: fires on > 10% of them.

A few tokens (attention-sink-like positions) have norms hundreds of times the median; they
dominate the variance and are easy to reconstruct, so FVU over all tokens flatters an SAE.
explained_variance_typical leaves out the tokens whose norm is over MASSIVE x the median norm
(of the first chunk's tokens), and rel_error_p50 / p90 are quantiles of the per-token relative
error ||y - y_hat|| / ||y||. shrinkage: mean ||y_hat|| / ||y|| (SAEBench's relative
reconstruction norm; < 1 when the sparsity penalty shrinks the latents).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from mechinterp.formats.sae import DENSE_FREQ, MASSIVE
from sae_jax.config import SAEConfig
from sae_jax.modules import SAE, encode, split_row


def iter_rows(store, windows: np.ndarray, max_tokens: int, rows: int):
    """Fixed-size float32 chunks [rows, d] of the given windows, in order, with a 0/1 mask
    for the padding of the last one (fixed shapes: one compilation). BOS rows inside windows
    are left out, as in training."""
    rpw = store.rows_per_window
    per = max(1, rows // rpw)
    seen = 0
    for i in range(0, len(windows), per):
        if seen >= max_tokens:
            return
        x = store.read_windows(windows[i:i + per], skip_bos=True)[:max_tokens - seen]
        seen += len(x)
        mask = np.zeros(rows, np.float32)
        mask[:len(x)] = 1
        yield np.pad(x, ((0, rows - len(x)), (0, 0))), mask


def _chunk_stats(sae: SAE, k, threshold, rows, mask, cfg: SAEConfig):
    x, y = split_row(rows, cfg)
    f = encode(sae, x, k=k, threshold=threshold, kmax=cfg.kmax)
    recon = sae.decode(f) + sae.skip_path(x)
    err = ((recon - y) ** 2).sum(-1) * mask
    active = (f > 0) & (mask[:, None] > 0)
    return err, jnp.linalg.norm(recon, axis=-1), active.sum(), active.sum(0)


def evaluate(sae: SAE, k, threshold, store, windows: np.ndarray, factor, cfg: SAEConfig,
             max_tokens: int, rows: int = 4096, population: bool = False) -> tuple[list[dict], np.ndarray]:
    """([metrics per SAE], frequencies [n_sae, d_sae]). `sae`, `k`, `threshold` are stacked
    along a leading axis when population=True. factor: the rows' normalisation (train.normalisation_factor)."""
    fn = lambda s, kk, t, x, m: _chunk_stats(s, kk, t, x, m, cfg)
    fn = eqx.filter_jit(eqx.filter_vmap(fn, in_axes=(0, 0, 0, None, None)) if population else fn)
    n_sae = int(np.shape(k)[0]) if population else 1
    sse, l0, counts = np.zeros(n_sae), np.zeros(n_sae), np.zeros((n_sae, cfg.d_sae))
    n, sx, sxx = 0, np.zeros(cfg.d_target), 0.0
    typical = dict(n=0, sx=np.zeros(cfg.d_target), sxx=0.0, sse=np.zeros(n_sae))
    rel_err, shrink, limit = [], np.zeros(n_sae), None
    c_out = float(np.atleast_1d(factor)[-1])
    for x, mask in iter_rows(store, windows, max_tokens, rows):
        x = x * np.asarray(factor, np.float32)
        m = int(mask.sum())
        x64 = x[:m, x.shape[1] - cfg.d_target:].astype(np.float64)  # the target's columns
        n, sx, sxx = n + m, sx + x64.sum(0), sxx + float((x64 ** 2).sum())
        e, r_norm, a, c = jax.device_get(fn(sae, k, threshold, jnp.asarray(x), jnp.asarray(mask)))
        e, r_norm = np.reshape(e, (n_sae, -1))[:, :m], np.reshape(r_norm, (n_sae, -1))[:, :m]
        sse += e.sum(1)
        l0 += np.reshape(a, -1)
        counts += np.reshape(c, (n_sae, cfg.d_sae))
        norm = np.maximum(np.linalg.norm(x64, axis=1), 1e-12)
        limit = MASSIVE * float(np.median(norm)) if limit is None else limit
        keep = norm <= limit
        typical["n"] += int(keep.sum())
        typical["sx"] += x64[keep].sum(0)
        typical["sxx"] += float((x64[keep] ** 2).sum())
        typical["sse"] += e[:, keep].sum(1)
        rel_err.append(np.sqrt(e) / norm)
        shrink += (r_norm / norm).sum(1)
    if n == 0:
        return [dict(eval_tokens=0) for _ in range(n_sae)], np.zeros((n_sae, cfg.d_sae))
    sst = sxx - float((sx ** 2).sum()) / n
    sst_typical = typical["sxx"] - float((typical["sx"] ** 2).sum()) / max(typical["n"], 1)
    rel_err = np.concatenate(rel_err, axis=1)
    freq = counts / n
    out = []
    for i in range(n_sae):
        fvu = float(sse[i] / sst)
        out.append(dict(
            eval_tokens=n,
            mse=float(sse[i] / (n * cfg.d_target) / c_out ** 2),
            mse_normalised=float(sse[i] / (n * cfg.d_target)),
            fvu=fvu, explained_variance=1.0 - fvu,
            l0=float(l0[i] / n),
            dead=int((counts[i] == 0).sum()), dead_frac=float((counts[i] == 0).mean()),
            dense=int((freq[i] > DENSE_FREQ).sum()),
            explained_variance_typical=float(1 - typical["sse"][i] / sst_typical) if sst_typical > 0 else None,
            massive_tokens=n - typical["n"], shrinkage=float(shrink[i] / n),
            rel_error_p50=float(np.quantile(rel_err[i], 0.5)), rel_error_p90=float(np.quantile(rel_err[i], 0.9)),
        ))
    return out, freq
