"""ReLU SAE with an L1 penalty weighted by decoder row norms (Anthropic, April 2024): decoder rows
start at norm dec_init_norm and are free to grow; dead latents are resampled."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sae_jax.architectures.base import Architecture


class ReLU(Architecture):
    name = "relu"
    export = "standard"
    default_l1 = 5.0
    unit_norm_decoder = False
    resamples_dead = True

    def decoder_init_norm(self, cfg) -> float:
        return cfg.dec_init_norm

    def dense_latents(self, sae, pre, cfg):
        f = jax.nn.relu(pre)
        return f, (f * jnp.linalg.norm(sae.W_dec, axis=1)).sum(-1).mean()
