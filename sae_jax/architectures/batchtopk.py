"""BatchTopK SAE (Bussmann et al. 2024): the batch keeps its n_tokens * k largest activations, so a
token may use more or fewer than k. At inference it is a JumpReLU with one threshold: the moving
estimate of the smallest kept activation, calibrated on training batches at the end."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sae_jax.architectures.base import Architecture


class BatchTopK(Architecture):
    name = "batchtopk"
    export = "jumprelu"
    uses_k = True
    tracks_threshold = True

    def kmax(self, k: int, d_sae: int) -> int:
        return min(4 * k, d_sae)

    def keep(self, vals, k, n_tokens: int):
        flat = jnp.sort(jax.lax.stop_gradient(vals).reshape(-1))
        cut = flat[flat.shape[0] - n_tokens * k]
        vals = vals * ((vals >= cut) & (vals > 0))
        return vals, jnp.min(jnp.where(vals > 0, jax.lax.stop_gradient(vals), jnp.inf))
