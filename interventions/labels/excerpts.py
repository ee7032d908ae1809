"""Held-out excerpts and where each latent fires in them (numpy only; the cache file's owner).

Excerpts are consecutive `length`-token pieces of windows of held-out text (the BOS position is
not part of any excerpt). For every latent, the activations that are nonzero are kept sparsely.

    ex = Excerpts(tokens, prev, pos, exc, off, lat, val)      # as heldout.heldout_excerpts makes them
    ex.save(path); Excerpts.load(path)
    ex.firing(i)    -> (excerpt ids, offsets, values) of latent i
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from mechinterp.formats.atomic import atomic_path
from mechinterp.formats.reading import read_npz


@dataclass
class Excerpts:
    tokens: np.ndarray
    """[E, L] token ids."""
    prev: np.ndarray
    """[E, L] the token before each (-1: none, at the window's start)."""
    pos: np.ndarray
    """[E, L] position in the model's window (BOS = 0)."""
    exc: np.ndarray
    off: np.ndarray
    lat: np.ndarray
    val: np.ndarray
    """Nonzero activations: excerpt, offset in it, latent, value (sorted by latent)."""

    def __post_init__(self):
        order = np.argsort(self.lat, kind="stable")
        self.exc, self.off, self.lat, self.val = (a[order] for a in (self.exc, self.off, self.lat, self.val))

    @property
    def n(self) -> int:
        return int(self.tokens.shape[0])

    def firing(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lo, hi = np.searchsorted(self.lat, [i, i + 1])
        return self.exc[lo:hi], self.off[lo:hi], self.val[lo:hi]

    def save(self, path: str | Path) -> Path:
        with atomic_path(path) as tmp:
            np.savez(tmp, **{f.name: getattr(self, f.name) for f in fields(self)})
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> Excerpts:
        arrays = read_npz(path, tuple(f.name for f in fields(cls)), f"delete {path}; it is remade")
        return cls(**arrays)


def cut(windows: np.ndarray, first_pos: int, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Windows [W, ctx] -> (tokens, prev, pos [E, length], per excerpt (window, first position))."""
    W, ctx = windows.shape
    per = (ctx - first_pos) // length
    if per < 1:
        raise ValueError(f"windows of {ctx} tokens hold no excerpt of {length}; pass a smaller --excerpt")
    starts = first_pos + length * np.arange(per)
    pos = starts[:, None] + np.arange(length)                       # [per, L]
    tok = windows[:, pos].reshape(W * per, length)
    prev_full = np.concatenate([np.full((W, 1), -1, windows.dtype), windows[:, :-1]], 1)
    prev = prev_full[:, pos].reshape(W * per, length)
    where = np.stack(np.meshgrid(np.arange(W), starts, indexing="ij"), -1).reshape(-1, 2)
    return tok, prev, np.tile(pos, (W, 1)), where
