"""Norm layers read as functions: their gain, their scale on an input, and the norm with its
scale held fixed (linear in its input). LayerNorm and every family's RMSNorm."""

from __future__ import annotations

import torch
from torch import nn


def is_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.LayerNorm) or type(module).__name__.endswith("RMSNorm")


def gain(module: nn.Module) -> torch.Tensor | None:
    w = getattr(module, "weight", None)
    if w is None:
        return None
    # Gemma's RMSNorm multiplies by (1 + weight), the others by weight
    return 1.0 + w.float() if "Gemma" in type(module).__name__ else w.float()


def norm_scale(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = x.float()
    if isinstance(module, nn.LayerNorm):
        return torch.rsqrt(x.var(-1, keepdim=True, unbiased=False) + module.eps)
    eps = getattr(module, "variance_epsilon", getattr(module, "eps", 1e-6))
    return torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def frozen_norm(module: nn.Module, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The norm with its scale given: linear in x."""
    xf = x.float()
    if isinstance(module, nn.LayerNorm):
        xf = xf - xf.mean(-1, keepdim=True)
    y = xf * scale
    g = gain(module)
    if g is not None:
        y = y * g
    if getattr(module, "bias", None) is not None:
        y = y + module.bias.float()
    return y.to(x.dtype)
