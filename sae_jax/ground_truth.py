"""Synthetic activations with known features (SynthSAEBench-style), for scoring how well an
SAE recovers the truth rather than how well it reconstructs.

    x = sum_i c_i * d_i + bias + noise        d_i: n_features unit directions in d dimensions

with many more features than dimensions (superposition), and the properties that make real
activations hard:
  - power-law firing: p_i falls with rank as (i+1)^-zipf_exponent, rescaled to [p_min, p_max];
  - correlation: a feature fires when z_i < Phi^-1(p_i), z a Gaussian with a low-rank
    covariance (a Gaussian copula: the marginals stay p_i, the firings co-vary);
  - hierarchy: a forest of roots with `branching` children per node, `depth` levels deep; a child
    fires only when its parent does, and (mutually_exclusive) at most one child of a parent fires.
    Parents are the more frequent features. A child's effective rate is p_child * P(parent);
  - magnitudes: lognormal with mean 1 and log-std magnitude_std.

`sample` returns the activations and the firing matrix (the truth the metrics score against);
`write_store` writes an activation store that every trainer reads, with the generator's
settings in its corpus block so the truth can be rebuilt from the store alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.special import ndtri

from mechinterp.formats.errors import SAEError
from mechinterp.formats.store import META_FILE, StoreMeta, read_meta
from mechinterp.formats.store_writer import StoreWriter


@dataclass(frozen=True)
class GroundTruthConfig:
    n_features: int = 4096
    """True features (at least 8x d for real superposition)."""
    d: int = 256
    """Width of the activations."""
    p_max: float = 0.4
    """Firing probability of the most frequent feature."""
    p_min: float = 5e-4
    """Firing probability of the rarest feature."""
    zipf_exponent: float = 0.5
    """Power-law exponent of the firing probability against frequency rank."""
    n_roots: int = 64
    """Trees of the hierarchy (0: no hierarchy)."""
    branching: int = 4
    """Children per parent."""
    depth: int = 2
    """Levels below the roots."""
    mutually_exclusive: bool = True
    """At most one child of a parent fires."""
    corr_rank: int = 16
    """Rank of the correlation between firings (0: independent)."""
    corr_scale: float = 0.1
    """Each feature's latent Gaussian shares corr_scale^2 * corr_rank of its variance with corr_rank
    common factors (its factor loadings: a random direction of that norm)."""
    magnitude_std: float = 0.3
    """Log-std of the firing magnitudes (lognormal, mean 1)."""
    bias_norm: float = 1.0
    """Norm of a constant offset added to every activation."""
    noise: float = 0.0
    """Std of isotropic Gaussian noise per dimension."""
    seed: int = 0
    """Seeds the directions, rates, hierarchy and correlations (not the samples)."""

    def __post_init__(self):
        if self.n_features < 2 or self.d < 2:
            raise SAEError(f"n_features and d must be at least 2, got {self.n_features} and {self.d}")
        if not 0 < self.p_min <= self.p_max < 1:
            raise SAEError(f"need 0 < p_min <= p_max < 1, got p_min={self.p_min}, p_max={self.p_max}")
        if self.n_roots < 0 or self.branching < 1 or self.depth < 1 or self.corr_rank < 0:
            raise SAEError("n_roots and corr_rank must be >= 0, branching and depth >= 1")
        if self.n_hierarchy > self.n_features:
            raise SAEError(f"the hierarchy needs {self.n_hierarchy} features ({self.n_roots} roots, branching "
                           f"{self.branching}, depth {self.depth}) but there are {self.n_features}")
        if self.corr_rank and self.corr_scale ** 2 * self.corr_rank >= 1:
            raise SAEError(f"corr_scale^2 * corr_rank must stay below 1 (a correlation), got "
                           f"{self.corr_scale ** 2 * self.corr_rank:g}")

    @property
    def n_hierarchy(self) -> int:
        return self.n_roots * sum(self.branching ** level for level in range(self.depth + 1))


SMALL = GroundTruthConfig(n_features=256, d=32, p_max=0.1, p_min=0.01, n_roots=8, branching=2, depth=1,
                          corr_rank=4, magnitude_std=0.2)
"""Seconds to train on: 8x superposition, still with hierarchy and correlation (the unit tests)."""


class GroundTruth:
    """The fixed part of a synthetic world: directions, rates, hierarchy, correlation factors."""

    def __init__(self, cfg: GroundTruthConfig):
        self.cfg = cfg
        rng = np.random.default_rng(cfg.seed)
        d = rng.standard_normal((cfg.n_features, cfg.d))
        self.features = (d / np.linalg.norm(d, axis=1, keepdims=True)).astype(np.float32)
        rank = np.arange(1, cfg.n_features + 1, dtype=np.float64) ** -cfg.zipf_exponent
        rank = (rank - rank[-1]) / (rank[0] - rank[-1])
        self.p = cfg.p_min + (cfg.p_max - cfg.p_min) * rank[rng.permutation(cfg.n_features)]
        self.parent, self.levels = self._hierarchy(rng)
        f = rng.standard_normal((cfg.n_features, cfg.corr_rank))
        self.factors = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12) * cfg.corr_scale * np.sqrt(cfg.corr_rank)
        self.bias = rng.standard_normal(cfg.d)
        self.bias *= cfg.bias_norm / np.linalg.norm(self.bias)

    def _hierarchy(self, rng) -> tuple[np.ndarray, list[np.ndarray]]:
        """(parent, levels). parent[i]: the parent feature of i, -1 for roots and features outside
        the forest; levels: the children at each depth, each parent's as one contiguous block of
        `branching`. The forest takes random features, ordered by rate so parents are the more
        frequent."""
        cfg = self.cfg
        parent, levels = np.full(cfg.n_features, -1), []
        if cfg.n_roots == 0:
            return parent, levels
        chosen = rng.choice(cfg.n_features, cfg.n_hierarchy, replace=False)
        chosen = chosen[np.argsort(-self.p[chosen])]
        level, used = list(chosen[:cfg.n_roots]), cfg.n_roots
        for _ in range(cfg.depth):
            nxt = []
            for par in level:
                kids = chosen[used:used + cfg.branching]
                parent[kids] = par
                nxt.extend(kids)
                used += cfg.branching
            level = np.array(nxt)
            levels.append(level)
        return parent, levels

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(x [n, d] float32, coefficients [n, n_features] float32, > 0 where a feature fires).
        Built feature-major ([n_features, n]) so that gating a level by its parents reads rows."""
        cfg = self.cfg
        z = rng.standard_normal((cfg.n_features, n), dtype=np.float32)
        if cfg.corr_rank:
            z *= np.sqrt(1 - (self.factors ** 2).sum(1)).astype(np.float32)[:, None]
            z += self.factors.astype(np.float32) @ rng.standard_normal((cfg.corr_rank, n), dtype=np.float32)
        fire = z < ndtri(self.p).astype(np.float32)[:, None]
        del z
        if cfg.mutually_exclusive:
            self._one_child_each(fire, rng)
        else:
            for level in self.levels:             # top-down: a child needs its parent
                fire[level] &= fire[self.parent[level]]
        coef = np.zeros((n, cfg.n_features), np.float32)
        fired = fire.T
        coef[fired] = np.exp(cfg.magnitude_std * rng.standard_normal(int(fire.sum()), dtype=np.float32)
                             - np.float32(cfg.magnitude_std ** 2 / 2))
        x = coef @ self.features + self.bias + cfg.noise * rng.standard_normal((n, cfg.d))
        return x.astype(np.float32), coef

    def _one_child_each(self, fire: np.ndarray, rng) -> None:
        """Keep one firing child per parent (chosen at random among those that fired) and only while
        the parent fires, top-down so a dropped child takes its own children with it. A level lists each parent's children as
        one contiguous block of `branching` (_hierarchy builds it so). fire: [n_features, n]."""
        b = self.cfg.branching
        for level in self.levels:
            sub = fire[level].reshape(-1, b, fire.shape[1])
            key = np.where(sub, rng.random(sub.shape, dtype=np.float32), -1.0)
            keep = np.zeros_like(sub)
            np.put_along_axis(keep, key.argmax(1)[:, None], True, 1)
            fire[level] = (sub & keep).reshape(-1, fire.shape[1]) & fire[self.parent[level]]

    def stats(self, n: int = 4096, seed: int = 1) -> dict:
        """What the world looks like: L0, superposition overlap, realised rates."""
        x, coef = self.sample(n, np.random.default_rng(seed))
        cos = np.abs(self.features @ self.features.T)
        np.fill_diagonal(cos, 0)
        fired = coef > 0
        return dict(l0=float(fired.sum(1).mean()), mean_max_overlap=float(cos.max(1).mean()),
                    superposition=self.cfg.n_features / self.cfg.d, never_fired=int((~fired.any(0)).sum()),
                    in_hierarchy=int((self.parent >= 0).sum() + self.cfg.n_roots))


