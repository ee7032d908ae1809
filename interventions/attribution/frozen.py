"""The model made linear for one prompt: attention patterns and norm scales frozen at their values
in the real forward, every MLP replaced by a constant write (its transcoder's features, its
error, its bias) plus the transcoder's linear skip path.

    cache = record(model, tcs, tokens)                      # one real forward, no grad
    with replay(model, cache, writes, batch=B) as taps:     # the frozen, linear model
        model.run_with_hooks(tokens.expand(B, -1), hooks=taps.hooks)
    taps.mlp_in[L], taps.resid_final                        # tensors of the autograd graph

With the writes equal to the real MLP outputs (less their skip term) the replayed forward gives
the real activations; any other writes give what the frozen linear model makes of them. Every
gradient that flows through it is therefore an exact direct effect.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from extract import norms
from extract.hooked import _StopForward
from extract.sites import get_module
from interventions.replacement import bos_positions


@dataclass
class PromptCache:
    """What the real forward of one prompt leaves for the frozen model ([1, pos, ...] tensors)."""
    tokens: torch.Tensor
    patterns: dict[int, torch.Tensor]
    scales: dict[str, torch.Tensor]
    """norm module path -> its 1/rms (or 1/std) per position"""
    embed: torch.Tensor
    mlp_in: dict[int, torch.Tensor]
    mlp_out: dict[int, torch.Tensor]
    logits: torch.Tensor
    real: torch.Tensor
    """[pos] positions whose MLP outputs stay real (BOS): no features, no error nodes there"""


def _norm_modules(model) -> dict[str, nn.Module]:
    return {name: m for name, m in model.model.named_modules() if norms.is_norm(m)}


@contextmanager
def _norm_hooks(model, fn):
    handles = [m.register_forward_hook(lambda mod, args, out, name=name: fn(name, mod, args[0], out))
               for name, m in _norm_modules(model).items()]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def record(model, tokens: torch.Tensor, sink_positions: int = 1) -> PromptCache:
    """One real forward of tokens [1, pos]: patterns, norm scales, embeddings, MLP inputs/outputs. The
    BOS tokens and the first sink_positions positions keep their real MLP outputs."""
    scales: dict[str, torch.Tensor] = {}

    def keep_scale(name, mod, x, out):
        scales[name] = norms.norm_scale(mod, x)

    names = ["hook_embed"] + [f"blocks.{L}.{s}" for L in range(model.n_layers)
                              for s in ("attn.hook_pattern", "hook_mlp_in", "hook_mlp_out")]
    with _norm_hooks(model, keep_scale):
        logits, cache = model.run_with_cache(tokens, names=names)
    L = range(model.n_layers)
    return PromptCache(tokens=tokens, scales=scales, embed=cache["hook_embed"], logits=logits,
                       patterns={i: cache[f"blocks.{i}.attn.hook_pattern"] for i in L},
                       mlp_in={i: cache[f"blocks.{i}.hook_mlp_in"] for i in L},
                       mlp_out={i: cache[f"blocks.{i}.hook_mlp_out"] for i in L},
                       real=bos_positions(model, tokens)[0] | (torch.arange(tokens.shape[1]) < sink_positions))


@dataclass
class Taps:
    """Hooks of one frozen forward and the tensors it exposes to autograd."""
    hooks: list = field(default_factory=list)
    mlp_in: dict[int, torch.Tensor] = field(default_factory=dict)
    resid_final: torch.Tensor | None = None


@contextmanager
def replay(model, cache: PromptCache, embed: torch.Tensor, mlp: Callable[[int, torch.Tensor], torch.Tensor]):
    """The model with attention patterns and norm scales frozen: embed [B, pos, d] replaces the token
    embeddings and layer L's MLP adds mlp(L, mlp_in) (for attribution, a constant write plus a
    transcoder's linear skip path: the model is then linear). Run `model.run_with_hooks(tokens,
    hooks=taps.hooks)`: it stops after the final norm (no unembedding)."""
    taps = Taps()

    def frozen_norm(name, mod, x, out):
        return norms.frozen_norm(mod, x, cache.scales[name], model.layout.norm_gain_offset)

    def pattern(p, hook):
        return cache.patterns[hook.layer].expand_as(p)

    def keep_in(x, hook):
        taps.mlp_in[hook.layer] = x

    def detach(t, hook):
        return t.detach()  # queries and keys only shape the pattern, which is frozen

    def write(y, hook):
        return mlp(hook.layer, taps.mlp_in[hook.layer])

    def final(r, hook):
        taps.resid_final = r
        raise _StopForward

    taps.hooks = [("hook_embed", lambda e, hook: embed), ("ln_final.hook_normalized", final)]
    for L in range(model.n_layers):
        taps.hooks += [(f"blocks.{L}.attn.hook_q", detach), (f"blocks.{L}.attn.hook_k", detach),
                       (f"blocks.{L}.attn.hook_pattern", pattern), (f"blocks.{L}.hook_mlp_in", keep_in),
                       (f"blocks.{L}.hook_mlp_out", write)]
    with _norm_hooks(model, frozen_norm), _mlps_skipped(model):
        yield taps


@contextmanager
def _mlps_skipped(model):
    """The MLPs return zeros (their outputs are replaced at hook_mlp_out anyway): no compute, no memory."""
    mlps = [get_module(layer, model.layout.mlp) for layer in get_module(model.model, model.layout.layers)]
    for mlp in mlps:
        mlp.forward = _zeros
    try:
        yield
    finally:
        for mlp in mlps:
            del mlp.forward


def _zeros(x, *args, **kwargs):
    return torch.zeros_like(x)


def release_freed_memory() -> None:
    """Hand freed heap pages back to the OS (glibc keeps them, fragmented between the tensors a frozen
    forward retains: 1.6 GB of a 64-token graph's RSS); a no-op elsewhere."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass


@contextmanager
def no_param_grads(model):
    """Parameters out of autograd for the duration (only the sources' gradients are wanted)."""
    params = [p for p in model.model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)
