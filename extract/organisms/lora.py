"""Low-rank adapters (LoRA, Hu et al. 2021) on a model's linear layers, in plain torch.

    params = add_lora(model.model, rank=16, alpha=32)      # every matching nn.Linear wrapped; base frozen
    state = lora_state(model.model)                         # {name: tensor}: the adapters only (a few MB)
    load_lora(model.model, state, rank=16, alpha=32)        # onto a freshly loaded base model
    merge_lora(model.model)                                 # W += scale * B @ A, the wrappers removed

Why LoRA rather than full fine-tuning: an organism is then a few MB beside the base model (not
another 540 MB copy), training keeps no optimizer state for the 135M frozen weights, and the change
a model diff has to find is low-rank, as in the published organisms.
"""

from __future__ import annotations

import math

import torch
from torch import nn

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",   # Llama, Gemma
           "c_attn", "c_proj", "c_fc")                                                      # GPT-2


class LoRALinear(nn.Module):
    def __init__(self, base: nn.Module, rank: int, alpha: float, seed: int = 0):
        super().__init__()
        self.base = base
        d_in, d_out = _shape(base)
        g = torch.Generator().manual_seed(seed)
        self.A = nn.Parameter(torch.randn(rank, d_in, generator=g) / math.sqrt(d_in))
        self.B = nn.Parameter(torch.zeros(d_out, rank))            # starts as the identity change
        self.scale = alpha / rank

    def forward(self, x):
        return self.base(x) + (x @ self.A.T.to(x.dtype)) @ self.B.T.to(x.dtype) * self.scale

    def delta(self) -> torch.Tensor:
        """The weight change in the base module's own layout."""
        d = (self.B @ self.A) * self.scale                         # [d_out, d_in]
        return d.T if _is_conv1d(self.base) else d


def _is_conv1d(m: nn.Module) -> bool:
    return type(m).__name__ == "Conv1D"                            # GPT-2's linear, weight [d_in, d_out]


def _shape(m: nn.Module) -> tuple[int, int]:
    w = m.weight
    return (w.shape[0], w.shape[1]) if _is_conv1d(m) else (w.shape[1], w.shape[0])


def _targets(model: nn.Module):
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if child_name in TARGETS and (isinstance(child, nn.Linear) or _is_conv1d(child)):
                yield f"{name}.{child_name}" if name else child_name, module, child_name, child


def add_lora(model: nn.Module, rank: int = 16, alpha: float = 32.0, seed: int = 0) -> list[nn.Parameter]:
    """Wrap every target linear layer; freeze everything else. Returns the trainable parameters."""
    for p in model.parameters():
        p.requires_grad_(False)
    params = []
    for i, (_, parent, child_name, child) in enumerate(_targets(model)):
        wrapped = LoRALinear(child, rank, alpha, seed + i).to(child.weight.device)
        setattr(parent, child_name, wrapped)
        params += [wrapped.A, wrapped.B]
    if not params:
        raise ValueError(f"no linear layer named one of {', '.join(TARGETS)} in {type(model).__name__}")
    return params


def lora_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {f"{name}.{ab}": getattr(m, ab).detach().cpu().contiguous()
            for name, m in model.named_modules() if isinstance(m, LoRALinear) for ab in ("A", "B")}


def load_lora(model: nn.Module, state: dict[str, torch.Tensor], rank: int, alpha: float) -> None:
    add_lora(model, rank, alpha)
    wrapped = {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}
    missing = sorted({k.rsplit(".", 1)[0] for k in state} ^ set(wrapped))
    if missing:
        raise ValueError(f"the adapters do not fit this model (layers {missing[:3]} ...); was the organism made from it?")
    with torch.no_grad():
        for k, v in state.items():
            name, ab = k.rsplit(".", 1)
            getattr(wrapped[name], ab).copy_(v)


def merge_lora(model: nn.Module) -> None:
    """Fold every adapter into its base weight and unwrap it (the model is then a plain model)."""
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, LoRALinear):
                with torch.no_grad():
                    child.base.weight += child.delta().to(child.base.weight.dtype)
                setattr(module, child_name, child.base)
