"""SHIFT's settings (one dataclass) and its error type."""

from __future__ import annotations

from dataclasses import dataclass, field

from mechinterp.formats.bounds import bounds, check_bounds
from mechinterp.formats.defaults import DEFAULT_MODEL
from mechinterp.formats.errors import LabError

DEFAULT_LAYER = 4
"""Chosen by measurement on SmolLM2-135M (see README): the ambiguous probe leans on gender most at
early layers (resid_pre 2-4: gender accuracy ~0.8 on the balanced set) and least in the middle
(layers 6-12: ~0.6), and layer 4 is cheap to run."""


class ShiftError(LabError):
    """A SHIFT request that cannot be served; the message says what to do."""


@dataclass
class ShiftConfig:
    model: str = DEFAULT_MODEL
    """Registry name, hub id or local directory (extract/models.py)."""
    layer: int = field(default=DEFAULT_LAYER, metadata=bounds(0))
    """Layer of the probe (and of the SAE trained when `sae` is not given)."""
    site: str = "resid_pre"
    """Site within the layer for the probe: resid_pre, resid_mid, resid_post, attn_out, mlp_out."""
    sae: str | None = None
    """SAE export directory (SAELens layout). Its hook may be the probe's or an earlier one.
    None: the shift stage dumps activations and trains one at the probe's hook (reused after)."""
    features: tuple[int, ...] = field(default=(), metadata=bounds(0, sep=","))
    """Latents to ablate, chosen by inspection; empty: the automatic criterion."""
    out: str | None = None
    """Output directory; default runs/shift/<model>."""
    device: str = "auto"
    """auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps."""
    seed: int = field(default=0, metadata=bounds(0))
    """Seeds the data set, the probe and the random baselines."""
    data: str = field(default="synthetic", metadata={"choices": ("synthetic", "bias_in_bios")})
    """'synthetic' (offline) or 'bias_in_bios' (HF LabHC/bias_in_bios, needs a network)."""
    n_ambiguous: int = field(default=384, metadata=bounds(1))
    """Biographies in the ambiguous set (male professors, female nurses): the probe's training set."""
    n_balanced: int = field(default=384, metadata=bounds(1))
    """Biographies in the balanced held-out set (every profession x gender group)."""
    n_gender_only: int = field(default=128, metadata=bounds(1))
    """Personal sentences with no profession, for the gender AUC of each latent."""
    top_n: int = field(default=32, metadata=bounds(1))
    """Candidates for the automatic selection: this many latents by |attribution|."""
    min_gender_auc: float = field(default=0.8, metadata=bounds(0, 1))
    """Automatic selection: a candidate is spurious when its pooled activation predicts gender on the
    gender-only set with ROC AUC >= this (or <= 1 - this)."""
    max_features: int | None = field(default=None, metadata=bounds(1))
    """Cap on the automatically selected latents (None: no cap)."""
    n_random: int = field(default=10, metadata=bounds(1))
    """Random-latent ablations of the same size (their metrics are averaged)."""
    probe_steps: int = field(default=300, metadata=bounds(1))
    """Full-batch Adam steps of the logistic probe."""
    batch: int = field(default=32, metadata=bounds(1))
    """Texts per forward pass."""
    n_examples: int = field(default=5, metadata=bounds(1))
    """Top-activating examples kept per ranked latent."""
    n_ranked: int = field(default=40, metadata=bounds(1))
    """Latents written to latents.json (by |attribution|)."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self):
        check_bounds(self)
        self.features = tuple(int(f) for f in self.features)
        if self.layer < 0:
            raise ShiftError(f"--layer must be >= 0, got {self.layer}")
        if not 0.5 < self.min_gender_auc <= 1.0:
            raise ShiftError(f"min_gender_auc must be in (0.5, 1], got {self.min_gender_auc}")
        if self.top_n < 1 or self.n_random < 0:
            raise ShiftError("top_n must be positive and n_random non-negative")

    @property
    def hook(self) -> str:
        site = self.site if self.site.startswith(("hook_", "attn.", "mlp.")) else f"hook_{self.site}"
        return f"blocks.{self.layer}.{site}"




# ---------------------------------------------------------------------------- the SAE