def write_store(path: str | Path, cfg: GroundTruthConfig, n_windows: int = 256, ctx: int = 129,
                sample_seed: int = 1, progress: bool = False) -> Path:
    """An activation store of rows sampled from the world (resumes an unfinished one). The rows
    have no token order; windows only batch them as the store format needs."""
    gt = GroundTruth(cfg)
    meta = StoreMeta(model="synthetic", weights=f"ground_truth seed={cfg.seed}", hook="blocks.0.hook_resid_pre",
                     layer=0, d_model=cfg.d, ctx=ctx, keep_bos=False, n_windows=n_windows, dtype="float32",
                     corpus={"name": "ground_truth", "ground_truth": asdict(cfg), "sample_seed": sample_seed})
    if (Path(path) / META_FILE).exists() and read_meta(path).complete and not read_meta(path).mismatches(meta):
        return Path(path)
    w = StoreWriter.create_or_resume(path, meta)
    rows = ctx - meta.first_pos
    per = max(1, 8192 // rows)     # [8192, n_features] float32 temporaries: 134 MB at 4096 features
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=n_windows * rows, initial=w.windows_done * rows, unit="row", desc="ground-truth store")
    for w0 in range(w.windows_done, n_windows, per):
        n = min(per, n_windows - w0)
        x, _ = gt.sample(n * rows, np.random.default_rng([sample_seed, w0]))
        tokens = np.ones((n, ctx), np.int32)
        tokens[:, 0] = 0                     # a BOS column (not stored), so no row reads as a BOS row
        w.write(x.reshape(n, rows, cfg.d), tokens)
        if w0 // per % 16 == 15:
            w.flush()                        # resumable: an interrupt loses at most 16 chunks
        if bar:
            bar.update(n * rows)
    w.finish()
    return Path(path)


def from_store(meta: StoreMeta) -> GroundTruth:
    """The world a ground-truth store was sampled from."""
    block = meta.corpus.get("ground_truth")
    if block is None:
        raise SAEError(f"the store of {meta.model} / {meta.hook} was not written by sae_jax.ground_truth; "
                       "ground-truth metrics need one (write_store)")
    return GroundTruth(GroundTruthConfig(**block))
