"""The activation store: the on-disk contract between the PyTorch and JAX sides.

A store is a directory:
  acts.npy    [n_windows * rows_per_window, d_model] float16 (or float32), via open_memmap
  tokens.npy  [n_windows, ctx] int32, the full windows (BOS included when one was prepended)
  meta.json   everything needed to interpret the two, `complete` set last

Row r of acts.npy belongs to window r // rows_per_window at position
first_pos + r % rows_per_window (first_pos is 1 when the BOS position was dropped).

Several stores written side by side (one per rank of a distributed dump) form one logical
store: `open_store(parent)` finds the shard directories below `parent` and indexes them as one.

This module imports numpy only: the JAX side reads stores through it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mechinterp.formats.atomic import atomic_write_text
from mechinterp.formats.errors import StoreError
from mechinterp.formats.fingerprint import stale

FORMAT_VERSION = 1
META_FILE, ACTS_FILE, TOKENS_FILE = "meta.json", "acts.npy", "tokens.npy"
DTYPES = ("float16", "float32")


@dataclass
class StoreMeta:
    model: str
    """Model name as given to load_model (registry name, hub id or local path)."""
    weights: str
    """Where the weights came from (GGUF file, hub revision, local dir, random init)."""
    hook: str
    """TransformerLens-style hook name, e.g. blocks.15.hook_resid_pre."""
    layer: int | None
    d_model: int
    ctx: int
    """Tokens per window, BOS included."""
    keep_bos: bool
    """Whether the BOS position's activations are stored (first_pos = 0) or dropped (1)."""
    n_windows: int
    """Windows this store was sized for."""
    dtype: str = "float16"
    prepend_bos: bool = True
    windows_done: int = 0
    """Windows written and flushed; a resumed dump starts here."""
    complete: bool = False
    corpus: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    """mean_norm (of the rows written), n_rows, ... for normalisation on the JAX side."""
    shard: dict = field(default_factory=lambda: {"rank": 0, "world_size": 1})
    inputs: dict = field(default_factory=dict)
    """Content fingerprints of what the rows were computed from ({"the model's weights": ..., "the
    corpus": ...}; mechinterp/formats/fingerprint.py): a store is resumed or kept only while they hold."""
    format_version: int = FORMAT_VERSION

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise StoreError(f"store dtype {self.dtype!r} is not one of {DTYPES}")
        if self.ctx < 2:
            raise StoreError(f"context length {self.ctx} is too short (need >= 2)")

    @property
    def first_pos(self) -> int:
        return 0 if (self.keep_bos or not self.prepend_bos) else 1

    @property
    def rows_per_window(self) -> int:
        return self.ctx - self.first_pos

    @property
    def n_rows(self) -> int:
        return self.n_windows * self.rows_per_window

    # fields that must agree for a dump to be appended to an existing store
    IDENTITY = ("model", "weights", "hook", "d_model", "ctx", "keep_bos", "prepend_bos", "dtype", "n_windows", "corpus", "shard")

    def mismatches(self, other: StoreMeta) -> list[str]:
        why = stale(self.inputs, other.inputs) if self.inputs else None  # stores written before fingerprints: unknown
        if why:  # the cause; the fields it changed follow from it
            return [f"{why} since it was written"]
        return [f"{k}: store has {getattr(self, k)!r}, asked for {getattr(other, k)!r}"
                for k in self.IDENTITY if getattr(self, k) != getattr(other, k)]


def is_complete(path: str | Path) -> bool:
    """Whether `path` holds a finished store (a missing or damaged one is not finished)."""
    try:
        return read_meta(path).complete
    except StoreError:
        return False


def read_meta(path: str | Path) -> StoreMeta:
    meta_path = Path(path) / META_FILE
    if not meta_path.exists():
        raise StoreError(f"{path} is not an activation store (no {META_FILE}); "
                         "create one with `mechinterp dump`")
    try:
        raw = json.loads(meta_path.read_text())
        if not isinstance(raw, dict):
            raise StoreError(f"{meta_path} holds a JSON {type(raw).__name__}, not an object; the store is damaged, "
                             "delete it and re-run the dump")
        if raw.get("format_version") != FORMAT_VERSION:
            raise StoreError(f"{meta_path} has format version {raw.get('format_version')}, "
                             f"this code reads {FORMAT_VERSION}; re-run the dump")
        return StoreMeta(**raw)
    except (json.JSONDecodeError, TypeError) as e:
        raise StoreError(f"{meta_path} is corrupt ({e}); delete the store and re-run the dump") from e


