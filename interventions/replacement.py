"""The replacement model: every MLP (or some) replaced by its transcoder, in the real torch model.

At layer L the hook on blocks.L.hook_mlp_in keeps the MLP's input, and the hook on
blocks.L.hook_mlp_out swaps the MLP's output for the transcoder's prediction from that input;
with keep_error the error (real output - prediction) is added back, so the forward is the real
model's while the transcoder's latents are live (what attribution graphs need). BOS positions
keep the real MLP output: the dump leaves BOS rows out, so the transcoders never saw them, and
their attention-sink activations (norms ~100x) are what a replaced MLP would break first
(circuit-tracer likewise zeroes features at the first position).

    tcs = load_transcoders("runs/transcoders")                    # {layer: TorchSAE}
    logits = model.run_with_hooks(tokens, hooks=replacement_hooks(tcs, keep_error=True))
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from interventions.sae import TorchSAE, load_sae
from mechinterp.formats.bounds import bounds, check_bounds
from mechinterp.formats.sae import CFG, SAEError


def load_transcoders(set_dir: str | Path, device: str | torch.device = "cpu") -> dict[int, TorchSAE]:
    """The per-layer transcoders `mechinterp train-transcoders` wrote under set_dir/layer_{L}/sae."""
    exports = sorted(Path(set_dir).glob(f"layer_*/sae/{CFG}"), key=lambda p: int(p.parent.parent.name[6:]))
    if not exports:
        raise SAEError(f"no transcoders under {set_dir} (layer_{{L}}/sae); train them with `mechinterp train-transcoders`")
    tcs = {int(p.parent.parent.name[6:]): load_sae(p.parent, device) for p in exports}
    for layer, tc in tcs.items():
        out_hook = tc.cfg.get("metadata", {}).get("hook_name_out")
        if not tc.transcoder or (tc.hook_name, out_hook) != (f"blocks.{layer}.hook_mlp_in", f"blocks.{layer}.hook_mlp_out"):
            raise SAEError(f"{tc.path} is not layer {layer}'s MLP transcoder (it reads {tc.hook_name}, writes {out_hook})")
    return tcs


def check_fits(model, tcs: dict[int, TorchSAE]) -> None:
    """Same model, layers inside it, widths equal to the model's."""
    for layer, tc in tcs.items():
        if tc.model_name and tc.model_name != model.name:
            raise SAEError(f"transcoder {tc.path} was trained on {tc.model_name!r}, not {model.name!r}")
        if not 0 <= layer < model.n_layers or (tc.d_in, tc.d_out) != (model.d_model, model.d_model):
            raise SAEError(f"transcoder {tc.path} (layer {layer}, {tc.d_in} -> {tc.d_out}) does not fit {model.name} "
                           f"({model.n_layers} layers of width {model.d_model})")


def replacement_hooks(tcs: dict[int, TorchSAE], keep_error: bool = True, record: dict | None = None,
                      real: torch.Tensor | None = None) -> list:
    """Hooks for HookedModel.run_with_hooks. record, if given, receives {layer: latents} of the last
    call; real, a [batch, pos] mask of positions that keep the real MLP output (bos_positions)."""
    inputs: dict[int, torch.Tensor] = {}
    hooks = []
    for layer, tc in tcs.items():
        def keep_input(x, hook, layer=layer):
            inputs[layer] = x

        def replace(y, hook, layer=layer, tc=tc):
            x = inputs.pop(layer).float()
            f = tc.encode(x)
            if record is not None:
                record[layer] = f
            y_hat = tc.decode(f, x).to(y.dtype)
            if real is not None:
                y_hat = torch.where(real[..., None].to(y.device), y, y_hat)
            return y_hat + (y - y_hat).detach() if keep_error else y_hat
        hooks += [(f"blocks.{layer}.hook_mlp_in", keep_input), (f"blocks.{layer}.hook_mlp_out", replace)]
    return hooks


