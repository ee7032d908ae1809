"""SAE and transcoder architectures, one module each, registered by name in REGISTRY.

Everything that differs between architectures lives in its module: the training activation and its
sparsity term (or, for the k family, which top-k candidates stay), the decoder's norm, thresholds
tracked during training, and the inference contract the export promises. The trainer, the losses,
the sweeps and the exporter ask the registry; none of them names an architecture. Adding one is a
module here and its line below (docs/extending.md walks through it).
"""

from __future__ import annotations

from sae_jax.architectures.base import Architecture
from sae_jax.architectures.batchtopk import BatchTopK
from sae_jax.architectures.jumprelu import JumpReLU
from sae_jax.architectures.relu import ReLU
from sae_jax.architectures.topk import TopK

REGISTRY: dict[str, Architecture] = {a.name: a for a in (ReLU(), TopK(), BatchTopK(), JumpReLU())}
NAMES = tuple(REGISTRY)


def get(name: str) -> Architecture:
    return REGISTRY[name]
