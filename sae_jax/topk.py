"""TopK encode/decode that never pay for the dense [batch, d_sae] side of the backward.

`topk_encode` computes pre = (x - b_dec) @ W_enc + b_enc, z = relu(pre) and the k largest z
per row (dense forward matmul: needed to choose the k). Its custom VJP receives gradients
only for the kept values; x is data, so the dense [B, d_sae] x [d_sae, d_in] input gradient
that autodiff would compute is replaced by one matvec for b_dec, and the W_enc gradient is
either a scatter of k rows per token or one matmul (SCATTER_ENCODER_GRAD, chosen by
measurement). `sparse_decode` gathers the k active decoder rows; its backward recomputes that
gather rather than storing [B, k, d_in] and scatters into the k rows of W_dec (sparsify's
trick). `dense_*` are the plain autodiff versions, used as the reference in tests and benches.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int


def _topk(z, k):
    return jax.lax.top_k(z, k)


# Measured on CPU (scripts/bench_sae.py): XLA's scatter of B*k rows into W_enc is slower
# than one dense [d_in, B] x [B, d_sae] matmul of the scattered gradient, so the encoder
# weight gradient stays a matmul unless this is set (it may win on accelerators / small k).
SCATTER_ENCODER_GRAD = False


@partial(jax.custom_vjp, nondiff_argnums=(4,))
def topk_encode(x: Float[Array, "b d_in"], b_dec: Float[Array, " d_in"], W_enc: Float[Array, "d_in d_sae"],
                b_enc: Float[Array, " d_sae"], k: int) -> tuple[Float[Array, "b k"], Int[Array, "b k"]]:
    """(values, indices) of the k largest relu((x - b_dec) @ W_enc + b_enc) per row, sorted
    descending. x is data: it gets no gradient, so the b_dec gradient is one matvec,
    -W_enc @ (gradient of b_enc), instead of a [B, d_sae] x [d_sae, d_in] matmul."""
    return _topk(jax.nn.relu((x - b_dec) @ W_enc + b_enc), k)


def _encode_fwd(x, b_dec, W_enc, b_enc, k):
    vals, idx = topk_encode(x, b_dec, W_enc, b_enc, k)
    return (vals, idx), (x, b_dec, W_enc, vals, idx)


def _encode_bwd(k, res, cts):
    x, b_dec, W_enc, vals, idx = res
    g = jnp.where(vals > 0, cts[0], 0.0)                     # relu: no gradient where z <= 0
    d_in, d_sae = W_enc.shape
    xc = x - b_dec
    if SCATTER_ENCODER_GRAD:
        flat_idx = idx.reshape(-1)
        g_b_enc = jnp.zeros((d_sae,), g.dtype).at[flat_idx].add(g.reshape(-1))
        rows = (g[:, :, None] * xc[:, None, :]).reshape(-1, d_in)
        g_W_enc = jnp.zeros((d_sae, d_in), g.dtype).at[flat_idx].add(rows).T
    else:
        g_dense = to_dense(g, idx, d_sae)
        g_b_enc = g_dense.sum(0)
        g_W_enc = xc.T @ g_dense
    return jnp.zeros_like(x), -(W_enc @ g_b_enc), g_W_enc, g_b_enc


topk_encode.defvjp(_encode_fwd, _encode_bwd)


@jax.custom_vjp
def sparse_decode(vals: Float[Array, "b k"], idx: Int[Array, "b k"],
                  W_dec: Float[Array, "d_sae d_in"]) -> Float[Array, "b d_in"]:
    """sum_j vals[b, j] * W_dec[idx[b, j]] (no b_dec)."""
    return jnp.einsum("bk,bkd->bd", vals, W_dec[idx])


def _decode_fwd(vals, idx, W_dec):
    return sparse_decode(vals, idx, W_dec), (vals, idx, W_dec)


def _decode_bwd(res, g):
    vals, idx, W_dec = res
    g_vals = jnp.einsum("bd,bkd->bk", g, W_dec[idx])
    rows = (vals[:, :, None] * g[:, None, :]).reshape(-1, W_dec.shape[1])
    g_W_dec = jnp.zeros_like(W_dec).at[idx.reshape(-1)].add(rows)
    return g_vals, None, g_W_dec


sparse_decode.defvjp(_decode_fwd, _decode_bwd)


def dense_topk_encode(x, b_dec, W_enc, b_enc, k):
    """Reference: the same values through plain autodiff (dense backward)."""
    return _topk(jax.nn.relu((x - b_dec) @ W_enc + b_enc), k)


def dense_decode(vals, idx, W_dec):
    """Reference: scatter into [B, d_sae] and a dense matmul."""
    return to_dense(vals, idx, W_dec.shape[0]) @ W_dec


def to_dense(vals: Float[Array, "b k"], idx: Int[Array, "b k"], d_sae: int) -> Float[Array, "b d_sae"]:
    rows = jnp.arange(vals.shape[0])[:, None]
    return jnp.zeros((vals.shape[0], d_sae), vals.dtype).at[rows, idx].add(vals)
