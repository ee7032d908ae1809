"""Influence, pruning and the replacement / completeness scores of an attribution graph, with the
definitions of circuit-tracer's graph.py (prune_graph, compute_graph_scores), in numpy.

A is [targets, sources] (rows = targets), nodes ordered [features, errors, tokens, logits].
Â = |A| with each row scaled to sum 1; the influence of the nodes on the logits is
w Â + w Â² + ... with w the logit probabilities on the logit nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def normalize(A: np.ndarray) -> np.ndarray:
    A = np.abs(A)
    return A / np.maximum(A.sum(1, keepdims=True), 1e-10)


def influence(A_hat: np.ndarray, weights: np.ndarray, max_iter: int = 1000) -> np.ndarray:
    cur, total = weights @ A_hat, np.zeros(A_hat.shape[1], A_hat.dtype)
    for _ in range(max_iter):
        if not cur.any():
            return total
        total += cur
        cur = cur @ A_hat
    raise RuntimeError(f"influence did not converge in {max_iter} steps (the graph has a cycle)")


def logit_weights(n: int, logit_probs: np.ndarray) -> np.ndarray:
    w = np.zeros(n, np.float32)
    w[n - len(logit_probs):] = logit_probs
    return w


def _threshold(scores: np.ndarray, share: float) -> float:
    """The smallest score of the shortest top list whose cumulative share reaches `share`. Summed in
    float64: a float32 running sum over ~10^8 edge scores drifts (ending near 0.998 of the total),
    which moves the cut and keeps too many edges."""
    s = np.sort(scores.ravel())[::-1]
    cum = np.cumsum(s, dtype=np.float64)
    cum /= max(float(cum[-1]), 1e-300)
    return float(s[min(int(np.searchsorted(cum, share)), len(s) - 1)])


@dataclass
class Pruned:
    node_mask: np.ndarray
    edge_mask: np.ndarray
    node_influence: np.ndarray


def prune(A: np.ndarray, n_features: int, n_tokens: int, logit_probs: np.ndarray, node_threshold: float = 0.8,
          edge_threshold: float = 0.98, max_feature_nodes: int | None = None) -> Pruned:
    """Keep the nodes carrying node_threshold of the influence on the logits (tokens and logits
    always), and at most max_feature_nodes features; then the edges carrying edge_threshold of the
    remaining edge influence; then drop nodes left without a kept edge to a later node (and features
    without one from an earlier node), until nothing changes."""
    n, n_logits = len(A), len(logit_probs)
    w = logit_weights(n, logit_probs)
    inf = influence(normalize(A), w)
    node_mask = inf >= _threshold(inf, node_threshold)
    if max_feature_nodes is not None and node_mask[:n_features].sum() > max_feature_nodes:
        keep = np.argsort(-inf[:n_features], kind="stable")[:max_feature_nodes]
        node_mask[:n_features] = False
        node_mask[keep] = True
    node_mask[n - n_logits - n_tokens:] = True
    A = A * node_mask[:, None] * node_mask[None, :]
    A_hat = normalize(A)
    edge_score = A_hat * (influence(A_hat, w) + w)[:, None]
    edge_mask = edge_score >= _threshold(edge_score, edge_threshold)
    inner = n - n_logits - n_tokens
    while True:
        old = node_mask.copy()
        node_mask[:inner] &= edge_mask[:, :inner].any(0)
        node_mask[:n_features] &= edge_mask[:n_features].any(1)
        edge_mask &= node_mask[:, None] & node_mask[None, :]
        if (old == node_mask).all():
            return Pruned(node_mask, edge_mask, inf)


def scores(A: np.ndarray, n_features: int, n_errors: int, logit_probs: np.ndarray,
           as_error: np.ndarray | None = None) -> dict:
    """circuit-tracer's replacement and completeness scores. as_error, a mask over the feature nodes,
    counts those features as error nodes (a pruned graph: pruned features are error)."""
    n = len(A)
    A_hat = normalize(A)
    w = logit_weights(n, logit_probs)
    inf = influence(A_hat, w)
    err = np.zeros(n, bool)
    err[n_features:n_features + n_errors] = True
    if as_error is not None:
        err[:n_features] |= as_error
    tok = np.zeros(n, bool)
    tok[n_features + n_errors:n - len(logit_probs)] = True
    replacement = inf[tok].sum() / max(inf[tok].sum() + inf[err].sum(), 1e-30)
    through = inf + w
    completeness = ((1 - A_hat[:, err].sum(1)) * through).sum() / max(through.sum(), 1e-30)
    return dict(replacement=float(replacement), completeness=float(completeness))
