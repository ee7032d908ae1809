"""Content fingerprints of what a stage read, so a reuse or a resume can tell that an input changed
since: weights retrained in place, a store re-dumped, a sequence file reordered.

A file's fingerprint is its size and a hash of its content: all of it up to FULL bytes, above that
its first and last BLOCK bytes and SAMPLES blocks spread evenly between them (a few MB read from a
file of any size; retraining or re-dumping rewrites every block, so a sample sees it). A folder's
is the fingerprint of its files' relative names and fingerprints. Readers record them under an
input's name and compare with `stale(recorded, current)`, which says what changed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

FULL = 8 << 20
BLOCK = 256 << 10
SAMPLES = 14

LOCK_SUFFIX = ".lock"
"""Lock files (store_writer.FolderLock) hold a writer's pid, not data."""


def _file(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    size = path.stat().st_size
    h.update(str(size).encode())
    with open(path, "rb") as f:
        if size <= FULL:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        else:
            step = (size - BLOCK) // (SAMPLES + 1)
            for offset in [0, *(step * i for i in range(1, SAMPLES + 1)), size - BLOCK]:
                f.seek(offset)
                h.update(f.read(BLOCK))
    return h.hexdigest()


def fingerprint(path: str | Path, only: tuple[str, ...] = ()) -> str:
    """Fingerprint of a file, or of a folder's files (recursively; `only`: just these names in it)."""
    path = Path(path)
    if path.is_file():
        return _file(path)
    if not path.is_dir():
        return "missing"
    h = hashlib.blake2b(digest_size=16)
    files = [path / n for n in only] if only else sorted(p for p in path.rglob("*") if p.is_file())
    for p in files:
        if p.suffix == LOCK_SUFFIX:
            continue
        h.update(f"{p.relative_to(path)}={_file(p) if p.is_file() else 'missing'};".encode())
    return h.hexdigest()


def fingerprints(inputs: dict[str, str | Path]) -> dict[str, str]:
    """{input name: fingerprint} of named files or folders."""
    return {name: fingerprint(p) for name, p in inputs.items()}


def combine(parts: dict[str, str]) -> str:
    """One fingerprint of several named ones."""
    return hashlib.blake2b(repr(sorted(parts.items())).encode(), digest_size=16).hexdigest()


def changed(recorded: dict | None, current: dict[str, str]) -> list[str]:
    """Names of the inputs whose fingerprint differs from the recorded one (every name, when
    nothing was recorded)."""
    recorded = recorded or {}
    return [name for name, fp in current.items() if recorded.get(name) != fp]


def stale(recorded: dict | None, current: dict[str, str]) -> str | None:
    """None when every input is as recorded; else why not, for a message ("the store changed")."""
    names = changed(recorded, current)
    if not names:
        return None
    if not recorded:
        return "no record of its inputs was kept"
    return (names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]) + " changed"
