"""A file written whole or not at all (stdlib only). The data goes to a temporary file beside the
target, which replaces the target in one rename; a write that fails (a full disk: OSError ENOSPC,
an interrupt) removes the temporary file and leaves the target as it was.

    atomic_write_text(path, text); atomic_write_bytes(path, data)
    with atomic_path(path) as tmp:      # for writers that take a path (np.savez, safetensors' save_file)
        np.savez(tmp, **arrays)

The temporary name starts with a dot and keeps the target's suffix (`.graph.npz.<pid>.tmp.npz`):
np.savez adds `.npz` to a name without it, and a glob such as `layer_*.safetensors` does not see it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_MARK = ".tmp"
"""In every temporary file's name, before the target's suffix."""


def temporary_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}{TMP_MARK}{path.suffix}")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path to write to; it replaces `path` when the block ends, and is removed when the
    block (or the rename) raises."""
    path = Path(path)
    tmp = temporary_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
    return Path(path)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    return atomic_write_bytes(path, text.encode(encoding))
