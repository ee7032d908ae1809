"""Training forward passes and losses, one per architecture, on normalised activations.

All losses share the reconstruction term mse = mean over tokens of ||y - y_hat||^2 (summed
over the target's width; y = x for an SAE, the other site for a transcoder) and add:
  dense architectures  + l1 * their sparsity term    (relu: L1 weighted by decoder row norms; jumprelu:
                                                     L0 with pseudo-gradients; sae_jax/architectures/)
  the k family         + aux_coeff * aux-k loss      (dead latents reconstruct the residual)
  matryoshka (topk family with cfg.matryoshka widths w_1 < ... < w_G):
                   + sum_g ||y - y_hat(latents < w_g)||^2 (each prefix reconstructs on its own)
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from sae_jax.architectures import get
from sae_jax.config import SAEConfig
from sae_jax.modules import SAE, split_row
from sae_jax.topk import dense_topk_encode, sparse_decode, to_dense, topk_encode, uses_kernels


class Hyper(eqx.Module):
    """Hyperparameters that may differ between the members of a sweep (arrays, so they vmap)."""
    lr: Float[Array, ""]
    l1: Float[Array, ""]
    k: Int[Array, ""]


def make_hyper(lr: float, l1: float, k: int) -> Hyper:
    return Hyper(jnp.float32(lr), jnp.float32(l1), jnp.int32(k))


# --- losses

def _stats(x, recon, l0, fired):
    err = ((recon - x) ** 2).sum(-1)
    var = ((x - x.mean(0)) ** 2).sum()
    return dict(mse=err.mean(), fvu=err.sum() / var, l0=l0, fired=fired)


def loss_fn(sae: SAE, rows: Float[Array, "b d_row"], hyper: Hyper, l1_scale: Float[Array, ""],
            dead: Bool[Array, " d_sae"], cfg: SAEConfig, with_aux: bool = True) -> tuple[Float[Array, ""], dict]:
    """(loss, stats); stats has mse, fvu, l0, fired [d_sae], aux, sparsity, batch_threshold.
    rows: the input, then (transcoders) the target. with_aux=False leaves out the aux-k term (the
    trainer's choice while no latent is dead: the term is 0 then, and a traced branch on it would
    cost the step ~10%)."""
    x, y = split_row(rows, cfg)
    l1 = hyper.l1 * l1_scale
    arch = get(cfg.arch)
    if not arch.uses_k:
        f, sparsity = arch.dense_latents(sae, sae.pre_acts(x), cfg)
        recon = sae.decode(f) + sae.skip_path(x)
        active = f > 0
        st = _stats(y, recon, active.sum(-1).mean(), active.any(0))
        loss = st["mse"] + l1 * sparsity
        return loss, dict(st, sparsity=sparsity, aux=jnp.float32(0), batch_threshold=jnp.float32(0))

    enc = topk_encode if cfg.sparse_backward else dense_topk_encode
    vals, idx = enc(x, sae.input_offset, sae.W_enc, sae.b_enc, cfg.kmax)
    vals, batch_thr = arch.keep(vals, hyper.k, x.shape[0])
    recon = sparse_decode(vals, idx, sae.W_dec) + sae.b_dec + sae.skip_path(x)
    fired = jnp.zeros((cfg.d_sae,), bool).at[idx.reshape(-1)].max((vals > 0).reshape(-1))
    st = _stats(y, recon, (vals > 0).sum(-1).mean(), fired)
    resid = jax.lax.stop_gradient(y - recon)
    aux = _aux_k_loss(sae, x, resid, dead, cfg) if with_aux and cfg.aux_coeff > 0 else jnp.zeros((), x.dtype)
    loss = st["mse"] + cfg.aux_coeff * aux + _prefix_mse(sae, x, y, vals, idx, cfg)
    return loss, dict(st, sparsity=jnp.float32(0), aux=aux, batch_threshold=batch_thr)


def _prefix_mse(sae: SAE, x, y, vals, idx, cfg: SAEConfig):
    """Matryoshka: the reconstruction error of every nested prefix of the dictionary, summed.
    The decode of each prefix costs only its own active latents (the gather skips zeros)."""
    total = jnp.zeros((), x.dtype)
    for width in cfg.matryoshka:
        inner = sparse_decode(vals * (idx < width), idx, sae.W_dec) + sae.b_dec + sae.skip_path(x)
        total = total + ((y - inner) ** 2).sum(-1).mean()
    return total


def _aux_k_loss(sae: SAE, x, resid, dead, cfg: SAEConfig):
    """Gao et al.: the n_aux largest dead latents reconstruct the residual y - y_hat, scaled
    down while fewer than n_aux latents are dead (sparsify). Live latents are shut out by a
    -inf bias. With the C++ CPU kernels the term takes the main term's sparse path (2.1x
    faster); in pure XLA, gathering n_aux (d_in / 2) rows per token costs more than the
    dense matmuls, so it stays dense there."""
    b_enc = jnp.where(dead, sae.b_enc, -jnp.inf)
    if cfg.sparse_backward and uses_kernels(x):
        vals, idx = topk_encode(x, sae.input_offset, sae.W_enc, b_enc, cfg.n_aux)
        e_hat = sparse_decode(vals, idx, sae.W_dec)
    else:
        vals, idx = jax.lax.top_k(jax.nn.relu((x - sae.input_offset) @ sae.W_enc + b_enc), cfg.n_aux)
        e_hat = to_dense(vals, idx, cfg.d_sae) @ sae.W_dec
    scale = jnp.minimum(dead.sum() / cfg.n_aux, 1.0)
    return scale * ((e_hat - resid) ** 2).sum(-1).mean()
