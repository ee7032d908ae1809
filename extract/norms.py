"""Norm layers read as functions: their gain, their scale on an input, and the norm with its
scale held fixed (linear in its input). LayerNorm and every family's RMSNorm."""

from __future__ import annotations

import torch
from torch import nn


def is_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.LayerNorm) or type(module).__name__.endswith("RMSNorm")


def gain(module: nn.Module, offset: float = 0.0) -> torch.Tensor | None:
    """The norm's elementwise gain: weight + offset (the family's Layout.norm_gain_offset)."""
    w = getattr(module, "weight", None)
    if w is None:
        return None
    return w.float() + offset if offset else w.float()


def norm_scale(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = x.float()
    if isinstance(module, nn.LayerNorm):
        return torch.rsqrt(x.var(-1, keepdim=True, unbiased=False) + module.eps)
    eps = getattr(module, "variance_epsilon", getattr(module, "eps", 1e-6))
    return torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def frozen_norm(module: nn.Module, x: torch.Tensor, scale: torch.Tensor, offset: float = 0.0) -> torch.Tensor:
    """The norm with its scale given: linear in x."""
    xf = x.float()
    if isinstance(module, nn.LayerNorm):
        xf = xf - xf.mean(-1, keepdim=True)
    y = xf * scale
    g = gain(module, offset)
    if g is not None:
        y = y * g
    if getattr(module, "bias", None) is not None:
        y = y + module.bias.float()
    return y.to(x.dtype)
