"""What an SAE or transcoder starts from, estimated on the first training rows (init_tokens of them,
normalised as training sees them): b_dec, and for a skip transcoder W_skip.

A skip transcoder's linear path starts at the least-squares map from the input to the target
(ridge-regularised normal equations in float64, solved once): the MLP's best linear approximation.
The sparse latents then only learn what that map leaves, which is what they would have to learn at
the end anyway. b_dec is the geometric median (or mean) of what is left for the decoder to explain:
the target itself, or its residual after the skip path.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from sae_jax.config import SAEConfig, TrainConfig
from sae_jax.modules import geometric_median, split_row

RIDGE = 1e-4
"""Least squares' ridge, relative to the mean diagonal of X^T X (keeps rank-deficient inputs stable)."""


def least_squares_map(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """W [d_in, d_out] minimising ||(y - mean y) - (x - mean x) W||^2 + ridge ||W||^2."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    xc, yc = x - x.mean(0), y - y.mean(0)
    gram = xc.T @ xc
    gram[np.diag_indices_from(gram)] += RIDGE * max(float(np.trace(gram)) / len(gram), 1e-12)
    return np.linalg.solve(gram, xc.T @ yc).astype(np.float32)


def data_init(store, windows, factor, scfg: SAEConfig, tcfg: TrainConfig) -> tuple[jnp.ndarray, jnp.ndarray | None]:
    """(b_dec [d_out], W_skip [d_in, d_out] or None) from the first init_tokens training rows."""
    rpw = store.rows_per_window
    rows = store.read_windows(windows[:max(1, math.ceil(tcfg.init_tokens / rpw))], skip_bos=True)[:tcfg.init_tokens]
    x, y = split_row(np.asarray(rows * factor, np.float32), scfg)
    W_skip = None
    if scfg.skip and tcfg.skip_init == "lstsq":
        W_skip = least_squares_map(x, y)
        y = y - x @ W_skip
    elif scfg.skip:
        W_skip = np.zeros((scfg.d_in, scfg.d_out), np.float32)
    y = jnp.asarray(y)  # b_dec lives in the target's space
    if tcfg.b_dec_init == "median":
        b_dec = geometric_median(y)
    else:
        b_dec = y.mean(0) if tcfg.b_dec_init == "mean" else jnp.zeros(y.shape[1])
    return b_dec, None if W_skip is None else jnp.asarray(W_skip)
