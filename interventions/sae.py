"""An exported SAE (SAELens layout: cfg.json + sae_weights.safetensors) as a torch module.

Encode/decode contract (x raw activations [..., d_in], fp32), the same as sae_jax/export.py:

    pre   = (x - b_dec) @ W_enc + b_enc          (b_dec is subtracted when apply_b_dec_to_input)
    f     = relu(pre)                            "standard"
          = relu(pre) at the k largest pre       "topk" (cfg k)
          = relu(pre) * (pre > threshold)        "jumprelu" (our batchtopk exports as this)
    recon = f @ W_dec + b_dec

Any SAELens-layout SAE on disk loads the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

ARCHITECTURES = ("standard", "topk", "jumprelu")


class SAEError(ValueError):
    """An SAE export that is missing, damaged, or does not fit the model it is attached to."""


class TorchSAE(nn.Module):
    def __init__(self, weights: dict[str, torch.Tensor], cfg: dict, path: str = ""):
        super().__init__()
        arch = cfg.get("architecture")
        if arch not in ARCHITECTURES:
            raise SAEError(f"{path}: architecture {arch!r} is not one of {ARCHITECTURES}")
        missing = [k for k in ("W_enc", "b_enc", "W_dec", "b_dec") + (("threshold",) if arch == "jumprelu" else ())
                   if k not in weights]
        if missing:
            raise SAEError(f"{path}: sae_weights.safetensors lacks {missing}; re-export the SAE")
        d_in, d_sae = weights["W_enc"].shape
        if weights["W_dec"].shape != (d_sae, d_in) or (cfg.get("d_in"), cfg.get("d_sae")) != (d_in, d_sae):
            raise SAEError(f"{path}: weights W_enc {tuple(weights['W_enc'].shape)} / W_dec "
                           f"{tuple(weights['W_dec'].shape)} disagree with cfg d_in={cfg.get('d_in')}, "
                           f"d_sae={cfg.get('d_sae')}; the export is damaged")
        if arch == "topk" and not 0 < int(cfg.get("k", 0)) <= d_sae:
            raise SAEError(f"{path}: topk SAE needs 0 < k <= d_sae, cfg has k={cfg.get('k')}")
        self.cfg, self.path, self.arch = cfg, path, arch
        self.d_in, self.d_sae = d_in, d_sae
        self.k = int(cfg.get("k", 0))
        self.apply_b_dec_to_input = bool(cfg.get("apply_b_dec_to_input", True))
        for name, tensor in weights.items():
            if name in ("W_enc", "b_enc", "W_dec", "b_dec", "threshold"):
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

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        return f @ self.W_dec + self.b_dec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def check_fits(self, model, hook: str | None = None, strict_model: bool = True) -> str:
        """Raise SAEError unless this SAE can be attached to `model` at `hook` (default: its own).
        Returns the hook name to use."""
        hook = hook or self.hook_name
        if not hook:
            raise SAEError(f"{self.path}: cfg.json names no hook_name; pass the hook explicitly")
        site = model.site(hook)  # KeyError with the valid names for a bad one
        width = model.d_model if site.kind in ("in", "out", "mid") and "mlp.hook_post" not in hook else None
        if width is not None and width != self.d_in:
            raise SAEError(f"SAE {self.path} has d_in={self.d_in} but {hook} of {model.name} has width {width}; "
                           "this SAE was trained on another model or site")
        if strict_model and self.model_name and self.model_name != model.name:
            raise SAEError(f"SAE {self.path} was trained on {self.model_name!r}, not {model.name!r}; "
                           "load the model it was trained on (or pass strict_model=False)")
        return hook


def load_sae(path: str | Path, device: str | torch.device = "cpu") -> TorchSAE:
    path = Path(path)
    cfg_path, w_path = path / "cfg.json", path / "sae_weights.safetensors"
    if not cfg_path.exists() or not w_path.exists():
        raise SAEError(f"{path} is not an SAE export (needs cfg.json and sae_weights.safetensors); "
                       "train one with scripts/train_sae.py")
    try:
        cfg = json.loads(cfg_path.read_text())
        weights = load_file(str(w_path))
    except (json.JSONDecodeError, OSError, Exception) as e:  # safetensors raises its own error types
        raise SAEError(f"{path}: cannot read the export ({type(e).__name__}: {e}); re-export the SAE") from e
    return TorchSAE(weights, cfg, str(path)).to(device)
