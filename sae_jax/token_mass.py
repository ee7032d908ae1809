"""Where each latent's activation mass falls: on which token, after which token, at which position.

    mass = TokenMass(store, d_sae, top=24)
    mass.add(latents, values, rows)          # a chunk's nonzero entries (as sae_jax.features has them)
    arrays = mass.finish()                   # numpy arrays for the statistics file

The labels (interventions/labels) read these: a token's lift for a latent is the share of the
latent's firings on that token over the token's share of the corpus. Per latent, the `top` tokens
with the most firings are kept, with their firing count and activation mass; the same for the
token just before; and the firing count at every window position. The corpus's own counts of each
token (and previous token) over the same rows come along, so lifts and precisions need nothing else.

(latent, token) pairs are accumulated sparsely: each chunk's pairs are summed with np.unique and
merged into the running total every few chunks, so memory grows with the number of distinct pairs,
never with latents x vocabulary. Numpy only.
"""

from __future__ import annotations

import numpy as np


def row_tokens(store) -> tuple[np.ndarray, np.ndarray]:
    """(token, previous token) of every stored row, [n_rows] int64 each (-1: no previous token)."""
    m, rpw = store.meta, store.rows_per_window
    tok, prev = np.empty(store.n_rows, np.int64), np.empty(store.n_rows, np.int64)
    for w in range(store.n_windows):
        t = np.asarray(store.window_tokens(w), np.int64)
        tok[w * rpw:(w + 1) * rpw] = t[m.first_pos:]
        prev[w * rpw:(w + 1) * rpw] = np.r_[-1, t][m.first_pos:m.first_pos + rpw]
    return tok, prev


class _PairSums:
    """Running sums of (count, mass) per int64 key, merged every `merge_every` chunks."""

    def __init__(self, merge_every: int = 16):
        self.keys = np.zeros(0, np.int64)
        self.count = np.zeros(0, np.int64)
        self.mass = np.zeros(0, np.float64)
        self.pending: list[tuple] = []
        self.merge_every = merge_every

    def add(self, keys: np.ndarray, values: np.ndarray) -> None:
        self.pending.append((keys, np.ones(len(keys), np.int64), values.astype(np.float64)))
        if len(self.pending) >= self.merge_every:
            self.merge()

    def merge(self) -> None:
        if not self.pending:
            return
        keys = np.concatenate([self.keys] + [p[0] for p in self.pending])
        count = np.concatenate([self.count] + [p[1] for p in self.pending])
        mass = np.concatenate([self.mass] + [p[2] for p in self.pending])
        self.keys, inv = np.unique(keys, return_inverse=True)
        self.count = np.bincount(inv, count, len(self.keys)).astype(np.int64)
        self.mass = np.bincount(inv, mass, len(self.keys))
        self.pending = []

    def top(self, d_sae: int, width: int, top: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per latent, the `top` keys' second parts with the most counts: ids [S, top] (-1: none),
        counts, masses (ties: the lower id first)."""
        self.merge()
        lat, ids = np.divmod(self.keys, width)
        order = np.lexsort((ids, -self.count, lat))
        lat, ids, count, mass = lat[order], ids[order], self.count[order], self.mass[order]
        rank = np.arange(len(lat)) - np.searchsorted(lat, lat, side="left")
        keep = rank < top
        out_ids = np.full((d_sae, top), -1, np.int32)
        out_count = np.zeros((d_sae, top), np.int64)
        out_mass = np.zeros((d_sae, top), np.float64)
        out_ids[lat[keep], rank[keep]] = ids[keep]
        out_count[lat[keep], rank[keep]] = count[keep]
        out_mass[lat[keep], rank[keep]] = mass[keep]
        return out_ids, out_count, out_mass


class TokenMass:
    def __init__(self, store, d_sae: int, top: int = 24):
        self.tok, self.prev = row_tokens(store)
        self.vocab = int(max(self.tok.max(initial=0), self.prev.max(initial=0))) + 1
        self.width = self.vocab + 1                       # previous-token keys are shifted by one (-1: none)
        self.rpw, self.first_pos, self.S, self.topn = store.rows_per_window, store.meta.first_pos, d_sae, top
        self.on_token, self.after_token = _PairSums(), _PairSums()
        self.at_position = np.zeros((d_sae, self.rpw), np.int64)
        self.token_count = np.zeros(self.vocab, np.int64)
        self.prev_count = np.zeros(self.width, np.int64)
        self.position_count = np.zeros(self.rpw, np.int64)

    def rows_seen(self, rows: np.ndarray) -> None:
        """Count the corpus side: every row of the pass, firing or not."""
        self.token_count += np.bincount(self.tok[rows], minlength=self.vocab)
        self.prev_count += np.bincount(self.prev[rows] + 1, minlength=self.width)
        self.position_count += np.bincount(rows % self.rpw, minlength=self.rpw)

    def add(self, lat: np.ndarray, v: np.ndarray, rows: np.ndarray) -> None:
        W = self.width
        self.on_token.add(lat * W + self.tok[rows], v)
        self.after_token.add(lat * W + self.prev[rows] + 1, v)
        self.at_position += np.bincount(lat * self.rpw + rows % self.rpw,
                                        minlength=self.S * self.rpw).reshape(self.S, self.rpw)

    def finish(self) -> dict[str, np.ndarray]:
        ids, count, mass = self.on_token.top(self.S, self.width, self.topn)
        pids, pcount, pmass = self.after_token.top(self.S, self.width, self.topn)
        return {"tok_ids": ids, "tok_count": count, "tok_mass": mass,
                "prev_ids": np.where(pcount > 0, pids - 1, -2).astype(np.int32),   # -1: window start, -2: none
                "prev_count": pcount, "prev_mass": pmass, "pos_count": self.at_position,
                "corpus_token_count": self.token_count, "corpus_prev_count": self.prev_count[1:],
                "corpus_position_count": self.position_count, "pos_first": np.int64(self.first_pos)}
