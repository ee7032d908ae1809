"""Stability: does the same SAE, trained with another seed, learn the same latents? And how
much does every metric move between seeds?

  cross_seed   for every pair of seeds, the MCC between their decoders (mean |cos| under the best
               one-to-one matching, as ground_truth.mcc) and the mean over one dictionary's
               latents of their best |cos| in the other; mean and std over the pairs
  spread       mean and std over seeds of each metric
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from sae_jax.evals.ground_truth import cosines, mcc


def cross_seed(decoders: list[np.ndarray]) -> dict:
    if len(decoders) < 2:
        raise ValueError("cross-seed similarity needs at least two seeds")
    pairs = []
    for a, b in combinations(decoders, 2):
        cos = cosines(a, b)
        pairs.append((mcc(cos), float(cos.max(1).mean())))
    m, best = np.array(pairs).T
    return dict(cross_seed_mcc=float(m.mean()), cross_seed_mcc_std=float(m.std()),
                cross_seed_max_cos=float(best.mean()), seeds=len(decoders))


def spread(runs: list[dict], keys: list[str]) -> dict:
    """{key: mean, key_std: std} over runs (one dict of metrics per seed)."""
    out = {}
    for key in keys:
        vals = np.array([r[key] for r in runs], float)
        out[key], out[f"{key}_std"] = float(vals.mean()), float(vals.std())
    return out
