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

Transcoders (cfg.d_out given) read one site and predict another: the input is not centred,
W_dec [d_sae, d_out] and b_dec [d_out] live in the target's space, and an optional linear skip
path adds x @ W_skip [d_in, d_out]:

    pre   = x @ W_enc + b_enc            y_hat = f @ W_dec + b_dec (+ x @ W_skip)
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from sae_jax.architectures import contract, get
from sae_jax.config import SAEConfig


class SAE(eqx.Module):
    W_enc: Float[Array, "d_in d_sae"]
    b_enc: Float[Array, " d_sae"]
    W_dec: Float[Array, "d_sae d_in"]
    b_dec: Float[Array, " d_in"]
    log_threshold: Float[Array, " d_sae"]
    arch: str = eqx.field(static=True)
    W_skip: Float[Array, "d_in d_out"] | None = None
    transcoder: bool = eqx.field(static=True, default=False)

    @property
    def threshold(self) -> Float[Array, " d_sae"]:
        return jnp.exp(self.log_threshold)

    @property
    def input_offset(self) -> Float[Array, " d_in"]:
        """What the encoder subtracts from its input: b_dec for an SAE, nothing for a transcoder."""
        return jnp.zeros(self.W_enc.shape[0], self.W_enc.dtype) if self.transcoder else self.b_dec

    def pre_acts(self, x: Float[Array, "b d_in"]) -> Float[Array, "b d_sae"]:
        return (x - self.input_offset) @ self.W_enc + self.b_enc

    def decode(self, f: Float[Array, "b d_sae"]) -> Float[Array, "b d_out"]:
        return f @ self.W_dec + self.b_dec

    def skip_path(self, x: Float[Array, "b d_in"]):
        return 0.0 if self.W_skip is None else x @ self.W_skip


def init_sae(cfg: SAEConfig, key: PRNGKeyArray, b_dec: Float[Array, " d_out"] | None = None,
             W_skip: Float[Array, "d_in d_out"] | None = None) -> SAE:
    """Decoder rows are random directions (norm dec_init_norm for relu, 1 otherwise); the encoder
    starts as the decoder's transpose (a transcoder between sites of different widths: its own
    random unit columns); b_enc = 0; b_dec and W_skip from the data when given (sae_jax/data_init.py),
    else 0."""
    W = jax.random.normal(key, (cfg.d_sae, cfg.d_target), jnp.float32)
    W = W / jnp.linalg.norm(W, axis=1, keepdims=True)
    W = W * get(cfg.arch).decoder_init_norm(cfg)
    W_enc = W.T
    if cfg.d_target != cfg.d_in:
        W_enc = jax.random.normal(jax.random.fold_in(key, 1), (cfg.d_in, cfg.d_sae), jnp.float32)
        W_enc = W_enc / jnp.linalg.norm(W_enc, axis=0, keepdims=True) * jnp.linalg.norm(W, axis=1)
    b_dec = jnp.zeros((cfg.d_target,), jnp.float32) if b_dec is None else jnp.asarray(b_dec, jnp.float32)
    log_thr = jnp.full((cfg.d_sae,), get(cfg.arch).init_log_threshold(cfg), jnp.float32)
    if cfg.skip:
        W_skip = jnp.zeros((cfg.d_in, cfg.d_out), jnp.float32) if W_skip is None else jnp.asarray(W_skip, jnp.float32)
    else:
        W_skip = None
    return SAE(W_enc=W_enc, b_enc=jnp.zeros((cfg.d_sae,), jnp.float32), W_dec=W, b_dec=b_dec,
               log_threshold=log_thr, W_skip=W_skip, arch=cfg.arch, transcoder=cfg.transcoder)


def split_row(x: Float[Array, "b d_row"], cfg: SAEConfig):
    """(input, target) of training rows: a transcoder's rows hold both side by side; an SAE's
    target is its input."""
    return (x[:, :cfg.d_in], x[:, cfg.d_in:]) if cfg.transcoder else (x, x)


def encode(sae: SAE, x: Float[Array, "b d_in"], k: int | Array | None = None,
           threshold: Float[Array, " d_sae"] | None = None, kmax: int | None = None) -> Float[Array, "b d_sae"]:
    """Inference latents, dense. topk keeps the k largest (k may be a traced array when the
    static bound kmax is given, as in sweeps); `threshold` overrides exp(log_threshold)
    (batchtopk passes its estimated threshold)."""
    thr = sae.threshold if threshold is None else threshold
    return contract.activate(get(sae.arch).export, sae.pre_acts(x), k=k, threshold=thr, kmax=kmax)


def geometric_median(x: Float[Array, "n d"], iters: int = 50, eps: float = 1e-6) -> Float[Array, " d"]:
    """Weiszfeld's algorithm, started at the mean."""
    def body(_, m):
        w = 1.0 / jnp.maximum(jnp.linalg.norm(x - m, axis=1), eps)
        return (w[:, None] * x).sum(0) / w.sum()
    return jax.lax.fori_loop(0, iters, body, x.mean(0))


def normalise_decoder(sae: SAE) -> SAE:
    return eqx.tree_at(lambda s: s.W_dec, sae, sae.W_dec / jnp.linalg.norm(sae.W_dec, axis=1, keepdims=True))
