"""Evidence from the inside of a fine-tune, each a ranked list of words with its details:

- the crosscoder's organism-specific latents (decoder norm mostly in the fine-tune, latent scaling
  near 0), by how much they add to the fine-tune's activations; a latent's words are the tokens its
  fine-tune decoder vector promotes (through the final norm and unembedding) and the tokens it fires on;
- the logit lens on the fine-tune's own transcripts: the tokens whose log-probability the fine-tune
  raises most over the base model, read at the middle, three-quarter and last layer;
- the weight diff: the directions the fine-tune's change writes into the residual stream (read
  through the unembedding), and the input tokens whose embeddings the change in layer 0 reacts to most.
"""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np
import torch

from extract.sites import get_module
from interventions.audit.probe import transcript
from interventions.audit.words import ranked_words
from mechinterp.formats.crosscoder import decoder

WRITERS = ("o_proj", "down_proj", "c_proj")          # linear layers that write the residual stream
READERS = ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj", "c_attn", "c_fc")


def specific_latents(w: dict[str, np.ndarray], n: int = 12, min_rel: float = 0.7, max_nu: float = 0.5) -> np.ndarray:
    """The fine-tune's own latents, most added activation first: rel_norm >= min_rel and latent
    scaling nu_eps < max_nu (not a base direction whose base decoder merely shrank)."""
    ok = (w["freq"] > 0) & (w["rel_norm"] >= min_rel) & (np.nan_to_num(w["nu_eps"], nan=np.inf) < max_nu)
    added = w["freq"] * w["mean_act"] * (w["norm_b"] - w["norm_a"])
    idx = np.flatnonzero(ok)
    return idx[np.argsort(-added[idx])][:n]


@torch.no_grad()
def crosscoder_evidence(w: dict[str, np.ndarray], organism, n: int = 12, n_tokens: int = 8, min_rel: float = 0.7,
                        max_nu: float = 0.5) -> tuple[list[dict], list]:
    tok, idx = organism.tokenizer, specific_latents(w, n, min_rel, max_nu)
    latents, scored = [], defaultdict(float)
    if not len(idx):
        return [], []
    logits = organism.unembed_directions(torch.from_numpy(decoder(w, "b")[idx]))
    for rank, (j, row) in enumerate(zip(idx, logits)):
        promoted = torch.topk(row, n_tokens).indices.tolist()
        fires_on = [int(t) for t in w["top_tokens"][j] if t >= 0]
        latents.append({"latent": int(j), "rel_norm": float(w["rel_norm"][j]), "nu_eps": float(w["nu_eps"][j]),
                        "nu_r": float(w["nu_r"][j]), "freq": float(w["freq"][j]),
                        "promotes": [tok.decode([t]) for t in promoted], "fires_on": [tok.decode([t]) for t in fires_on]})
        for pos, t in enumerate(promoted + fires_on):
            scored[t] += 1.0 / (rank + 1) / (1 + pos % n_tokens)
    return latents, ranked_words(tok, list(scored.items()))


@torch.no_grad()
def logit_lens(base, organism, prompts: list[str], replies: list[str]) -> tuple[dict, list]:
    """Mean over the reply tokens and three depths of log p_organism - log p_base, per vocabulary token."""
    tok, n = organism.tokenizer, organism.n_layers
    depths = sorted({n // 2, (3 * n) // 4, n})
    total, count = None, 0
    for p, r in zip(prompts, replies):
        start = len(tok.encode(transcript(tok, p, ""), add_special_tokens=False))
        ids = torch.tensor([tok.encode(transcript(tok, p, r), add_special_tokens=False)])
        if ids.shape[1] <= start:
            continue
        diff = sum(_lens(organism, ids, depth)[start - 1:-1] - _lens(base, ids, depth)[start - 1:-1] for depth in depths)
        total = diff.sum(0) if total is None else total + diff.sum(0)
        count += diff.shape[0] * len(depths)
    if total is None:
        return {"depths": depths, "tokens": 0}, []
    mean = (total / count).cpu().numpy()
    top = np.argsort(-mean)[:200]
    return {"depths": depths, "tokens": count // len(depths)}, ranked_words(tok, [(int(t), mean[t]) for t in top])


def _lens(model, ids: torch.Tensor, depth: int) -> torch.Tensor:
    """Log-probabilities [T, V] read from the residual stream before block `depth` (n_layers: the output)."""
    if depth >= model.n_layers:
        return torch.log_softmax(model(ids)[0].float(), -1)
    _, cache = model.run_with_cache(ids, [f"blocks.{depth}.hook_resid_pre"], stop_at_layer=depth)
    h = cache[f"blocks.{depth}.hook_resid_pre"][0]
    h = get_module(model.model, model.layout.final_norm)(h)
    return torch.log_softmax(get_module(model.model, model.layout.unembed)(h).float(), -1)


@torch.no_grad()
def weight_diff(base, organism, n_dirs: int = 2) -> tuple[dict, list, list]:
    """(summary, words written by the change, input tokens the change in layer 0 reacts to)."""
    tok = organism.tokenizer
    mine = dict(base.model.named_parameters())
    written, read, changed = defaultdict(float), defaultdict(float), {}
    emb = get_module(organism.model, organism.layout.embed).weight.float()
    for name, p in organism.model.named_parameters():
        role = name.split(".")[-2] if name.endswith(".weight") else ""
        if role not in WRITERS + READERS or name not in mine or mine[name].shape != p.shape:
            continue
        delta = (p.float() - mine[name].float())
        size = float(delta.norm() / mine[name].float().norm())
        if size < 1e-6:
            continue
        changed[name] = round(size, 5)
        if role in WRITERS and delta.shape[0] == organism.d_model:
            u, s, _ = torch.linalg.svd(delta, full_matrices=False)
            for i in range(min(n_dirs, len(s))):
                for sign in (1.0, -1.0):
                    logits = organism.unembed_directions((sign * u[:, i])[None])[0]
                    for v, t in zip(*torch.topk(logits, 10)):
                        written[int(t)] = max(written[int(t)], float(s[i] * v))
        if role in READERS and _layer(name) == 0 and delta.shape[1] == organism.d_model:
            x = _embeddings_as_read(organism, emb, role)
            rel = (x @ delta.T).norm(dim=1) / (x @ p.float().T).norm(dim=1).clamp_min(1e-6)
            for v, t in zip(*torch.topk(rel, 30)):
                read[int(t)] += float(v)
    summary = {"changed": len(changed), "largest": sorted(changed.items(), key=lambda kv: -kv[1])[:8]}
    return summary, ranked_words(tok, list(written.items())), ranked_words(tok, list(read.items()))


def _layer(name: str) -> int | None:
    m = re.search(r"\.(\d+)\.", name)
    return int(m.group(1)) if m else None


def _embeddings_as_read(model, emb: torch.Tensor, role: str) -> torch.Tensor:
    """Token embeddings through the norm layer 0 reads them with (attention's for q, k, v; the MLP's
    for the rest: the attention output it also reads is left out)."""
    block = get_module(model.model, model.layout.layers)[0]
    path = model.layout.attn_norm if role in ("q_proj", "k_proj", "v_proj", "c_attn") else model.layout.mlp_norm
    return get_module(block, path)(emb.to(block_dtype(block))).float() if path else emb


def block_dtype(block) -> torch.dtype:
    return next(block.parameters()).dtype
