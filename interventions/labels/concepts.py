"""Labels of a biology SAE from its concept alignment (`mechinterp bio-eval`): a latent whose held-out
F1 with a residue or region concept (region:CDR3, conserved:Cys23, ...) reaches `min_f1` is named
by that concept; an offline label already beside the export is kept after it. Numpy only.
"""

from __future__ import annotations

import numpy as np


def concept_labels(names: list[str], f1: np.ndarray, existing: dict[int, dict] | None = None,
                   min_f1: float = 0.3) -> list[dict]:
    """One label per latent of f1 [d_sae, n_concepts]; `existing`: offline labels by latent."""
    existing = existing or {}
    out = []
    for u in range(f1.shape[0]):
        order = np.argsort(-f1[u], kind="stable")[:3]      # ties: the first concept, as argmax
        base = existing.get(u, {})
        if f1[u, order[0]] >= min_f1:
            name = f"{names[order[0]]} (F1 {f1[u, order[0]]:.2f})"
            if base.get("kind") not in (None, "mixed", "dead"):
                name += " · " + base["label"]
            out.append({**base, "i": u, "label": name, "kind": "concept",
                        "concepts": [[names[j], round(float(f1[u, j]), 3)] for j in order if f1[u, j] > 0]})
        else:
            out.append({**base, "i": u, "label": base.get("label", "no concept"), "kind": base.get("kind", "mixed")})
    return out
