"""Attribution graphs on disk (numpy only): written by interventions.attribution, read by anyone.

A graph directory holds
  graph.npz    adjacency [N, N] float32 (rows = targets, columns = sources; node order
               [features, errors (layer * n_pos + pos), tokens, logits]), features [n, 3] int32
               (layer, pos, latent), activations [n], tokens [n_pos], logit_tokens [k],
               logit_probs [k], errors_norm [n_layers, n_pos]
  graph.json   n_layers and meta: model, prompt, transcoder set, timings, exactness, settings
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

GRAPH_NPZ, GRAPH_JSON = "graph.npz", "graph.json"
ARRAYS = ("adjacency", "features", "activations", "tokens", "logit_tokens", "logit_probs", "errors_norm")


@dataclass
class Graph:
    adjacency: np.ndarray
    features: np.ndarray
    activations: np.ndarray
    tokens: np.ndarray
    logit_tokens: np.ndarray
    logit_probs: np.ndarray
    errors_norm: np.ndarray
    n_layers: int
    meta: dict = field(default_factory=dict)

    @property
    def n_pos(self) -> int:
        return len(self.tokens)

    @property
    def n_features(self) -> int:
        return len(self.features)

    @property
    def n_errors(self) -> int:
        return self.n_layers * self.n_pos

    def node_kind(self, i: int) -> tuple[str, tuple]:
        """('feature', (layer, pos, latent)) | ('error', (layer, pos)) | ('token', (pos,)) | ('logit', (k,))."""
        if i < self.n_features:
            return "feature", tuple(int(v) for v in self.features[i])
        i -= self.n_features
        if i < self.n_errors:
            return "error", divmod(i, self.n_pos)
        i -= self.n_errors
        return ("token", (i,)) if i < self.n_pos else ("logit", (i - self.n_pos,))

    def save(self, out: str | Path) -> Path:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / (GRAPH_NPZ + ".tmp.npz")
        np.savez(tmp, **{k: getattr(self, k) for k in ARRAYS})
        tmp.replace(out / GRAPH_NPZ)
        (out / GRAPH_JSON).write_text(json.dumps(dict(n_layers=self.n_layers, meta=self.meta), indent=2))
        return out


def load_graph(path: str | Path) -> Graph:
    path = Path(path)
    if not (path / GRAPH_NPZ).exists():
        raise FileNotFoundError(f"no {GRAPH_NPZ} in {path}; make one with `mechinterp trace`")
    head = json.loads((path / GRAPH_JSON).read_text())
    with np.load(path / GRAPH_NPZ) as z:
        return Graph(**{k: z[k] for k in ARRAYS}, n_layers=int(head["n_layers"]), meta=head["meta"])
