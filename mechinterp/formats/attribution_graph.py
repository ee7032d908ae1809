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

from mechinterp.formats.atomic import atomic_path, atomic_write_text
from mechinterp.formats.errors import LabError
from mechinterp.formats.reading import read_json, read_npz

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
        with atomic_path(out / GRAPH_NPZ) as tmp:
            np.savez(tmp, **{k: getattr(self, k) for k in ARRAYS})
        atomic_write_text(out / GRAPH_JSON, json.dumps(dict(n_layers=self.n_layers, meta=self.meta), indent=2))
        return out


def load_graph(path: str | Path) -> Graph:
    path = Path(path)
    if not (path / GRAPH_NPZ).exists():
        raise FileNotFoundError(f"no {GRAPH_NPZ} in {path}; make one with `mechinterp trace`")
    fix = "delete the folder and re-run mechinterp trace"
    head = read_json(path / GRAPH_JSON, fix)
    if not isinstance(head.get("n_layers"), int) or not isinstance(head.get("meta"), dict):
        raise LabError(f"{path / GRAPH_JSON} lacks n_layers or meta: it is not an attribution graph's; {fix}")
    return Graph(**read_npz(path / GRAPH_NPZ, ARRAYS, fix), n_layers=head["n_layers"], meta=head["meta"])
