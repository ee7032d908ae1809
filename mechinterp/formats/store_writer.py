"""Writing an activation store (the format is mechinterp/formats/store.py's): preallocated memmaps filled
window by window, flushed with their pages released, `complete` set last; resumable."""

from __future__ import annotations

import mmap
import os
import shutil
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap

from mechinterp.formats.errors import LabError
from mechinterp.formats.store import (
    ACTS_FILE,
    META_FILE,
    TOKENS_FILE,
    StoreError,
    StoreMeta,
    not_bos_mask,
    open_array,
    read_meta,
    write_meta,
)


class StoreWriter:
    """Writes windows of activations into a store, resuming one left incomplete.

    Usage: w = StoreWriter.create_or_resume(path, meta); for batch: w.write(acts, tokens); w.finish().
    `w.windows_done` tells a resumed dump where to start.
    """

    def __init__(self, path: Path, meta: StoreMeta, acts: np.memmap, tokens: np.memmap):
        self.path, self.meta, self.acts, self.tokens = path, meta, acts, tokens
        self._norm_sum = float(meta.stats.get("norm_sum", 0.0))
        self._sq_norm_sum = float(meta.stats.get("sq_norm_sum", 0.0))
        self._norm_rows = int(meta.stats.get("norm_rows", 0))

    @property
    def windows_done(self) -> int:
        return self.meta.windows_done

    @classmethod
    def create_or_resume(cls, path: str | Path, meta: StoreMeta) -> StoreWriter:
        path = Path(path)
        if (path / META_FILE).exists():
            old = read_meta(path)
            bad = old.mismatches(meta)
            if bad:
                raise StoreError(f"{path} holds a different store ({'; '.join(bad)}); "
                                 "choose another --out or delete it")
            if old.complete:
                raise StoreError(f"{path} is already complete ({old.n_rows} rows); nothing to do")
            acts = open_array(path / ACTS_FILE, "r+", (old.n_rows, old.d_model), old.dtype)
            tokens = open_array(path / TOKENS_FILE, "r+", (old.n_windows, old.ctx), "int32")
            return cls(path, old, acts, tokens)
        path.mkdir(parents=True, exist_ok=True)
        check_disk(path, [meta])
        acts = open_memmap(path / ACTS_FILE, "w+", np.dtype(meta.dtype), (meta.n_rows, meta.d_model))
        tokens = open_memmap(path / TOKENS_FILE, "w+", np.int32, (meta.n_windows, meta.ctx))
        _reserve(path / ACTS_FILE)
        _reserve(path / TOKENS_FILE)
        meta.windows_done, meta.complete = 0, False
        write_meta(path, meta)
        return cls(path, meta, acts, tokens)

    def write(self, acts: np.ndarray, tokens: np.ndarray) -> None:
        """acts [n_win, ctx, d] or [n_win, rows_per_window, d] (float32), tokens [n_win, ctx]."""
        m = self.meta
        n = tokens.shape[0]
        if acts.shape[1] == m.ctx:
            acts = acts[:, m.first_pos:]
        if acts.shape[1:] != (m.rows_per_window, m.d_model) or tokens.shape[1] != m.ctx:
            raise StoreError(f"batch of shape {acts.shape} / {tokens.shape} does not fit store "
                             f"rows_per_window={m.rows_per_window}, d_model={m.d_model}, ctx={m.ctx}")
        if m.windows_done + n > m.n_windows:
            raise StoreError(f"store sized for {m.n_windows} windows, got {m.windows_done + n}")
        rows = np.ascontiguousarray(acts.reshape(-1, m.d_model), dtype=np.float32)
        if m.dtype == "float16":
            overflow = int((np.abs(rows) > np.finfo(np.float16).max).any(axis=1).sum())
            if overflow:
                raise StoreError(f"{overflow} rows of this batch overflow float16 at {m.hook} "
                                 "(values > 65504); dump with --dtype float32")
        if not np.isfinite(rows).all():
            raise StoreError(f"non-finite activations at {m.hook}; check the model and device")
        r0 = m.windows_done * m.rows_per_window
        self.acts[r0:r0 + rows.shape[0]] = rows
        self.tokens[m.windows_done:m.windows_done + n] = tokens
        # BOS tokens inside windows (document separators) carry attention-sink activations with
        # norms ~100x the rest; the normalisation statistics leave them out
        norms = np.linalg.norm(rows[not_bos_mask(tokens, m)].astype(np.float64), axis=1)
        self._norm_sum += float(norms.sum())
        self._sq_norm_sum += float((norms ** 2).sum())
        self._norm_rows += len(norms)
        m.windows_done += n

    def flush(self) -> None:
        """Data first, then meta: a crash between the two only loses the unflushed windows."""
        self.acts.flush()
        self.tokens.flush()
        _release(self.acts)  # written pages would otherwise stay in this process's RSS
        _release(self.tokens)
        m = self.meta
        rows = m.windows_done * m.rows_per_window
        k = max(self._norm_rows, 1)
        m.stats.update(norm_sum=self._norm_sum, sq_norm_sum=self._sq_norm_sum, n_rows=rows,
                       norm_rows=self._norm_rows, bos_rows=rows - self._norm_rows,
                       mean_norm=self._norm_sum / k, rms_norm=float(np.sqrt(self._sq_norm_sum / k)))
        write_meta(self.path, m)

    def finish(self) -> StoreMeta:
        if self.meta.windows_done != self.meta.n_windows:
            raise StoreError(f"finish() after {self.meta.windows_done} of {self.meta.n_windows} windows")
        self.flush()
        self.meta.complete = True
        write_meta(self.path, self.meta)
        return self.meta


