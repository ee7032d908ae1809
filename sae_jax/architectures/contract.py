"""The inference contract of an export, in JAX (mechinterp/formats/sae.py's encode_np is the numpy
reference; interventions/sae.py writes it in torch; tests/unit/test_cross_framework.py checks all three).

    standard:  f = relu(pre)
    topk:      f = relu(pre) on the k largest entries of pre per token, 0 elsewhere
    jumprelu:  f = relu(pre) * (pre > threshold)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def activate(export: str, pre, k=None, threshold=None, kmax: int | None = None):
    """Dense latents from pre-activations. topk: k may be a traced array when the static bound kmax
    is given (sweeps); jumprelu: threshold [d_sae] or a scalar."""
    if export == "standard":
        return jax.nn.relu(pre)
    if export == "topk":
        vals, idx = jax.lax.top_k(pre, kmax or k)
        vals = jax.nn.relu(vals) * (jnp.arange(vals.shape[-1]) < k)
        rows = jnp.arange(pre.shape[0])[:, None]
        return jnp.zeros_like(pre).at[rows, idx].set(vals)
    if export == "jumprelu":
        return jax.nn.relu(pre) * (pre > threshold)
    raise ValueError(f"unknown export architecture {export!r}")
