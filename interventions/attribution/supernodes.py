"""Suggested supernodes: the graph's feature nodes grouped by what their labels say and where their
decoders write, for the graph page's "suggest" button (the user accepts, renames or splits them).

    groups = suggest_supernodes(ids, decoders, labels, min_similarity=0.4)

Similarity of two features = the mean of
- their decoder directions' cosine (both write into the residual stream, whatever their layers), and
- the overlap of their labels' rules (Jaccard over the rule's tokens, written case- and space-
  insensitively, "after" tokens and window-start positions kept apart from current tokens).
Groups are made by average-linkage agglomeration until no two groups are more similar than
`min_similarity`; single features stay ungrouped. A group is named by the rule items most of its
members share ("Mary", "after and", "window start"), else by its members' most common label.
Numpy only.
"""

from __future__ import annotations

from collections import Counter

import numpy as np


def signature(label: dict | None, text) -> set[str]:
    """A label's rule as a set of items: "tok:mary", "after:and", "start"."""
    rule = (label or {}).get("rule") or {}
    items = {f"tok:{w}" for t in rule.get("tokens", [])[:8] if (w := text(t).strip().lower())}
    items |= {f"after:{w}" for t in rule.get("after", [])[:8] if (w := text(t).strip().lower())}
    if rule.get("positions"):
        items.add("start")
    return items


def _jaccard(a: list[set], b: list[set]) -> np.ndarray:
    out = np.zeros((len(a), len(b)))
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            u = len(x | y)
            out[i, j] = len(x & y) / u if u else 0.0
    return out


def _name(sigs: list[set], labels: list[str]) -> str:
    counts = Counter(item for s in sigs for item in s)
    shared = [item for item, c in counts.most_common(3) if c >= max(2, len(sigs) / 2)]
    if shared:
        return " / ".join(("window start" if s == "start" else s.replace("tok:", "").replace("after:", "after "))
                          for s in shared)
    common = Counter(labels).most_common(1)
    return common[0][0][:40] if common and common[0][0] else "group"


def suggest_supernodes(ids: list[str], decoders: np.ndarray, labels: list[dict | None], text,
                       min_similarity: float = 0.4) -> list[dict]:
    """[{"label", "members": [node ids], "similarity"}], largest groups first. `decoders` [n, d];
    `labels`: each feature's label dict (or None); `text(id)`: a token id's string."""
    n = len(ids)
    if n < 2:
        return []
    d = decoders / np.maximum(np.linalg.norm(decoders, axis=1, keepdims=True), 1e-12)
    sigs = [signature(lab, text) for lab in labels]
    sim = 0.5 * np.clip(d @ d.T, -1, 1) + 0.5 * _jaccard(sigs, sigs)
    groups = [[i] for i in range(n)]
    link = sim.copy()
    np.fill_diagonal(link, -np.inf)
    while True:
        a, b = np.unravel_index(np.argmax(link), link.shape)
        if link[a, b] < min_similarity:
            break
        na, nb = len(groups[a]), len(groups[b])
        groups[a] += groups[b]
        groups[b] = []
        link[a] = (link[a] * na + link[b] * nb) / (na + nb)       # average linkage
        link[:, a] = link[a]
        link[a, a] = -np.inf
        link[b], link[:, b] = -np.inf, -np.inf
    out = []
    for g in groups:
        if len(g) < 2:
            continue
        inner = sim[np.ix_(g, g)][~np.eye(len(g), dtype=bool)].mean()
        out.append({"label": _name([sigs[i] for i in g], [(labels[i] or {}).get("label", "") for i in g]),
                    "members": [ids[i] for i in g], "similarity": round(float(inner), 3)})
    return sorted(out, key=lambda s: -len(s["members"]))