def write_meta(path: str | Path, meta: StoreMeta) -> None:
    """Atomic: a reader sees the old meta or the new one, never half of one."""
    atomic_write_text(Path(path) / META_FILE, json.dumps(asdict(meta), indent=2))


def not_bos_mask(tokens: np.ndarray, m: StoreMeta) -> np.ndarray:
    """Mask over the stored rows of windows `tokens` [n, ctx]: rows whose token is not BOS."""
    row_tokens = np.asarray(tokens)[:, m.first_pos:].reshape(-1)
    return row_tokens != tokens[0, 0] if m.prepend_bos else np.ones(len(row_tokens), bool)


def open_array(path: Path, mode: str, shape: tuple, dtype: str) -> np.memmap:
    if not path.exists():
        raise StoreError(f"{path} is missing; the store is damaged, delete it and re-run the dump")
    try:
        # validate read-only first: numpy's r+ mode silently zero-extends a truncated file
        arr = np.load(path, mmap_mode="r")
        if mode != "r" and arr.shape == tuple(shape):
            arr = np.load(path, mmap_mode=mode)
    except ValueError as e:
        raise StoreError(f"{path} is truncated or corrupt ({e}); delete the store and re-run the dump") from e
    if arr.shape != tuple(shape) or arr.dtype != np.dtype(dtype):
        raise StoreError(f"{path} has shape {arr.shape} {arr.dtype}, meta.json says {tuple(shape)} {dtype}; "
                         "the store is damaged, delete it and re-run the dump")
    return arr


# ---------------------------------------------------------------------------- reading


@dataclass
class _Shard:
    path: Path
    meta: StoreMeta
    acts: np.memmap
    tokens: np.memmap