def store_bytes(meta: StoreMeta) -> int:
    return meta.n_rows * meta.d_model * np.dtype(meta.dtype).itemsize + meta.n_windows * meta.ctx * 4


def disk_plan(path: Path, metas: list[StoreMeta]) -> dict:
    """What stores written together need: bytes in all, bytes per token (row), and the free space."""
    needed = sum(store_bytes(m) for m in metas)
    probe = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    rows = max(metas[0].n_rows, 1)
    return {"stores": len(metas), "bytes": needed, "per_token": needed / rows, "rows": rows,
            "free": shutil.disk_usage(probe).free}


def check_disk(path: Path, metas: list[StoreMeta]) -> None:
    """Refuse, before anything is allocated, stores that do not fit together on path's disk."""
    plan = disk_plan(path, metas)
    if plan["bytes"] > plan["free"]:
        what = "the store needs" if len(metas) == 1 else f"the {len(metas)} stores need"
        fit = int(plan["free"] / plan["per_token"])
        raise StoreError(f"not enough disk space in {path}: {what} {plan['bytes'] / 1e6:.1f} MB "
                         f"({plan['per_token'] / 1e3:.1f} KB per token), {plan['free'] / 1e6:.1f} MB free, room for "
                         f"about {fit:,} tokens; free some space or pass a smaller --n_tokens")


class FolderLock:
    """An exclusive lock on an output folder while one process writes it (flock: released by the OS
    when the process dies, so a killed run never leaves a stale lock). The lock file holds the
    writer's pid, for the message a second writer gets, and goes when the run ends (one a killed run
    left behind is taken over: the OS released its lock). A writer refused, here or by a later check
    while it holds the lock (another store of the same dump held elsewhere, a store that does not
    match), leaves the lock file as it found it: its bytes, its times, or no file."""

    NAME = "writer.lock"
    ERROR: type[Exception] = LabError

    def __init__(self, path: str | Path, what: str = "another run"):
        self.path, self.what, self.file = Path(path), what, None
        self.made_dir = not self.path.exists()
        self.found: tuple[bytes, int, int] | None = None
        """The lock file as this writer found it (bytes, atime_ns, mtime_ns), None when there was none."""

    def __enter__(self) -> FolderLock:
        import fcntl

        self.path.mkdir(parents=True, exist_ok=True)
        lock = self.path / self.NAME
        while True:
            try:
                st = lock.stat()
                self.found = (lock.read_bytes(), st.st_atime_ns, st.st_mtime_ns)
            except FileNotFoundError:
                self.found = None
            self.file = open(lock, "a+")  # neither truncates nor writes: a refused writer changes no byte
            try:
                fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.file.seek(0)
                holder = self.file.read().strip() or "unknown"
                self.file.close()
                raise self.ERROR(f"{self.path} is being written by {self.what} (pid {holder}); wait for it to "
                                 "finish, or choose another --out") from None
            if _same_file(self.file, lock):
                break
            self.file.close()  # its last holder removed it between our open and our flock: lock the new one
        self.file.truncate(0)
        self.file.write(str(os.getpid()))
        self.file.flush()
        return self

    def __exit__(self, exc_type, *exc) -> None:
        lock = self.path / self.NAME
        try:
            if self.made_dir and [p.name for p in self.path.iterdir()] == [self.NAME]:
                shutil.rmtree(self.path)  # nothing written beside the lock: no trace left
            elif exc_type is not None:
                self._restore(lock)
            elif self.NAME != StoreLock.NAME:
                lock.unlink(missing_ok=True)
        finally:
            self.file.close()  # after the unlink: the lock is held until its file is gone

    def _restore(self, lock: Path) -> None:
        """The lock file as this writer found it (a run that failed or was refused leaves no pid of its own)."""
        if self.found is None:
            lock.unlink(missing_ok=True)
            return
        data, atime, mtime = self.found
        fd = self.file.fileno()
        os.ftruncate(fd, 0)
        os.write(fd, data)  # the file is in append mode: at offset 0 after the truncate
        os.utime(fd, ns=(atime, mtime))


def _same_file(file, path: Path) -> bool:
    try:
        a, b = os.fstat(file.fileno()), path.stat()
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


class StoreLock(FolderLock):
    """The dump's lock on a store directory (its file stays with the store)."""

    NAME = "dump.lock"
    ERROR = StoreError

    def __init__(self, path: Path):
        super().__init__(path, "another dump")


def _release(arr: np.memmap) -> None:
    """Drop the (flushed) pages of a shared file mapping from this process; the data stays in the
    file and the page cache, and is read back on the next access."""
    mm = getattr(arr, "_mmap", None)
    if mm is not None and hasattr(mm, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        try:
            mm.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):
            pass


def _reserve(path: Path) -> None:
    """Allocate the file's blocks now, so a full disk fails here with ENOSPC rather than
    as a SIGBUS in the middle of a memmap write."""
    size = path.stat().st_size
    try:
        with open(path, "r+b") as f:
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(f.fileno(), 0, size)
    except OSError as e:
        path.unlink(missing_ok=True)
        raise StoreError(f"cannot allocate {size / 1e6:.1f} MB for {path}: {e.strerror}; "
                         "free some disk space or pass a smaller --n_tokens") from e


