"""The layout of `runs/`: where each stage writes when no --out is given. Only the command knows it."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from mechinterp.formats.store import META_FILE

RUNS = "runs"
"""Default parent of every stage's outputs (relative to the working directory)."""


def runs_root(runs_dir: str | Path | None = None) -> Path:
    return Path(runs_dir or RUNS)


def under_runs(*parts: str) -> str:
    """A default output folder: runs/<parts>."""
    return str(Path(RUNS, *parts))


def model_dir_name(model: str) -> str:
    """A model name as one folder name: a local model directory by its own name, owner/name -> owner--name."""
    if Path(model).exists():
        model = Path(model).resolve().name
    return re.sub(r"[^A-Za-z0-9._-]+", "--", model).strip("-")


def default_store_dir(model: str, hook: str, runs_dir: str | Path | None = None) -> Path:
    """Where a dump writes when no --out is given: runs/acts/<model>/<hook>."""
    return runs_root(runs_dir) / "acts" / model_dir_name(model) / hook


def stage_dir(stage: str, name: str, runs_dir: str | Path | None = None) -> Path:
    """runs/<stage>/<name>: the default output folder of a stage (name: a model or an SAE)."""
    return runs_root(runs_dir) / stage / model_dir_name(name)


def single_store(model: str, runs_dir: str | Path | None = None) -> Path:
    """The one activation store under runs/acts/<model>/ (what `mechinterp dump` writes with its
    defaults), for stages whose --acts is not given."""
    root = runs_root(runs_dir) / "acts" / model_dir_name(model)
    stores = sorted(p.parent for p in root.glob(f"*/{META_FILE}"))
    if not stores:
        raise FileNotFoundError(f"no activation store under {root}/; run `mechinterp dump` first or pass --acts DIR")
    if len(stores) > 1:
        raise ValueError(f"several activation stores under {root}/ ({', '.join(p.name for p in stores)}); "
                         "pass --acts with the one to use")
    return stores[0]


def text_dir_name(text: str, words: int = 40) -> str:
    """A folder name for a text input (a prompt): its first characters as a slug, then a short hash
    of the whole text, so two texts never share a folder (non-ASCII ones included)."""
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:words] or "prompt"
    return f"{slug}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
