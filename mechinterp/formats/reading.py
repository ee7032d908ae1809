"""Reading the lab's JSON and .npz files so that a missing, damaged or wrongly shaped one is one
error naming the file and the fix, never a library traceback. Every format owner reads through here."""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path

import numpy as np

from mechinterp.formats.errors import LabError

DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError)
"""What numpy raises for a cut, overwritten or foreign .npz (a missing array is a KeyError)."""


def read_json(path: str | Path, fix: str, kind: type = dict, error: type[LabError] = LabError):
    """The JSON value in `path`, which must be a `kind`; `fix` says what to do otherwise."""
    path = Path(path)
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        raise error(f"{path} is missing; {fix}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(f"{path} is not valid JSON ({e}); {fix}") from None
    if not isinstance(value, kind):
        raise error(f"{path} holds a JSON {type(value).__name__}, not {'an object' if kind is dict else kind.__name__}; "
                    f"{fix}")
    return value


def read_npz(path: str | Path, names: tuple[str, ...] | None, fix: str,
             error: type[LabError] = LabError) -> dict[str, np.ndarray]:
    """The arrays `names` (None: all) of an .npz, read into memory."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in (z.files if names is None else names)}
    except FileNotFoundError:
        raise error(f"{path} is missing; {fix}") from None
    except DAMAGED as e:
        why = f"no array {e}" if isinstance(e, KeyError) else f"{type(e).__name__}: {e}"
        raise error(f"{path} is damaged ({why}); {fix}") from None


def check_finite(arrays: dict[str, np.ndarray], path: str | Path, fix: str, error: type[LabError] = LabError) -> None:
    """Refuse arrays holding NaN or infinity."""
    for name, a in arrays.items():
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            bad = int((~np.isfinite(a)).sum())
            raise error(f"{path}: {name} holds {bad} NaN or infinite value{'s' * (bad > 1)}; {fix}")
