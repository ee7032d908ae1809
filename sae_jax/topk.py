"""TopK encode/decode that never pay for the dense [batch, d_sae] side of the backward.

`topk_encode` computes pre = (x - b_dec) @ W_enc + b_enc, z = relu(pre) and the k largest z
per row (the dense forward matmul is needed to choose the k). Its custom VJP receives
gradients only for the kept values; x is data, so the dense [B, d_sae] x [d_sae, d_in] input
gradient that autodiff would compute is replaced by one matvec for b_dec, and the W_enc
gradient is a scatter of k rows per token. `sparse_decode` sums the k active decoder rows;
its backward scatters into those k rows of W_dec (sparsify's trick). `dense_*` are the plain
autodiff versions, the reference in tests and benches.

On CPU, XLA's gather and scatter are memory-bound when they materialise [B, k, d_in]
(300 MB at B = 4096, k = 32, d_in = 576): the decode is written as k fused gather-adds and
the scatters run over token chunks whose rows stay in cache (measured, scripts/bench_sae.py).
XLA's CPU top_k stays: a block-maximum preselection measured no faster.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from sae_jax import cpu_kernels

SCATTER_CHUNK = 256
"""Tokens per scatter step: chunk * k rows of d_in floats (~19 MB at k = 32, d_in = 576)."""


def uses_kernels(*arrays) -> bool:
    """Use the C++ CPU kernels (sae_jax/cpu_kernels.cc): float32 on the CPU, when they built."""
    return all(a.dtype == jnp.float32 for a in arrays) and cpu_kernels.enabled()


def select_topk(z: Float[Array, "b n"], k: int) -> tuple[Float[Array, "b k"], Int[Array, "b k"]]:
    return cpu_kernels.topk(z, k) if uses_kernels(z) else jax.lax.top_k(z, k)


def _after(*arrays):
    """Fence the inputs off: XLA would otherwise fuse the producers of the top-k indices
    (matmul, top_k) into every gather that uses them and recompute them (measured 14x slower)."""
    return jax.lax.optimization_barrier(arrays)


def gather_sum(coef: Float[Array, "b k"], idx: Int[Array, "b k"], W: Float[Array, "n d"]) -> Float[Array, "b d"]:
    """sum_j coef[:, j, None] * W[idx[:, j]], one gather-add per j (no [b, k, d] temporary)."""
    if uses_kernels(coef, W):
        return cpu_kernels.gather_sum(coef, idx, W)
    coef, idx = _after(coef, idx)
    return jax.lax.fori_loop(0, idx.shape[1], lambda j, out: out + coef[:, j, None] * W[idx[:, j]],
                             jnp.zeros((idx.shape[0], W.shape[1]), W.dtype))


def gather_dot(g: Float[Array, "b d"], idx: Int[Array, "b k"], W: Float[Array, "n d"]) -> Float[Array, "b k"]:
    """out[b, j] = g[b] . W[idx[b, j]], one column at a time (no [b, k, d] temporary)."""
    if uses_kernels(g, W):
        return cpu_kernels.gather_dot(g, idx, W)
    g, idx = _after(g, idx)
    return jax.lax.fori_loop(0, idx.shape[1], lambda j, out: out.at[:, j].set((g * W[idx[:, j]]).sum(-1)),
                             jnp.zeros(idx.shape, g.dtype))


def scatter_rows(idx: Int[Array, "b k"], coef: Float[Array, "b k"], vecs: Float[Array, "b d"], n: int) -> Float[Array, "n d"]:
    """out[n, d] with out[idx[b, j]] += coef[b, j] * vecs[b], over token chunks that fit in cache."""
    if uses_kernels(coef, vecs):
        return cpu_kernels.scatter_rows(idx, coef, vecs, n)
    idx, coef, vecs = _after(idx, coef, vecs)
    b, k = idx.shape
    c = min(SCATTER_CHUNK, b)
    pad = -b % c
    if pad:  # zero-weight rows scatter nothing
        idx, coef, vecs = (jnp.pad(a, ((0, pad),) + ((0, 0),) * (a.ndim - 1)) for a in (idx, coef, vecs))

    def body(acc, chunk):
        i, w, v = chunk
        return acc.at[i.reshape(-1)].add((w[:, :, None] * v[:, None, :]).reshape(-1, v.shape[1])), None

    chunks = (idx.reshape(-1, c, k), coef.reshape(-1, c, k), vecs.reshape(-1, c, vecs.shape[1]))
    return jax.lax.scan(body, jnp.zeros((n, vecs.shape[1]), vecs.dtype), chunks)[0]


@partial(jax.custom_vjp, nondiff_argnums=(4,))
def topk_encode(x: Float[Array, "b d_in"], b_dec: Float[Array, " d_in"], W_enc: Float[Array, "d_in d_sae"],
                b_enc: Float[Array, " d_sae"], k: int) -> tuple[Float[Array, "b k"], Int[Array, "b k"]]:
    """(values, indices) of the k largest relu((x - b_dec) @ W_enc + b_enc) per row, sorted
    descending. x is data: it gets no gradient, so the b_dec gradient is one matvec,
    -W_enc @ (gradient of b_enc), instead of a [B, d_sae] x [d_sae, d_in] matmul."""
    return select_topk(jax.nn.relu((x - b_dec) @ W_enc + b_enc), k)


def _encode_fwd(x, b_dec, W_enc, b_enc, k):
    vals, idx = topk_encode(x, b_dec, W_enc, b_enc, k)
    return (vals, idx), (x, b_dec, W_enc, vals, idx)


def _encode_bwd(k, res, cts):
    x, b_dec, W_enc, vals, idx = res
    g = jnp.where(vals > 0, cts[0], 0.0)                     # relu: no gradient where z <= 0
    d_sae = W_enc.shape[1]
    g_b_enc = jnp.zeros((d_sae,), g.dtype).at[idx.reshape(-1)].add(g.reshape(-1))
    g_W_enc = scatter_rows(idx, g, x - b_dec, d_sae).T
    return jnp.zeros_like(x), -(W_enc @ g_b_enc), g_W_enc, g_b_enc


topk_encode.defvjp(_encode_fwd, _encode_bwd)


@jax.custom_vjp
def sparse_decode(vals: Float[Array, "b k"], idx: Int[Array, "b k"],
                  W_dec: Float[Array, "d_sae d_in"]) -> Float[Array, "b d_in"]:
    """sum_j vals[b, j] * W_dec[idx[b, j]] (no b_dec)."""
    return gather_sum(vals, idx, W_dec)


def _decode_fwd(vals, idx, W_dec):
    return sparse_decode(vals, idx, W_dec), (vals, idx, W_dec)


def _decode_bwd(res, g):
    vals, idx, W_dec = res
    return gather_dot(g, idx, W_dec), None, scatter_rows(idx, vals, g, W_dec.shape[0])


sparse_decode.defvjp(_decode_fwd, _decode_bwd)


def dense_topk_encode(x, b_dec, W_enc, b_enc, k):
    """Reference: lax.top_k and plain autodiff (dense backward)."""
    return jax.lax.top_k(jax.nn.relu((x - b_dec) @ W_enc + b_enc), k)


def dense_decode(vals, idx, W_dec):
    """Reference: scatter into [B, d_sae] and a dense matmul."""
    return to_dense(vals, idx, W_dec.shape[0]) @ W_dec


def to_dense(vals: Float[Array, "b k"], idx: Int[Array, "b k"], d_sae: int) -> Float[Array, "b d_sae"]:
    rows = jnp.arange(vals.shape[0])[:, None]
    return jnp.zeros((vals.shape[0], d_sae), vals.dtype).at[rows, idx].add(vals)
