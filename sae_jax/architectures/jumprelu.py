"""JumpReLU SAE (Rajamanoharan et al. 2024): f = pre * (pre > theta) with a learned threshold per
latent and an L0 penalty; the threshold learns through straight-through pseudo-gradients with a
rectangle kernel of width `bandwidth`."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from sae_jax.architectures.base import Architecture


def _rect(u):
    return ((u > -0.5) & (u < 0.5)).astype(u.dtype)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def jumprelu(z, theta, bandwidth):
    return z * (z > theta)


def _jumprelu_fwd(z, theta, bw):
    return jumprelu(z, theta, bw), (z, theta)


def _jumprelu_bwd(bw, res, g):
    z, theta = res
    g_theta = -(theta / bw) * _rect((z - theta) / bw) * g
    return g * (z > theta), g_theta.sum(0)


jumprelu.defvjp(_jumprelu_fwd, _jumprelu_bwd)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def heaviside(z, theta, bandwidth):
    return (z > theta).astype(z.dtype)


def _heaviside_fwd(z, theta, bw):
    return heaviside(z, theta, bw), (z, theta)


def _heaviside_bwd(bw, res, g):
    z, theta = res
    return jnp.zeros_like(z), (-(1.0 / bw) * _rect((z - theta) / bw) * g).sum(0)


heaviside.defvjp(_heaviside_fwd, _heaviside_bwd)


class JumpReLU(Architecture):
    name = "jumprelu"
    export = "jumprelu"
    default_l1 = 0.5

    def init_log_threshold(self, cfg) -> float:
        return float(jnp.log(cfg.threshold_init))

    def dense_latents(self, sae, pre, cfg):
        theta = sae.threshold
        return jumprelu(pre, theta, cfg.bandwidth), heaviside(pre, theta, cfg.bandwidth).sum(-1).mean()
