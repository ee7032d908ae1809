"""Hook sites: TransformerLens names mapped onto Hugging Face modules, one table per family.

Everything outside this file is architecture-free: it speaks only hook names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class Layout:
    """Where a family keeps its parts (attribute paths from the *ForCausalLM model)."""
    layers: str
    embed: str
    final_norm: str
    unembed: str
    attn: str
    """Attention module inside a layer (the one that calls the attention function)."""
    attn_out: str
    """Module inside a layer whose output is what attention adds to the residual stream."""
    mlp_out: str
    """Module inside a layer whose output is what the MLP adds to the residual stream."""
    o_proj: str
    """Attention output projection; its input is hook_z."""
    mlp_down: str
    """MLP output projection; its input is mlp.hook_post (the neurons)."""
    pos_embed: str | None = None
    mlp: str = "mlp"
    """The MLP module inside a layer; its input is the normalised residual (ln2.hook_normalized)."""
    parallel: bool = False
    """Attention and MLP both read resid_pre (GPT-J / NeoX style): there is no resid_mid."""
    ln1: str | None = None
    """Post-norm (BERT) only: the norm after attention's residual add; its output is the MLP's input."""
    ln2: str | None = None
    """Post-norm (BERT) only: the norm after the MLP's residual add; its output leaves the block."""
    attn_norm: str | None = None
    """Pre-norm families: the norm attention reads the residual through (its input is not added back)."""
    mlp_norm: str | None = None
    """Pre-norm families: the norm the MLP reads the residual through."""
    sandwich_norm: bool = False
    """Each sublayer's output passes a norm of its own before the residual add (Gemma 3): attn_out and
    mlp_out sit after that norm."""
    norm_gain_offset: float = 0.0
    """RMSNorm multiplies by (offset + weight): 1 for Gemma, whose checkpoints store weight - 1."""

    @property
    def post_norm(self) -> bool:
        return self.ln2 is not None


LLAMA = Layout(layers="model.layers", embed="model.embed_tokens", final_norm="model.norm", unembed="lm_head",
               attn="self_attn", attn_out="self_attn", mlp_out="mlp", o_proj="self_attn.o_proj",
               mlp_down="mlp.down_proj", attn_norm="input_layernorm", mlp_norm="post_attention_layernorm")

GPT2 = Layout(layers="transformer.h", embed="transformer.wte", pos_embed="transformer.wpe",
              final_norm="transformer.ln_f", unembed="lm_head", attn="attn", attn_out="attn",
              mlp_out="mlp", o_proj="attn.c_proj", mlp_down="mlp.c_proj", attn_norm="ln_1", mlp_norm="ln_2")

# Gemma 3 sandwiches each sublayer between two norms: what reaches the residual stream is the
# output of the *post* norm, so attn_out / mlp_out sit there, not on the attention or MLP modules.
GEMMA3 = Layout(layers="model.layers", embed="model.embed_tokens", final_norm="model.norm", unembed="lm_head",
                attn="self_attn", attn_out="post_attention_layernorm", mlp_out="post_feedforward_layernorm",
                o_proj="self_attn.o_proj", mlp_down="mlp.down_proj", attn_norm="input_layernorm",
                mlp_norm="pre_feedforward_layernorm", sandwich_norm=True, norm_gain_offset=1.0)

# BERT / RoBERTa (encoders, masked LM) are post-norm: each sublayer's residual add is followed by a
# LayerNorm. Sites as TransformerLens' HookedEncoder names them: resid_mid = resid_pre + attn_out
# (before ln1), resid_post = ln1(resid_mid) + mlp_out (before ln2), and the block's output,
# ln2(resid_post) = hook_normalized_resid_post, is the next block's resid_pre.
# The "final norm" is the masked-LM head's transform (dense, GELU, LayerNorm) before the decoder.
BERT = Layout(layers="bert.encoder.layer", embed="bert.embeddings.word_embeddings",
              pos_embed="bert.embeddings.position_embeddings", final_norm="cls.predictions.transform",
              unembed="cls.predictions.decoder", attn="attention.self", attn_out="attention.output.dense",
              mlp_out="output.dense", o_proj="attention.output.dense", mlp_down="output.dense", mlp="intermediate",
              ln1="attention.output.LayerNorm", ln2="output.LayerNorm")
ROBERTA = Layout(**{**BERT.__dict__, "layers": "roberta.encoder.layer", "embed": "roberta.embeddings.word_embeddings",
                    "pos_embed": "roberta.embeddings.position_embeddings", "final_norm": "lm_head.layer_norm",
                    "unembed": "lm_head.decoder"})

NEOX = Layout(layers="gpt_neox.layers", embed="gpt_neox.embed_in", final_norm="gpt_neox.final_layer_norm",
              unembed="embed_out", attn="attention", attn_out="attention", mlp_out="mlp",
              o_proj="attention.dense", mlp_down="mlp.dense_4h_to_h", parallel=True, attn_norm="input_layernorm",
              mlp_norm="post_attention_layernorm")

FAMILIES = {
    "gpt2": GPT2,
    "llama": LLAMA, "mistral": LLAMA, "qwen2": LLAMA, "qwen3": LLAMA,
    "gemma3_text": GEMMA3, "gemma3": GEMMA3,
    "gpt_neox": NEOX,
    "bert": BERT, "roberta": ROBERTA,
}


