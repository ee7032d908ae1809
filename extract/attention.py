"""An attention implementation for transformers that exposes q, k, v and the pattern.

Every supported family computes attention through transformers' `ALL_ATTENTION_FUNCTIONS`,
called with the attention module (which knows its `layer_idx`) and the query/key/value
states after their projections (and rotary / q-k norms). Registering one function there
gives hook points that mean the same thing in every family:

  q: [batch, pos, head, d_head]    k, v: [batch, pos, kv_head, d_head]
  pattern: [batch, head, query_pos, key_pos]  (softmax probabilities)

With no hook on a layer the function hands straight over to transformers' SDPA, so a model
switched to it runs as fast as before. A hook on the pattern switches that layer to an
eager computation (the probabilities must exist to be read or replaced).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

IMPLEMENTATION = "mechinterp_hooked"

# module attribute holding {"q"|"k"|"v"|"pattern": fn(tensor) -> tensor | None} during a run
HOOKS_ATTR = "_mechinterp_attn_hooks"


def _apply(fn: Callable, tensor: torch.Tensor) -> torch.Tensor:
    out = fn(tensor)
    return tensor if out is None else out


def hooked_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    hooks = getattr(module, HOOKS_ATTR, None)
    if not hooks:
        return sdpa_attention_forward(module, query, key, value, attention_mask,
                                      scaling=scaling, dropout=dropout, **kwargs)
    # transformers passes [batch, head, pos, d_head]; hooks see TransformerLens' [batch, pos, head, d_head]
    for name, states in (("q", query), ("k", key), ("v", value)):
        if name in hooks:
            new = _apply(hooks[name], states.transpose(1, 2)).transpose(1, 2)
            query, key, value = (new, key, value) if name == "q" else (query, new, value) if name == "k" else (query, key, new)
    if "pattern" not in hooks:
        return sdpa_attention_forward(module, query, key, value, attention_mask,
                                      scaling=scaling, dropout=dropout, **kwargs)
    groups = getattr(module, "num_key_value_groups", 1)
    key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    scaling = query.shape[-1] ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query, key.transpose(-1, -2)) * scaling
    if kwargs.get("softcap") is not None:
        scores = torch.tanh(scores / kwargs["softcap"]) * kwargs["softcap"]
    q_len, k_len = scores.shape[-2:]
    if attention_mask is None:
        if getattr(module, "is_causal", True):  # an encoder (BERT) without padding sees every position
            causal = torch.ones(q_len, k_len, dtype=torch.bool, device=scores.device).tril(k_len - q_len)
            scores = scores.masked_fill(~causal, float("-inf"))
    elif attention_mask.dtype == torch.bool:
        scores = scores.masked_fill(~attention_mask[..., :k_len], float("-inf"))
    else:
        scores = scores + attention_mask[..., :k_len]
    pattern = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    pattern = _apply(hooks["pattern"], pattern)
    out = torch.matmul(pattern, value).transpose(1, 2).contiguous()
    return out, pattern


def register() -> str:
    """Idempotent; returns the implementation name to set on a model's config."""
    AttentionInterface.register(IMPLEMENTATION, hooked_attention)
    AttentionMaskInterface.register(IMPLEMENTATION, sdpa_mask)
    return IMPLEMENTATION
