"""The two defaults every floor reads: the embedded model's name and the cache root."""

from __future__ import annotations

import os
from pathlib import Path

from mechinterp.formats.errors import LabError

DEFAULT_MODEL = "smollm2-135m-q4"
"""The embedded default model (SmolLM2-135M-Instruct, GGUF shipped as a PyPI wheel)."""


def cache_root() -> Path:
    """$MECHINTERP_CACHE, or ~/.cache/mechinterp when it is unset or empty: converted models,
    compiled CPU kernels, downloaded corpora."""
    return Path(os.environ.get("MECHINTERP_CACHE") or Path.home() / ".cache" / "mechinterp")


def given_out(out: str | None, owner: str) -> Path:
    """A config's output folder, which the caller must name (the command derives one under runs/)."""
    if not out:
        raise LabError(f"{owner}.out is empty: name an output folder")
    return Path(out)