class ActivationStore:
    """Read side: one store or a set of shards, addressed by global window and row index.

    Windows are numbered shard after shard. Only complete stores open unless
    allow_incomplete=True (then only the flushed windows are visible).
    """

    def __init__(self, shards: list[_Shard]):
        self.shards = shards
        first = shards[0].meta
        for s in shards[1:]:
            bad = [k for k in ("model", "hook", "d_model", "ctx", "keep_bos", "prepend_bos", "dtype")
                   if getattr(s.meta, k) != getattr(first, k)]
            if bad:
                raise StoreError(f"shards {shards[0].path} and {s.path} differ in {bad}; "
                                 "they are not parts of one dump")
        self.meta = first
        self._win_offsets = np.cumsum([0] + [s.meta.windows_done for s in shards])

    # --- shape
    @property
    def d_model(self) -> int:
        return self.meta.d_model

    @property
    def rows_per_window(self) -> int:
        return self.meta.rows_per_window

    @property
    def n_windows(self) -> int:
        return int(self._win_offsets[-1])

    @property
    def n_rows(self) -> int:
        return self.n_windows * self.rows_per_window

    @property
    def mean_norm(self) -> float:
        """Mean activation norm over the rows that are not BOS separators."""
        total = sum(s.meta.stats.get("norm_sum", 0.0) for s in self.shards)
        rows = sum(s.meta.stats.get("norm_rows", s.meta.stats.get("n_rows", 0)) for s in self.shards)
        return total / max(rows, 1)

    def __repr__(self) -> str:
        return (f"ActivationStore({self.meta.model} {self.meta.hook}, {self.n_rows} rows x {self.d_model}, "
                f"{len(self.shards)} shard(s))")

    # --- addressing
    def _locate_window(self, w: int) -> tuple[_Shard, int]:
        if not 0 <= w < self.n_windows:
            raise IndexError(f"window {w} out of range [0, {self.n_windows})")
        i = int(np.searchsorted(self._win_offsets, w, side="right") - 1)
        return self.shards[i], w - int(self._win_offsets[i])

    def window_rows(self, w: int) -> np.ndarray:
        """Activations of one window, [rows_per_window, d_model], as stored."""
        shard, lw = self._locate_window(w)
        r = self.rows_per_window
        return shard.acts[lw * r:(lw + 1) * r]

    def window_tokens(self, w: int) -> np.ndarray:
        shard, lw = self._locate_window(w)
        return shard.tokens[lw]

    def row_location(self, row: int) -> tuple[int, int]:
        """Global row -> (window, position in the window's tokens)."""
        w, i = divmod(int(row), self.rows_per_window)
        return w, i + self.meta.first_pos

    def context(self, row: int, before: int = 16, after: int = 4) -> tuple[np.ndarray, int]:
        """Tokens around a row: (token ids, index of the row's own token in them)."""
        w, pos = self.row_location(row)
        toks = self.window_tokens(w)
        lo = max(0, pos - before)
        return np.asarray(toks[lo:pos + after + 1]), pos - lo

    def read_windows(self, windows: np.ndarray, skip_bos: bool = False) -> np.ndarray:
        """Rows of the given windows, in that order, as float32 [len(windows) * rpw, d]; with
        skip_bos, without the rows of BOS tokens inside the windows (document separators)."""
        if not len(windows):
            return np.zeros((0, self.d_model), np.float32)
        rows = np.concatenate([np.asarray(self.window_rows(int(w)), dtype=np.float32) for w in windows])
        return rows[self.not_bos(windows)] if skip_bos else rows

    def not_bos(self, windows: np.ndarray) -> np.ndarray:
        """Mask over the rows of these windows: True where the row's token is not BOS."""
        if not len(windows):
            return np.zeros(0, bool)
        return not_bos_mask(np.stack([np.asarray(self.window_tokens(int(w))) for w in windows]), self.meta)

    # --- splits and batches
    def heldout_windows(self) -> np.ndarray | None:
        """Windows packed from the corpus's held-out documents (global indices), or None when the
        dump did not record a held-out range (meta.corpus["eval_windows"])."""
        ranges = [s.meta.corpus.get("eval_windows") for s in self.shards]
        if any(r is None for r in ranges):
            return None
        out = []
        for s, (e0, e1), off in zip(self.shards, ranges, self._win_offsets):
            first = int(s.meta.shard.get("first_window", 0))  # this shard's first window in the dump
            local = np.arange(s.meta.windows_done) + first
            out.append(np.flatnonzero((local >= e0) & (local < e1)) + off)
        return np.concatenate(out).astype(np.int64)

    def split(self, eval_fraction: float = 0.05, seed: int = 0, by: str = "auto") -> tuple[np.ndarray, np.ndarray]:
        """(train windows, eval windows).

        by="corpus": the eval windows are those packed from the corpus's held-out documents, so no
        eval window shares a document with a training window (eval_fraction and seed are unused:
        the dump fixed them). by="random": a fixed random subset of eval_fraction of the windows.
        by="auto" (default): "corpus" when the store records a non-empty held-out range, else "random"
        (a dump with --eval_fraction 0 held no documents out).
        """
        if by not in ("auto", "corpus", "random"):
            raise StoreError(f"split by must be auto, corpus or random, got {by!r}")
        if by != "random":
            held = self.heldout_windows()
            if held is not None and (len(held) or by == "corpus"):
                mask = np.zeros(self.n_windows, bool)
                mask[held] = True
                return np.flatnonzero(~mask), np.flatnonzero(mask)
            if by == "corpus":
                raise StoreError(f"{self.shards[0].path} records no held-out documents (meta.corpus.eval_windows); "
                                 "use split(by='random')")
        if not 0.0 <= eval_fraction < 1.0:
            raise StoreError(f"eval_fraction must be in [0, 1), got {eval_fraction}")
        perm = np.random.default_rng(seed).permutation(self.n_windows)
        n_eval = int(round(eval_fraction * self.n_windows))
        if eval_fraction > 0 and n_eval == 0 and self.n_windows > 1:
            n_eval = 1
        return np.sort(perm[n_eval:]), np.sort(perm[:n_eval])

    def batches(self, batch_size: int, **kwargs) -> Iterator[np.ndarray]:
        """Shuffled float32 batches [batch_size, d_model]: see shuffled_batches."""
        return shuffled_batches(self, batch_size, **kwargs)


