"""Activation patching for masked-residue prediction: which layers and positions carry what fills a
masked residue.

A pair is two sequences of the same length (so positions line up) that disagree at position p: the
clean sequence holds the target there (a CDR3 residue, or a conserved cysteine), the corrupted one
another residue. Both are run with p masked; the metric is the logit of the clean residue minus the
corrupted one at p. Patching the clean run's residual stream at (layer, position) into the
corrupted run and measuring how much of the metric returns,

    restored = (patched - corrupted) / (clean - corrupted),

maps where the information lives. Layer l is the input of block l (l = 0: the embeddings); the last
is the final block's output.
"""

from __future__ import annotations

import numpy as np
import torch

from extract.bio.labels import CONSERVED, REGIONS
from mechinterp.formats.residues import Residues

TARGETS = ("CDR3", "Cys23", "Cys104")


def pairs(res: Residues, target: str, n: int, seed: int = 0) -> list[tuple[str, str, int]]:
    """Up to n (clean, corrupted, p) pairs: for CDR3, two sequences of one chain type and length whose
    residues at a CDR3 position p differ; for a cysteine, a sequence with that conserved cysteine at
    p and one of the same length without a cysteine there (IMGT numbering shifts between sequences
    with different CDR lengths)."""
    if target not in TARGETS:
        raise ValueError(f"unknown patching target {target!r}; choose one of {', '.join(TARGETS)}")
    rng = np.random.default_rng(seed)
    texts = [str(t) for t in res.seq_text]
    stored = np.bincount(res.seq, minlength=len(texts))
    whole = [s for s in range(len(texts)) if stored[s] == len(texts[s])]  # every residue labelled
    by_length: dict[int, list[int]] = {}
    for s in whole:
        by_length.setdefault(len(texts[s]), []).append(s)
    out, used = [], set()
    for a in rng.permutation(whole):
        rows = np.flatnonzero(res.seq == a)
        if target == "CDR3":
            sites = rows[res.region[rows] == REGIONS.index("CDR3")]
        else:
            imgt = int(CONSERVED[target][0])
            sites = rows[(res.imgt[rows] == imgt) & (np.array([texts[a][p] for p in res.pos[rows]]) == "C")]
        if not len(sites):
            continue
        p = int(res.pos[rng.choice(sites)])
        for b in rng.permutation(by_length[len(texts[a])]):
            if b == a or b in used:
                continue
            if target == "CDR3" and (res.seq_chain[b] != res.seq_chain[a] or texts[b][p] == texts[a][p]):
                continue
            if target != "CDR3" and texts[b][p] == "C":
                continue
            out.append((texts[a], texts[b], p))
            used.update((a, b))
            break
        if len(out) == n:
            break
    return out


def patch_sites(model) -> list[str]:
    return [f"blocks.{layer}.hook_resid_pre" for layer in range(model.n_layers)] + \
           [f"blocks.{model.n_layers - 1}.hook_normalized_resid_post"]


@torch.no_grad()
def patch_pair(model, clean: str, corrupted: str, p: int, batch: int = 64) -> dict:
    """restored [site, position] for one pair (positions are [CLS], residues..., [SEP]), and the clean
    and corrupted metrics."""
    tok = model.tokenizer
    a, b = (model.to_tokens(s)[0] for s in (clean, corrupted))
    a[1 + p] = b[1 + p] = tok.mask_token_id
    ids = [tok.convert_tokens_to_ids(s[p]) for s in (clean, corrupted)]
    sites = patch_sites(model)
    logits, cache = model.run_with_cache(a[None], names=sites)

    def metric(logits):
        return logits[:, 1 + p, ids[0]] - logits[:, 1 + p, ids[1]]
    m_clean, m_corrupt = float(metric(logits)[0]), float(metric(model(b[None]))[0])
    grid = [(s, q) for s in range(len(sites)) for q in range(len(a))]
    values = []
    for g0 in range(0, len(grid), batch):
        chunk = grid[g0:g0 + batch]
        hooks = []
        for s, name in enumerate(sites):
            rows = [(r, q) for r, (si, q) in enumerate(chunk) if si == s]
            if rows:
                r_idx, q_idx = map(torch.tensor, zip(*rows))

                def patch(x, hook, r_idx=r_idx, q_idx=q_idx, name=name):
                    x = x.clone()
                    x[r_idx, q_idx] = cache[name][0, q_idx].to(x.dtype)
                    return x
                hooks.append((name, patch))
        values.append(metric(model.run_with_hooks(b[None].expand(len(chunk), -1), hooks)).float())
    restored = (torch.cat(values).reshape(len(sites), len(a)) - m_corrupt) / (m_clean - m_corrupt)
    return dict(restored=restored.numpy(), clean=m_clean, corrupted=m_corrupt)


def patching(model, res: Residues, target: str, n_pairs: int = 4, seed: int = 0) -> dict:
    """Per target: the pairs' restored maps, aligned on the masked position (offset 0) and averaged,
    and the share each region's positions restore at the layer where the masked position itself
    restores least (where the information has moved elsewhere)."""
    found = pairs(res, target, n_pairs, seed)
    if not found:
        raise ValueError(f"no sequence pair for patching target {target}: the dump holds no two sequences of one "
                         "length that differ there; dump more --n_sequences")
    from tqdm import tqdm

    maps, per_pair, width = [], [], max(len(c) for c, _, _ in found) + 2
    for clean, corrupted, p in tqdm(found, desc=f"patching {target}", unit="pair", leave=False):
        r = patch_pair(model, clean, corrupted, p)
        if abs(r["clean"] - r["corrupted"]) < 1e-3:
            continue  # the model does not tell them apart: nothing to restore
        aligned = np.full((r["restored"].shape[0], 2 * width), np.nan)
        aligned[:, width - (1 + p):width - (1 + p) + r["restored"].shape[1]] = r["restored"]
        maps.append(aligned)
        per_pair.append(dict(p=p, clean_residue=clean[p], corrupted_residue=corrupted[p], clean=r["clean"],
                             corrupted=r["corrupted"], masked_position=r["restored"][:, 1 + p].tolist()))
    if not maps:
        raise ValueError(f"{model.name} barely tells the residues of any {target} pair apart; patch more --n_pairs")
    stacked = np.stack(maps)
    seen = (~np.isnan(stacked)).sum(0)
    mean = np.where(seen > 0, np.nan_to_num(stacked).sum(0) / np.maximum(seen, 1), np.nan)
    keep = seen.any(0)
    offsets = np.arange(-width, width)[keep]
    return dict(target=target, sites=patch_sites(model), offsets=offsets.tolist(),
                restored=np.round(mean[:, keep], 4).tolist(), pairs=per_pair)
