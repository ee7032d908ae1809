"""Two stores of one dump read as one, row by row: a transcoder's input and target.

    pair = open_pair("runs/acts/m/blocks.3.hook_mlp_in", "runs/acts/m/blocks.3.hook_mlp_out")
    for xy in pair.batches(4096, seed=0):      # float32 [4096, d_in + d_out]: input | target
        ...

A multi-hook dump writes the same windows of the same tokens into every store, so the stores'
rows correspond one to one; this checks that (identity fields, window count, the tokens of a
sample of windows) and then reads both with the same window order and shuffles, side by side.
Numpy only, like the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mechinterp.formats.store import ActivationStore, StoreError, open_store, shuffled_batches

SAME = ("model", "weights", "ctx", "keep_bos", "prepend_bos", "corpus")


class PairedStore:
    def __init__(self, inp: ActivationStore, out: ActivationStore, two_models: bool = False,
                 massive: float | None = None):
        """two_models: the stores are two models' dumps of the same tokens (a crosscoder's pair), so
        their model may differ but not their width. massive: with skip_bos, also leave out the rows
        whose norm in either store is over this many times that store's mean norm (attention-sink
        tokens after a BOS: a few rows that carry most of the variance, and that a fine-tune may
        have moved; None: keep them)."""
        a, b = inp.meta, out.meta
        differ = [k for k in SAME if getattr(a, k) != getattr(b, k) and not (two_models and k in ("model", "weights"))]
        if two_models and inp.d_model != out.d_model:
            raise StoreError(f"{a.model} ({a.hook}) is {inp.d_model} wide and {b.model} ({b.hook}) {out.d_model}: a "
                             "crosscoder pairs two models of one width (a model and its fine-tune)")
        if two_models and (differ or inp.n_windows != out.n_windows):
            raise StoreError(f"the dumps of {a.model} and {b.model} are not of the same tokens (they differ in "
                             f"{', '.join(differ) or 'window count'}); a crosscoder needs two models with one tokenizer, "
                             "dumped with the same --corpus, --n_tokens, --ctx and --seed")
        if differ or inp.n_windows != out.n_windows:
            what = ", ".join(differ) or f"window count ({inp.n_windows} vs {out.n_windows})"
            raise StoreError(f"stores {a.hook} and {b.hook} are not from one dump (they differ in {what}); "
                             "dump both hooks in one command (--hook X --hook Y)")
        sample = np.unique(np.linspace(0, inp.n_windows - 1, min(8, inp.n_windows)).astype(int))
        if any(not np.array_equal(inp.window_tokens(int(w)), out.window_tokens(int(w))) for w in sample):
            raise StoreError(f"the dumps of {a.model} and {b.model} hold different tokens (another tokenizer, corpus or "
                             "--seed); a crosscoder needs two models with one tokenizer, dumped with the same --corpus, "
                             "--n_tokens, --ctx and --seed" if two_models else
                             f"stores {a.hook} and {b.hook} hold different tokens; dump both hooks in one command")
        self.inp, self.out = inp, out
        self.meta = a
        self.massive = massive
        self._ordinary_norms = None

    @property
    def d_in(self) -> int:
        return self.inp.d_model

    @property
    def d_out(self) -> int:
        return self.out.d_model

    @property
    def d_model(self) -> int:
        """Width of a paired row: input then target."""
        return self.d_in + self.d_out

    @property
    def rows_per_window(self) -> int:
        return self.inp.rows_per_window

    @property
    def n_windows(self) -> int:
        return self.inp.n_windows

    @property
    def n_rows(self) -> int:
        return self.inp.n_rows

    @property
    def mean_norms(self) -> tuple[float, float]:
        """Each store's mean row norm; with `massive`, over the ordinary rows of up to 64 windows spread
        over the dump (the massive rows would otherwise inflate it)."""
        if not self.massive:
            return self.inp.mean_norm, self.out.mean_norm
        if self._ordinary_norms is None:
            rows = self.read_windows(np.unique(np.linspace(0, self.n_windows - 1, min(64, self.n_windows)).astype(int)),
                                     skip_bos=True)
            self._ordinary_norms = (float(np.linalg.norm(rows[:, :self.d_in], axis=1).mean()),
                                    float(np.linalg.norm(rows[:, self.d_in:], axis=1).mean()))
        return self._ordinary_norms

    def __repr__(self) -> str:
        return f"PairedStore({self.meta.model} {self.inp.meta.hook} -> {self.out.meta.hook}, {self.n_rows} rows)"

    def window_tokens(self, w: int) -> np.ndarray:
        return self.inp.window_tokens(w)

    def split(self, *args, **kwargs) -> tuple[np.ndarray, np.ndarray]:
        return self.inp.split(*args, **kwargs)

    def read_windows(self, windows: np.ndarray, skip_bos: bool = False) -> np.ndarray:
        rows = np.concatenate([self.inp.read_windows(windows, skip_bos), self.out.read_windows(windows, skip_bos)], 1)
        return rows[self.ordinary(rows)] if skip_bos and self.massive else rows

    def not_bos(self, windows: np.ndarray) -> np.ndarray:
        return self.inp.not_bos(windows)

    def ordinary(self, rows: np.ndarray) -> np.ndarray:
        """Mask over paired rows: True where neither half's norm is over `massive` x its store's mean
        norm (all True when massive is None)."""
        if not self.massive:
            return np.ones(len(rows), bool)
        return ((np.linalg.norm(rows[:, :self.d_in], axis=1) <= self.massive * self.inp.mean_norm)
                & (np.linalg.norm(rows[:, self.d_in:], axis=1) <= self.massive * self.out.mean_norm))

    def batches(self, batch_size: int, skip_bos: bool = False, **kwargs) -> Iterator[np.ndarray]:
        """The paired rows of the stores' windows, shuffled as a store's own batches (the same rows
        as each store's batches side by side, less the massive rows with skip_bos)."""
        return shuffled_batches(self, batch_size, skip_bos=skip_bos,
                                row_filter=self.ordinary if skip_bos and self.massive else None, **kwargs)


def open_pair(inp: str | Path, out: str | Path, two_models: bool = False, massive: float | None = None) -> PairedStore:
    return PairedStore(open_store(inp), open_store(out), two_models, massive)
