"""An exported SAE (SAELens layout: cfg.json + sae_weights.safetensors) as a torch module.

Encode/decode contract (x raw activations [..., d_in], fp32), owned by mechinterp/formats/sae.py:

    pre   = (x - b_dec) @ W_enc + b_enc          (b_dec is subtracted when apply_b_dec_to_input)
    f     = relu(pre)                            "standard"
          = relu(pre) at the k largest pre       "topk" (cfg k)
          = relu(pre) * (pre > threshold)        "jumprelu" (our batchtopk exports as this)
    recon = f @ W_dec + b_dec
Transcoders (SAELens's transcoder, skip_transcoder, jumprelu_[skip_]transcoder; our
topk_[skip_]transcoder) read one site and predict another: no input centring, and
    recon = f @ W_dec + b_dec + x @ W_skip.T            (W_skip [d_out, d_in], when present)

Any SAELens-layout SAE or transcoder on disk loads the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from mechinterp.formats.bounds import bounds
from mechinterp.formats.sae import SAEError, kind, load_export, read_sae_cfg, validate


class TorchSAE(nn.Module):
    def __init__(self, weights: dict[str, torch.Tensor], cfg: dict, path: str = ""):
        super().__init__()
        validate(weights, cfg, path)
        arch, self.transcoder = kind(cfg)
        d_in, d_sae = weights["W_enc"].shape
        self.cfg, self.path, self.arch = cfg, path, arch
        self.d_in, self.d_sae, self.d_out = d_in, d_sae, weights["W_dec"].shape[1]
        self.k = int(cfg.get("k", 0))
        self.apply_b_dec_to_input = bool(cfg.get("apply_b_dec_to_input", True))
        for name, tensor in weights.items():
            if name in ("W_enc", "b_enc", "W_dec", "b_dec", "threshold", "W_skip"):
                self.register_buffer(name, tensor.float().contiguous())

    @property
    def hook_name(self) -> str:
        return self.cfg.get("hook_name") or self.cfg.get("metadata", {}).get("hook_name", "")

    @property
    def model_name(self) -> str:
        return self.cfg.get("model_name") or self.cfg.get("metadata", {}).get("model_name", "")

    def pre_acts(self, x: torch.Tensor) -> torch.Tensor:
        if self.apply_b_dec_to_input:
            x = x - self.b_dec
        return x @ self.W_enc + self.b_enc

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.pre_acts(x.float())
        if self.arch == "standard":
            return torch.relu(pre)
        if self.arch == "topk":
            top = pre.topk(self.k, dim=-1)
            return torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))
        return torch.relu(pre) * (pre > self.threshold)

    def decode(self, f: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """recon; a skip transcoder also needs its input x."""
        out = f @ self.W_dec + self.b_dec
        if hasattr(self, "W_skip"):
            if x is None:
                raise ValueError(f"{self.path}: a skip transcoder decodes from its input too; pass x")
            out = out + x.float() @ self.W_skip.T
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x), x)

    def check_fits(self, model, hook: str | None = None, strict_model: bool = True) -> str:
        """Raise SAEError unless this SAE can be attached to `model` at `hook` (default: its own).
        Returns the hook name to use."""
        hook = hook or self.hook_name
        if not hook:
            raise SAEError(f"{self.path}: cfg.json names no hook_name; pass the hook explicitly")
        site = model.site(hook)  # KeyError with the valid names for a bad one
        width = model.d_mlp if hook.endswith("mlp.hook_post") else model.d_model if site.kind in ("in", "out", "mid") \
            else None
        if width is not None and width != self.d_in:
            raise SAEError(f"SAE {self.path} has d_in={self.d_in} but {hook} of {model.name} has width {width}; "
                           "this SAE was trained on another model or site")
        if strict_model and self.model_name and self.model_name != model.name:
            raise SAEError(f"SAE {self.path} was trained on {self.model_name!r}, not {model.name!r}; "
                           "load the model it was trained on (or pass strict_model=False)")
        return hook


def load_sae(path: str | Path, device: str | torch.device = "cpu") -> TorchSAE:
    weights, cfg = load_export(path)
    return TorchSAE({k: torch.from_numpy(v) for k, v in weights.items()}, cfg, str(path)).to(device)


@dataclass(frozen=True)
class SAERun:
    """What every stage that acts with an exported SAE takes."""
    sae: str
    """SAE export directory (cfg.json + sae_weights.safetensors)."""
    model: str | None = None
    """Model to attach it to (None: the one named in the SAE's cfg.json; another one is refused)."""
    device: str = "auto"
    """auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps."""
    seed: int = field(default=0, metadata=bounds(0))
    """Seeds every random choice of the stage."""

    def load(self):
        """(model, SAE on the model's device): the SAE's own model unless --model names it."""
        from extract.models import load_model

        read_sae_cfg(self.sae)  # steering and ablation splice an SAE at its site, not a transcoder
        sae = load_sae(self.sae)
        if self.model and sae.model_name and self.model != sae.model_name:
            raise SAEError(f"--model {self.model!r} is not the model SAE {self.sae} was trained on "
                           f"({sae.model_name!r}); drop --model or pass that one")
        if not (self.model or sae.model_name):
            raise SAEError(f"{self.sae}: cfg.json names no model_name; pass --model")
        model = load_model(self.model or sae.model_name, device=self.device)
        return model, sae.to(model.device)