def shuffled_batches(store, batch_size: int, windows: np.ndarray | None = None, seed: int = 0,
                     buffer_rows: int = 1 << 17, chunk_windows: int = 16, loop: bool = True, start_batch: int = 0,
                     skip_bos: bool = False, row_filter=None) -> Iterator[np.ndarray]:
    """Shuffled float32 batches [batch_size, d_model] from the given windows of a store (anything
    with n_windows, rows_per_window, read_windows and not_bos: a store or a paired store).

    Chunked shuffle in bounded memory: chunks of `chunk_windows` consecutive windows are
    visited in a random order, gathered into buffers of about `buffer_rows` rows, and each
    buffer is shuffled and cut into batches (its remainder, < batch_size rows, is dropped;
    the grouping changes every epoch). Every buffer has its own generator seeded by
    (seed, epoch, buffer), so `start_batch` skips ahead: a resumed training run sees exactly the
    batches an uninterrupted one would. skip_bos leaves out the rows of BOS tokens inside windows
    (counted from the small tokens file, so skipping ahead reads no activations); row_filter
    (rows -> bool mask) leaves out more rows by their values (skipping ahead then reads the
    skipped buffers to count them).
    """
    windows = np.arange(store.n_windows) if windows is None else np.asarray(windows)
    rpw = store.rows_per_window
    chunk_windows = max(1, min(chunk_windows, max(1, buffer_rows // rpw)))
    chunks_per_buffer = max(1, buffer_rows // (chunk_windows * rpw))
    if min(len(windows), chunk_windows * chunks_per_buffer) * rpw < batch_size:
        raise StoreError(f"a buffer holds {min(len(windows), chunk_windows * chunks_per_buffer) * rpw} "
                         f"rows of this split, fewer than one batch of {batch_size}; "
                         "dump more tokens, raise buffer_rows or use a smaller --batch")
    chunks = [windows[i:i + chunk_windows] for i in range(0, len(windows), chunk_windows)]
    produced, epoch = 0, 0
    while True:
        order = np.random.default_rng([seed, epoch]).permutation(len(chunks))
        for b, b0 in enumerate(range(0, len(order), chunks_per_buffer)):
            group = [chunks[c] for c in order[b0:b0 + chunks_per_buffer]]
            keep = np.concatenate([store.not_bos(g) if skip_bos else np.ones(len(g) * rpw, bool) for g in group])
            buf = None
            if row_filter is not None:
                buf = np.concatenate([store.read_windows(g) for g in group])
                keep &= row_filter(buf)
            n_batches = int(keep.sum()) // batch_size
            if produced + n_batches <= start_batch:
                produced += n_batches
                continue
            perm = np.random.default_rng([seed, epoch, b]).permutation(int(keep.sum()))
            buf = np.concatenate([store.read_windows(g) for g in group]) if buf is None else buf
            buf = buf[keep][perm]
            for i in range(n_batches):
                if produced >= start_batch:
                    yield buf[i * batch_size:(i + 1) * batch_size]
                produced += 1
        epoch += 1
        if not loop:
            return


def _is_store(path: Path) -> bool:
    return (path / META_FILE).exists()


def open_store(path: str | Path, allow_incomplete: bool = False) -> ActivationStore:
    """Open a store directory, or a directory whose subdirectories are the shards of one dump."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"no activation store at {path}; create one with `mechinterp dump`")
    dirs = [path] if _is_store(path) else sorted(p for p in path.iterdir() if p.is_dir() and _is_store(p))
    if not dirs:
        raise StoreError(f"{path} is not an activation store (no {META_FILE}, no shard directories); "
                         "create one with `mechinterp dump`")
    shards = []
    metas = {d: read_meta(d) for d in dirs}
    if len(dirs) > 1 and any(m.shard.get("world_size", 1) == 1 for m in metas.values()):
        hooks = sorted({m.hook for m in metas.values()})
        raise StoreError(f"{path} holds {len(dirs)} stores ({', '.join(hooks[:4])}{' ...' if len(hooks) > 4 else ''}), "
                         "not one: pass one of them (for MLP transcoders, pass this folder to "
                         "`mechinterp train-transcoders --acts`)")
    dirs.sort(key=lambda d: (metas[d].shard.get("rank", 0), str(d)))  # rank10 after rank9
    for d in dirs:
        meta = metas[d]
        if not meta.complete and not allow_incomplete:
            raise StoreError(f"{d} is incomplete ({meta.windows_done}/{meta.n_windows} windows); "
                             "re-run the same dump command to resume it")
        acts = open_array(d / ACTS_FILE, "r", (meta.n_rows, meta.d_model), meta.dtype)
        tokens = open_array(d / TOKENS_FILE, "r", (meta.n_windows, meta.ctx), "int32")
        shards.append(_Shard(d, meta, acts, tokens))
    world = {s.meta.shard.get("world_size", 1) for s in shards}
    if len(world) == 1 and (ws := world.pop()) > 1 and len(shards) != ws:
        raise StoreError(f"{path} holds {len(shards)} of {ws} shards of a distributed dump; "
                         "re-run the missing ranks")
    return ActivationStore(shards)
