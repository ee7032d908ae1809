"""Feature statistics on disk (numpy only): written by sae_jax.features, read by the browser.

A statistics directory holds
  feature_stats.npz   per-latent arrays: count, sum, top values and global store rows, histogram,
                      quantile-band samples, context activations (see sae_jax/features.py)
  feature_stats.json  a json summary: d_sae, n_tokens, dead, dense, L0, the SAE and store used
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mechinterp.formats.atomic import atomic_path, atomic_write_text
from mechinterp.formats.reading import read_json, read_npz

STATS_NPZ, STATS_JSON = "feature_stats.npz", "feature_stats.json"


@dataclass
class FeatureStats:
    """Arrays (numpy) and a json-able summary. Row ids are global store rows (-1: none)."""
    arrays: dict[str, np.ndarray]
    summary: dict = field(default_factory=dict)

    def __getitem__(self, k: str) -> np.ndarray:
        return self.arrays[k]

    @property
    def d_sae(self) -> int:
        return int(self.arrays["count"].shape[0])

    def save(self, out: str | Path) -> Path:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / STATS_NPZ) as tmp:
            np.savez_compressed(tmp, **self.arrays)
        atomic_write_text(out / STATS_JSON, json.dumps(self.summary, indent=2))
        return out


def load_feature_stats(path: str | Path) -> FeatureStats:
    path = Path(path)
    if not (path / STATS_NPZ).exists():
        raise FileNotFoundError(f"no {STATS_NPZ} in {path}; compute it with `mechinterp browse`")
    fix = "delete the folder and re-run mechinterp browse"
    return FeatureStats(read_npz(path / STATS_NPZ, None, fix), read_json(path / STATS_JSON, fix))


