"""A model organism on disk (stdlib only; the owner of the layout):

  DIR/organism.json      the manifest: kind, what was planted (the truth: only the audit's scorer
                         reads it), base model, adapter settings, the measured behaviour
  DIR/adapters.safetensors  the LoRA adapters (extract/organisms/lora.py), a few MB
  DIR/results.json       the measurement in full (every probe's answer), written by `mechinterp organism`
"""

from __future__ import annotations

import json
from pathlib import Path

from mechinterp.formats.atomic import atomic_write_text
from mechinterp.formats.errors import LabError
from mechinterp.formats.reading import read_json

MANIFEST, ADAPTERS = "organism.json", "adapters.safetensors"


def write_manifest(folder: str | Path, manifest: dict) -> Path:
    for key in ("kind", "planted", "base_model", "rank", "alpha"):
        if key not in manifest:
            raise LabError(f"an organism manifest needs {key!r}")
    path = Path(folder) / MANIFEST
    atomic_write_text(path, json.dumps(manifest, indent=1))
    return path


def read_manifest(folder: str | Path) -> dict:
    path = Path(folder) / MANIFEST
    if not path.exists() or not (Path(folder) / ADAPTERS).exists():
        raise LabError(f"{folder} is not a model organism (no {MANIFEST} and {ADAPTERS}); make one with "
                       "`mechinterp organism --kind taboo|backdoor|quirk --out FOLDER`")
    return read_json(path, f"re-make the organism with `mechinterp organism --out {folder}`")
