"""TopK SAE (Gao et al. 2024): each token keeps its k largest pre-activations; the aux-k loss on
dead latents (losses.py) keeps the dictionary alive."""

from __future__ import annotations

import jax.numpy as jnp

from sae_jax.architectures.base import Architecture


class TopK(Architecture):
    name = "topk"
    export = "topk"
    uses_k = True

    def keep(self, vals, k, n_tokens: int):
        return vals * (jnp.arange(vals.shape[-1]) < k), jnp.float32(0)
