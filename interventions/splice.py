"""Splice an SAE into a model's forward pass, with feature-level edits.

    edit = FeatureEdit(zero=[12, 40], scale={7: 3.0}, steer={99: 8.0})
    logits = model.run_with_hooks(tokens, hooks=[splice_hook(sae, edit, keep_error=True)])

The hook replaces the activation x at the SAE's site with

    x_hat' + (x - x_hat)   if keep_error (only the edited features change the forward pass)
    x_hat'                 otherwise (the model runs on the SAE's reconstruction)

where x_hat = decode(f) and x_hat' = decode(f') with f' the edited latents. Steering adds
alpha x the feature's decoder direction on top, whatever the latent's value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from interventions.sae import SAEError, TorchSAE


@dataclass
class FeatureEdit:
    zero: list[int] = field(default_factory=list)
    """Latents set to 0 (zero ablation)."""
    mean: dict[int, float] = field(default_factory=dict)
    """Latents set to a fixed value, usually their mean activation (mean ablation)."""
    clamp: dict[int, float] = field(default_factory=dict)
    """Latents clamped to a value wherever they are computed (e.g. a large value to force a feature on)."""
    scale: dict[int, float] = field(default_factory=dict)
    """Latents multiplied by a factor."""
    steer: dict[int, float] = field(default_factory=dict)
    """alpha per latent: alpha x W_dec[latent] added to the activation at every position."""
    positions: slice | list[int] | None = None
    """Positions the edit applies to (default all)."""

    def is_empty(self) -> bool:
        return not (self.zero or self.mean or self.clamp or self.scale or self.steer)

    def apply(self, f: torch.Tensor) -> torch.Tensor:
        f = f.clone()
        for i in self.zero:
            f[..., i] = 0.0
        for i, v in {**self.mean, **self.clamp}.items():
            f[..., i] = v
        for i, s in self.scale.items():
            f[..., i] = f[..., i] * s
        return f


def spliced(sae: TorchSAE, x: torch.Tensor, edit: FeatureEdit | None = None, keep_error: bool = False) -> torch.Tensor:
    """The replacement activation for x (see module docstring). Per-head sites
    ([batch, pos, head, d_head], e.g. hook_z) are flattened to [batch, pos, head * d_head].
    Positions outside edit.positions get x (keep_error) or the plain reconstruction."""
    if x.ndim == 4:
        return spliced(sae, x.flatten(-2), edit, keep_error).view_as(x)
    edit = edit or FeatureEdit()
    if keep_error and edit.is_empty():
        return x  # x_hat + (x - x_hat): the identity, exactly
    x32 = x.float()
    f = sae.encode(x32)
    recon = sae.decode(f)
    changes_latents = edit.zero or edit.mean or edit.clamp or edit.scale
    new = sae.decode(edit.apply(f)) if changes_latents else recon
    if edit.steer:
        idx = torch.tensor(list(edit.steer), device=x.device)
        alpha = torch.tensor(list(edit.steer.values()), device=x.device, dtype=torch.float32)
        new = new + alpha @ sae.W_dec[idx]
    if keep_error:
        new = new + (x32 - recon)
    if edit.positions is not None:
        mask = torch.zeros(x.shape[-2], dtype=torch.bool, device=x.device)
        mask[edit.positions] = True
        new = torch.where(mask[:, None], new, x32 if keep_error else recon)
    return new.to(x.dtype)


def splice_hook(sae: TorchSAE, edit: FeatureEdit | None = None, keep_error: bool = False, hook: str | None = None,
                record: dict | None = None):
    """(hook name, hook fn) for HookedModel.run_with_hooks. `record`, if given, receives the
    latents of the last call under 'latents' (for reading features while splicing)."""
    if sae.transcoder:
        raise SAEError(f"{sae.path} is a transcoder (it reads {sae.hook_name} and predicts "
                       f"{sae.cfg.get('metadata', {}).get('hook_name_out')}): it replaces an MLP, not one site's "
                       "activations, so it cannot be spliced like an SAE")
    name = hook or sae.hook_name

    def fn(x: torch.Tensor, hook_point) -> torch.Tensor:
        if record is not None:
            record["latents"] = sae.encode(x.float()).detach()
        return spliced(sae, x, edit, keep_error)
    return name, fn
