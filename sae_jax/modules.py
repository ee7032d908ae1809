"""The SAE as a small frozen Equinox pytree, its initialisation, and its inference maths.

One module for every architecture (the architecture is a static field), so populations of
SAEs stack into one pytree for `eqx.filter_vmap`. Shapes follow SAELens:

    W_enc [d_in, d_sae]   b_enc [d_sae]   W_dec [d_sae, d_in]   b_dec [d_in]
    log_threshold [d_sae] (JumpReLU; unused, zero, elsewhere)

Inference (what the export promises; x is the normalised activation here, the raw one after
export, which folds the factor into the weights):

    pre   = (x - b_dec) @ W_enc + b_enc                       (apply_b_dec_to_input = true)
    relu:      f = relu(pre)
    topk:      f = relu(pre) on the k largest entries of pre per token, 0 elsewhere
    jumprelu:  f = relu(pre) * (pre > threshold)               threshold = exp(log_threshold)
    batchtopk: trained with a batch-level top-k; at inference exactly jumprelu with
               threshold = the moving estimate of the smallest kept activation (one value
               broadcast to [d_sae]); exported as architecture "jumprelu".
    recon = f @ W_dec + b_dec
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from sae_jax.config import SAEConfig


class SAE(eqx.Module):
    W_enc: Float[Array, "d_in d_sae"]
    b_enc: Float[Array, " d_sae"]
    W_dec: Float[Array, "d_sae d_in"]
    b_dec: Float[Array, " d_in"]
    log_threshold: Float[Array, " d_sae"]
    arch: str = eqx.field(static=True)

    @property
    def threshold(self) -> Float[Array, " d_sae"]:
        return jnp.exp(self.log_threshold)

    def pre_acts(self, x: Float[Array, "b d_in"]) -> Float[Array, "b d_sae"]:
        return (x - self.b_dec) @ self.W_enc + self.b_enc

    def decode(self, f: Float[Array, "b d_sae"]) -> Float[Array, "b d_in"]:
        return f @ self.W_dec + self.b_dec


def init_sae(cfg: SAEConfig, key: PRNGKeyArray, b_dec: Float[Array, " d_in"] | None = None) -> SAE:
    """Decoder rows are random directions (norm dec_init_norm for relu, 1 otherwise); the encoder
    starts as the decoder's transpose; b_enc = 0; b_dec from the data when given."""
    W = jax.random.normal(key, (cfg.d_sae, cfg.d_in), jnp.float32)
    W = W / jnp.linalg.norm(W, axis=1, keepdims=True)
    if cfg.arch == "relu":
        W = W * cfg.dec_init_norm
    b_dec = jnp.zeros((cfg.d_in,), jnp.float32) if b_dec is None else jnp.asarray(b_dec, jnp.float32)
    log_thr = jnp.full((cfg.d_sae,), jnp.log(cfg.threshold_init) if cfg.arch == "jumprelu" else 0.0, jnp.float32)
    return SAE(W_enc=W.T, b_enc=jnp.zeros((cfg.d_sae,), jnp.float32), W_dec=W, b_dec=b_dec,
               log_threshold=log_thr, arch=cfg.arch)


def encode(sae: SAE, x: Float[Array, "b d_in"], k: int | Array | None = None,
           threshold: Float[Array, " d_sae"] | None = None, kmax: int | None = None) -> Float[Array, "b d_sae"]:
    """Inference latents, dense. topk keeps the k largest (k may be a traced array when the
    static bound kmax is given, as in sweeps); `threshold` overrides exp(log_threshold)
    (batchtopk passes its estimated threshold)."""
    pre = sae.pre_acts(x)
    if sae.arch == "relu":
        return jax.nn.relu(pre)
    if sae.arch == "topk":
        vals, idx = jax.lax.top_k(pre, kmax or k)
        vals = jax.nn.relu(vals) * (jnp.arange(vals.shape[1]) < k)
        rows = jnp.arange(pre.shape[0])[:, None]
        return jnp.zeros_like(pre).at[rows, idx].set(vals)
    thr = sae.threshold if threshold is None else threshold
    return jax.nn.relu(pre) * (pre > thr)


def geometric_median(x: Float[Array, "n d"], iters: int = 50, eps: float = 1e-6) -> Float[Array, " d"]:
    """Weiszfeld's algorithm, started at the mean."""
    def body(_, m):
        w = 1.0 / jnp.maximum(jnp.linalg.norm(x - m, axis=1), eps)
        return (w[:, None] * x).sum(0) / w.sum()
    return jax.lax.fori_loop(0, iters, body, x.mean(0))


def normalise_decoder(sae: SAE) -> SAE:
    return eqx.tree_at(lambda s: s.W_dec, sae, sae.W_dec / jnp.linalg.norm(sae.W_dec, axis=1, keepdims=True))
