"""The two models an audit compares, and where it writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mechinterp.formats.bounds import bounds, check_bounds
from mechinterp.formats.defaults import DEFAULT_MODEL
from mechinterp.formats.organism import ADAPTERS, MANIFEST, read_manifest


@dataclass(frozen=True)
class AuditModels:
    organism: str = ""
    """The fine-tune under audit: a folder made by `mechinterp organism` (only its weights are read),
    or any model with the base model's tokenizer and width."""
    base: str = DEFAULT_MODEL
    """The model it was fine-tuned from."""
    out: str = ""
    """The audit's folder."""
    device: str = "auto"

    def __post_init__(self):
        if not self.organism:
            raise ValueError("name the model to audit: --organism DIR (a folder made by `mechinterp organism`)")
        if not self.out:
            raise ValueError("give the audit's folder: --out DIR")

    @property
    def organism_model(self) -> str:
        return model_name(self.organism)


def models_key(organism: str, base: str) -> dict:
    """What an audit's reuse is keyed on: the fine-tune's weights (its adapters, or its folder's files)
    and the base model's name."""
    from mechinterp.formats.fingerprint import fingerprint

    folder = Path(organism)
    weights = fingerprint(folder / ADAPTERS) if (folder / ADAPTERS).exists() else fingerprint(folder)
    return {"organism": str(organism), "weights": weights, "base": base}


def model_name(organism: str) -> str:
    """The load_model name of a fine-tune: organism:DIR for an organism folder (one clear error when
    its manifest is missing), else the name itself."""
    folder = Path(organism)
    if (folder / ADAPTERS).exists() or (folder / MANIFEST).exists():
        read_manifest(folder)
        return f"organism:{folder}"
    return organism


@dataclass(frozen=True)
class EvidenceConfig:
    n_latents: int = field(default=12, metadata=bounds(1))
    """Organism-specific crosscoder latents read for hypotheses."""
    min_rel_norm: float = field(default=0.7, metadata=bounds(0, 1))
    """A latent is organism-specific when at least this share of its decoder norm is the organism's ..."""
    max_nu: float = field(default=0.5, metadata=bounds(0))
    """... and its latent scaling nu_eps is below this (the base does not hold its direction)."""
    black_box_s: float | None = field(default=None, metadata=bounds(0))
    """Seconds of sampling for the black-box baseline (None: as long as the white-box audit took)."""
    n_hypotheses: int = field(default=20, metadata=bounds(1))
    sae: str | None = None
    """The base model's SAE at the audit's site (e.g. runs/sae/sae): its latents whose activation the
    fine-tune raises most, with their labels, join the evidence (None: not used)."""

    def __post_init__(self):
        check_bounds(self)