def bos_positions(model, tokens: torch.Tensor) -> torch.Tensor:
    """[batch, pos] mask of the BOS tokens (the first position when the model has no BOS)."""
    if model.bos_token_id is None:
        return torch.arange(tokens.shape[1], device=tokens.device)[None].expand_as(tokens) == 0
    return tokens == model.bos_token_id


def _zeroing(real: torch.Tensor):
    def zero(y, hook):
        return torch.where(real[..., None].to(y.device), y, torch.zeros_like(y))
    return zero


@torch.no_grad()
def _ce(model, tokens: torch.Tensor, hooks_for, batch: int) -> float:
    """Mean next-token loss; hooks_for(real mask of the batch) -> hooks."""
    total, n = 0.0, 0
    for i in range(0, len(tokens), batch):
        toks = tokens[i:i + batch].to(model.device)
        logits = model.run_with_hooks(toks, hooks=hooks_for(bos_positions(model, toks))).float()
        ce = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), toks[:, 1:].reshape(-1), reduction="sum")
        total, n = total + float(ce), n + toks[:, 1:].numel()
    return total / n


def replacement_ce(model, tcs: dict[int, TorchSAE], tokens: np.ndarray, batch: int = 8, per_layer: bool = True,
                   progress: bool = True) -> dict:
    """Next-token loss of the model with every transcoder replacing its MLP at once (no error terms)
    and with each alone, against the clean model and the MLPs zero-ablated (all, or that one), both
    at every position but BOS: CE-loss recovered = (ce_zeroed - ce_replaced) / (ce_zeroed - ce_clean)."""
    from tqdm import tqdm

    check_fits(model, tcs)
    toks = torch.as_tensor(np.asarray(tokens), dtype=torch.long)
    bar = tqdm(total=3 + 2 * len(tcs) * per_layer, unit="pass", desc="loss passes", disable=not progress)

    def ce(hooks_for) -> float:
        value = _ce(model, toks, hooks_for, batch)
        bar.update()
        return value
    clean = ce(lambda real: [])
    zeroed = ce(lambda real: [(f"blocks.{L}.hook_mlp_out", _zeroing(real)) for L in tcs])
    replaced = ce(lambda real: replacement_hooks(tcs, keep_error=False, real=real))
    out = dict(ce_clean=clean, ce_all_replaced=replaced, ce_all_zeroed=zeroed,
               ce_loss_recovered=(zeroed - replaced) / (zeroed - clean), layers=list(tcs), n_tokens=int(toks[:, 1:].numel()))
    if per_layer:
        rows = []
        for L, tc in tcs.items():
            z = ce(lambda real, L=L: [(f"blocks.{L}.hook_mlp_out", _zeroing(real))])
            r = ce(lambda real, L=L, tc=tc: replacement_hooks({L: tc}, keep_error=False, real=real))
            rows.append(dict(layer=L, ce_replaced=r, ce_zeroed=z, ce_loss_recovered=(z - r) / (z - clean)))
        out["per_layer"] = rows
    bar.close()
    return out


def write_replacement_metrics(set_dir: str | Path, result: dict) -> Path:
    path = Path(set_dir) / "replacement.json"
    path.write_text(json.dumps(result, indent=2))
    return path


@dataclass(frozen=True)
class ReplacementEval:
    """A transcoder set spliced into its model: CE-loss recovered, all layers at once and each alone."""
    set: str | None = None
    """Folder `mechinterp train-transcoders` wrote, layer_{L}/sae per layer (None: runs/transcoders)."""
    device: str = "auto"
    """auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps."""
    n_windows: int = field(default=32, metadata=bounds(1))
    """Held-out windows of the first layer's input store to measure on."""
    batch: int = field(default=8, metadata=bounds(1))
    """Windows per forward pass."""
    per_layer: bool = True
    """Also replace each layer alone (one more pair of passes per layer; --no_per_layer skips them)."""
    progress: bool = True
    """Show a progress bar over the loss passes (passes/s, ETA)."""

    def __post_init__(self):
        check_bounds(self)
        if self.n_windows < 1 or self.batch < 1:
            raise ValueError(f"--n_windows {self.n_windows} and --batch {self.batch} must be at least 1")
