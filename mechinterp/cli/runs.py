"""The layout of `runs/`: where each stage writes when no --out is given. Only the command knows it."""

from __future__ import annotations

import hashlib
import json
import re
from contextlib import contextmanager
from pathlib import Path

from mechinterp.formats.atomic import atomic_write_text
from mechinterp.formats.reading import read_json
from mechinterp.formats.store import META_FILE
from mechinterp.formats.store_writer import FolderLock

RUNS = "runs"
"""Default parent of every stage's outputs (relative to the working directory)."""
CLAIM = "inputs.json"
"""In a stage's output folder: the inputs whose results it holds (see `claimed`)."""


def runs_root(runs_dir: str | Path | None = None) -> Path:
    return Path(runs_dir or RUNS)


def under_runs(*parts: str) -> str:
    """A default output folder: runs/<parts>."""
    return str(Path(RUNS, *parts))


def _slug(name: str, sep: str = "-") -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", sep, name).strip("-")


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def identity(value: str) -> str:
    """What names an input: an existing path by where it is (absolute), anything else as given."""
    try:
        path = Path(value).expanduser()
        return str(path.resolve()) if path.exists() else value
    except (OSError, ValueError):  # a text too long, or with a NUL, to be a path
        return value


def model_dir_name(model: str) -> str:
    """A model name as one folder name: owner/name -> owner--name; a local model directory by its own
    name and a short hash of where it is (two folders of one name never share a default folder)."""
    if Path(model).exists():
        return input_name(model)
    return _slug(model, "--")


def input_name(path: str) -> str:
    """A folder name for an input given by path: its name (an SAE export by its run's, <run>/sae) and
    a short hash of where it is."""
    p = Path(identity(path))
    name = p.parent.name if p.name == "sae" else p.name
    return f"{_slug(name) or 'input'}-{_short_hash(str(p))}"


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


def text_dir_name(text: str, *others: str, words: int = 40) -> str:
    """A folder name for a text input (a prompt): its first characters as a slug, then a short hash
    of the whole text and of the `others` it is read with (identities of paths), so two inputs never
    share a folder (non-ASCII texts included)."""
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:words] or "prompt"
    return f"{slug}-{_short_hash(chr(0).join([text, *map(identity, others)]))}"


def saes_name(saes: list[str]) -> str:
    """A folder name for a list of SAEs: how many, and a short hash of which."""
    return f"{len(saes)}_saes-{_short_hash(chr(0).join(identity(s) for s in saes))}"


def sequences_name(spec: str) -> str:
    """A folder name for a sequence set: a packaged set by its name, a file by input_name."""
    return input_name(spec) if Path(spec).expanduser().exists() else _slug(spec)


@contextmanager
def claimed(out: str | Path, stage: str, **inputs: str):
    """Hold `out` while `stage` writes its results for `inputs` (flag name -> value) into it: refused
    while another process writes there (with its pid), and when `out` holds the results of other
    inputs; the inputs are recorded in out/inputs.json when the work ends well."""
    out, current = Path(out), {f"--{k}": identity(str(v)) for k, v in inputs.items()}
    with FolderLock(out, f"another {stage}"):
        held = read_json(out / CLAIM, "delete it if the folder's results are no longer wanted") \
            if (out / CLAIM).exists() else {}
        for flag, value in current.items():
            if flag in held and held[flag] != value:
                raise ValueError(f"{out} holds the results of another {flag} ({held[flag]}); pass another --out, "
                                 "or delete that folder")
        yield
        if current:
            atomic_write_text(out / CLAIM, json.dumps({**held, **current}, indent=1))
