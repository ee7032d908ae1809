"""Held-out metrics: MSE, FVU / explained variance, L0, dead and dense latents, frequencies.

FVU = sum ||y - y_hat||^2 / sum ||y - mean(y)||^2 over all held-out tokens (one global
ratio, scale-free; y is the input of an SAE, the target of a transcoder). Dead: never fired in
the evaluated tokens; dense: fires on > 10% of them.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from sae_jax.config import SAEConfig
from sae_jax.modules import SAE, encode, split_row

DENSE_FREQ = 0.1


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
    err = ((sae.decode(f) + sae.skip_path(x) - y) ** 2).sum(-1) * mask
    active = (f > 0) & (mask[:, None] > 0)
    return err.sum(), active.sum(), active.sum(0)


def evaluate(sae: SAE, k, threshold, store, windows: np.ndarray, factor, cfg: SAEConfig,
             max_tokens: int, rows: int = 4096, population: bool = False) -> tuple[list[dict], np.ndarray]:
    """([metrics per SAE], frequencies [n_sae, d_sae]). `sae`, `k`, `threshold` are stacked
    along a leading axis when population=True. factor: the rows' normalisation (train.normalisation_factor)."""
    fn = lambda s, kk, t, x, m: _chunk_stats(s, kk, t, x, m, cfg)
    fn = eqx.filter_jit(eqx.filter_vmap(fn, in_axes=(0, 0, 0, None, None)) if population else fn)
    n_sae = int(np.shape(k)[0]) if population else 1
    sse, l0, counts = np.zeros(n_sae), np.zeros(n_sae), np.zeros((n_sae, cfg.d_sae))
    n, sx, sxx = 0, np.zeros(cfg.d_target), 0.0
    c_out = float(np.atleast_1d(factor)[-1])
    for x, mask in iter_rows(store, windows, max_tokens, rows):
        x = x * np.asarray(factor, np.float32)
        m = int(mask.sum())
        x64 = x[:m, x.shape[1] - cfg.d_target:].astype(np.float64)  # the target's columns
        n, sx, sxx = n + m, sx + x64.sum(0), sxx + float((x64 ** 2).sum())
        e, a, c = jax.device_get(fn(sae, k, threshold, jnp.asarray(x), jnp.asarray(mask)))
        sse += np.reshape(e, -1)
        l0 += np.reshape(a, -1)
        counts += np.reshape(c, (n_sae, cfg.d_sae))
    if n == 0:
        return [dict(eval_tokens=0) for _ in range(n_sae)], np.zeros((n_sae, cfg.d_sae))
    sst = sxx - float((sx ** 2).sum()) / n
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
        ))
    return out, freq