def layout_for(config) -> Layout:
    model_type = getattr(config, "model_type", None)
    if model_type not in FAMILIES:
        raise ValueError(f"no hook-site table for model type {model_type!r}; "
                         f"supported: {', '.join(sorted(set(FAMILIES)))}")
    layout = FAMILIES[model_type]
    if model_type == "gpt_neox" and not getattr(config, "use_parallel_residual", True):
        layout = Layout(**{**layout.__dict__, "parallel": False})
    return layout


def get_module(root: nn.Module, path: str) -> nn.Module:
    for part in path.split("."):
        root = root[int(part)] if part.isdigit() else getattr(root, part)
    return root


# How a hook reads its site:
#   out     forward hook, the module's output (first element when it returns a tuple)
#   in      forward pre-hook, the module's first input
#   heads   pre-hook on the output projection, input viewed as [batch, pos, head, d_head]
#   attn    inside the attention function (q, k, v, pattern)
#   mid     resid_pre + attn_out, replaced by adjusting attn_out
BLOCK_SITES = {
    "hook_resid_pre": ("in", ""),
    "hook_resid_mid": ("mid", ""),
    "hook_resid_post": ("out", ""),
    "hook_attn_out": ("out", "attn_out"),
    "hook_mlp_out": ("out", "mlp_out"),
    "attn.hook_z": ("heads", "o_proj"),
    "attn.hook_q": ("attn", "q"),
    "attn.hook_k": ("attn", "k"),
    "attn.hook_v": ("attn", "v"),
    "attn.hook_pattern": ("attn", "pattern"),
    "mlp.hook_post": ("in", "mlp_down"),
    # what the MLP reads: the residual after the pre-MLP norm (a transcoder's input). With
    # hook_mlp_out, the layer's MLP maps one onto the other exactly (Gemma 3: its post-MLP norm included)
    "ln2.hook_normalized": ("in", "mlp"),
    "hook_mlp_in": ("in", "mlp"),
}
POST_NORM_SITES = {
    **BLOCK_SITES,
    "hook_resid_post": ("in", "ln2"),
    "ln1.hook_normalized": ("out", "ln1"),
    "ln2.hook_normalized": ("out", ""),
    "hook_normalized_resid_post": ("out", ""),
}
GLOBAL_SITES = {"hook_embed": ("out", "embed"), "hook_pos_embed": ("out", "pos_embed"),
                "ln_final.hook_normalized": ("out", "final_norm")}

_BLOCK_RE = re.compile(r"^blocks\.(\d+)\.(.+)$")


@dataclass(frozen=True)
class Site:
    """A resolved hook site. Hook functions receive it as their `hook` argument."""
    name: str
    layer: int | None
    kind: str
    module: str
    """Attribute path of the module hooked (for kind 'attn': the attention module)."""
    key: str = ""
    """For kind 'attn': which of q, k, v, pattern."""


def block_sites(layout: Layout) -> dict[str, tuple[str, str]]:
    return POST_NORM_SITES if layout.post_norm else BLOCK_SITES


def site_names(layout: Layout, n_layers: int) -> list[str]:
    names = [n for n, (_, part) in GLOBAL_SITES.items() if getattr(layout, part) is not None]
    for layer in range(n_layers):
        names += [f"blocks.{layer}.{s}" for s in block_sites(layout) if not (s == "hook_resid_mid" and layout.parallel)]
    return names


def resolve(name: str, layout: Layout, n_layers: int) -> Site:
    if name in GLOBAL_SITES:
        kind, part = GLOBAL_SITES[name]
        if getattr(layout, part) is None:
            raise KeyError(f"hook {name!r} does not exist in this architecture (it has no {part.replace('_', ' ')} "
                           "module; positions enter through rotary embeddings in attention)" if part == "pos_embed"
                           else f"hook {name!r} does not exist in this architecture")
        return Site(name, None, kind, getattr(layout, part))
    m, sites = _BLOCK_RE.match(name), block_sites(layout)
    if not m or m.group(2) not in sites:
        globals_here = [n for n, (_, part) in GLOBAL_SITES.items() if getattr(layout, part) is not None]
        raise KeyError(f"unknown hook {name!r}; valid hooks: {', '.join(globals_here)}, "
                       f"blocks.{{L}}.{{{', '.join(sites)}}} with L in 0..{n_layers - 1}")
    layer, suffix = int(m.group(1)), m.group(2)
    if layer >= n_layers:
        raise KeyError(f"layer {layer} out of range in hook {name!r}: the model has {n_layers} layers (0..{n_layers - 1})")
    if suffix == "hook_resid_mid" and layout.parallel:
        raise KeyError(f"hook {name!r} does not exist: attention and MLP run in parallel in this architecture")
    kind, part = sites[suffix]
    block = f"{layout.layers}.{layer}"
    if kind == "attn":
        return Site(name, layer, kind, f"{block}.{layout.attn}", key=part)
    if kind == "mid":
        return Site(name, layer, kind, f"{block}.{layout.attn_out}")
    return Site(name, layer, kind, f"{block}.{getattr(layout, part)}" if part else block)
