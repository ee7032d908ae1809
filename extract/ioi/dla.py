"""Direct logit attribution of the IO - S logit difference to layers and heads.

The final norm's scale is frozen at its value on the clean run (per prompt, end position), so
the map residual -> logits is affine and the residual stream's parts add up:

    logit_diff = sum_parts  (gain * center(part) / scale) . (W_U[IO] - W_U[S])  +  bias terms

For RMSNorm: center is the identity and scale = sqrt(mean(x^2) + eps); for LayerNorm: center
subtracts the mean, scale = sqrt(var + eps), and the norm's bias is its own part. Parts: the
embeddings, every head (z_h @ W_O[h]), the output projection's bias, every MLP. Where the
attention output passes a sandwich norm before the residual (Gemma 3) that norm's scale is frozen
too, so the heads still add up to the layer. `rest` = total - sum(parts) is ~0 (float error).
"""

from __future__ import annotations

import torch
from torch import nn

from extract.sites import get_module


def _norm_parts(norm: nn.Module, x: torch.Tensor, offset: float):
    """(gain [d], scale [..., 1], center, bias [d] | None) of a norm module at input x (float64);
    offset: the family's Layout.norm_gain_offset."""
    cls = type(norm).__name__
    x = x.double()
    weight = norm.weight.detach().double() if getattr(norm, "weight", None) is not None else torch.ones(x.shape[-1], dtype=x.dtype)
    if isinstance(norm, nn.LayerNorm) or "LayerNorm" in cls and getattr(norm, "bias", None) is not None:
        eps = getattr(norm, "eps", getattr(norm, "variance_epsilon", 1e-5))
        scale = (x.var(-1, unbiased=False, keepdim=True) + eps).sqrt()
        bias = norm.bias.detach().double() if norm.bias is not None else None
        return weight, scale, True, bias
    eps = getattr(norm, "variance_epsilon", None) or getattr(norm, "eps", 1e-6)
    gain = weight + offset if offset else weight
    scale = (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()
    return gain, scale, False, None


def _linearise(norm: nn.Module, x: torch.Tensor, offset: float, check_with: torch.Tensor | None = None):
    """A function part -> its share of norm(x) with the scale frozen at x."""
    gain, scale, center, bias = _norm_parts(norm, x, offset)
    if check_with is not None:
        approx = gain * ((x.double() - x.double().mean(-1, keepdim=True)) if center else x.double()) / scale
        approx = approx + (bias if bias is not None else 0)
        err = (approx - check_with.double()).abs().max().item()
        if err > 1e-3 * max(1.0, check_with.abs().max().item()):
            raise NotImplementedError(f"cannot linearise {type(norm).__name__} (reconstruction error {err:.3g}); "
                                      "DLA supports LayerNorm and RMSNorm (incl. Gemma's 1 + weight)")

    def apply(part: torch.Tensor) -> torch.Tensor:
        part = part.double()
        if center:
            part = part - part.mean(-1, keepdim=True)
        return gain * part / scale.unsqueeze(-2) if part.dim() > scale.dim() else gain * part / scale
    return apply, bias


def o_proj_weight(o_proj: nn.Module) -> torch.Tensor:
    """[n_heads * d_head, d_model] such that out = z @ W (+ bias)."""
    w = o_proj.weight.detach()
    return w.T if isinstance(o_proj, nn.Linear) else w  # GPT-2's Conv1D stores [in, out]


@torch.no_grad()
def direct_logit_attribution(model, tokens: torch.Tensor, io_tok: torch.Tensor, s_tok: torch.Tensor,
                             end: int | None = None) -> dict:
    """Per-prompt DLA at the end position. Returns tensors (float64, [n] / [n, L] / [n, L, H]):
    total, embed, heads, attn_bias, attn (per layer, from hook_attn_out), mlp, final_bias, rest."""
    L, H, dh = model.n_layers, model.n_heads, model.d_head
    lay = model.layout
    names = ["hook_embed", f"blocks.{L - 1}.hook_resid_post", "ln_final.hook_normalized"]
    if lay.pos_embed:
        names.append("hook_pos_embed")
    for layer in range(L):
        names += [f"blocks.{layer}.attn.hook_z", f"blocks.{layer}.hook_attn_out", f"blocks.{layer}.hook_mlp_out"]
    logits, cache = model.run_with_cache(tokens.to(model.device), names=names, cache_device="cpu")
    e = tokens.shape[1] - 1 if end is None else end
    n = tokens.shape[0]
    rows = torch.arange(n)
    W_U = get_module(model.model, lay.unembed)
    u = (W_U.weight[io_tok.to(W_U.weight.device)] - W_U.weight[s_tok.to(W_U.weight.device)]).detach().cpu().double()  # [n, d]
    final_norm = get_module(model.model, lay.final_norm)
    x = cache[f"blocks.{L - 1}.hook_resid_post"][:, e]
    final, fbias = _linearise(final_norm.cpu() if model.device.type != "cpu" else final_norm, x, lay.norm_gain_offset,
                              check_with=cache["ln_final.hook_normalized"][:, e])

    def attrib(part):  # part [n, ..., d] -> [n, ...]
        y = final(part)
        return (y * (u.view(n, *([1] * (y.dim() - 2)), -1))).sum(-1)

    total = (logits[:, e, :].float().cpu()[rows, io_tok] - logits[:, e, :].float().cpu()[rows, s_tok]).double()
    softcap = getattr(model.config, "final_logit_softcapping", None)
    embed = attrib(cache["hook_embed"][:, e] + (cache["hook_pos_embed"][:, e] if lay.pos_embed else 0))
    heads = torch.zeros(n, L, H, dtype=torch.float64)
    attn_bias = torch.zeros(n, L, dtype=torch.float64)
    attn = torch.zeros(n, L, dtype=torch.float64)
    mlp = torch.zeros(n, L, dtype=torch.float64)
    for layer in range(L):
        block = f"{lay.layers}.{layer}"
        o_proj = get_module(model.model, f"{block}.{lay.o_proj}")
        W_O = o_proj_weight(o_proj).cpu().double().view(H, dh, -1)
        z = cache[f"blocks.{layer}.attn.hook_z"][:, e].double()  # [n, H, dh]
        per_head = torch.einsum("nhk,hkd->nhd", z, W_O)  # [n, H, d]
        b_O = o_proj.bias.detach().cpu().double() if getattr(o_proj, "bias", None) is not None else None
        if lay.sandwich_norm:  # the residual receives norm(o_proj output): freeze its scale too
            pn = get_module(model.model, f"{block}.{lay.attn_out}")
            o = per_head.sum(1) + (b_O if b_O is not None else 0)
            lin, pbias = _linearise(pn.cpu() if model.device.type != "cpu" else pn, o, lay.norm_gain_offset,
                                    check_with=cache[f"blocks.{layer}.hook_attn_out"][:, e])
            per_head = lin(per_head)
            b_parts = (lin(b_O.expand(n, -1)) if b_O is not None else 0) + (pbias if pbias is not None else 0)
            b_O = b_parts if isinstance(b_parts, torch.Tensor) else None
        heads[:, layer] = attrib(per_head)
        if b_O is not None:
            attn_bias[:, layer] = attrib(b_O.expand(n, -1))
        attn[:, layer] = attrib(cache[f"blocks.{layer}.hook_attn_out"][:, e])
        mlp[:, layer] = attrib(cache[f"blocks.{layer}.hook_mlp_out"][:, e])
    final_bias = torch.zeros(n, dtype=torch.float64)
    if fbias is not None:
        final_bias += (fbias * u).sum(-1)
    if getattr(W_U, "bias", None) is not None:
        final_bias += (W_U.bias[io_tok] - W_U.bias[s_tok]).detach().cpu().double()
    parts = embed + heads.sum((1, 2)) + attn_bias.sum(1) + mlp.sum(1) + final_bias
    return {"total": total, "embed": embed, "heads": heads, "attn_bias": attn_bias, "attn": attn, "mlp": mlp,
            "final_bias": final_bias, "rest": total - parts, "softcapped": bool(softcap)}
