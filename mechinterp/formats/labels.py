"""Feature labels on disk (numpy only): a short name and its evidence for every latent of an export.

An export's labels live beside it, EXPORT/labels.json:

  {"format": 1, "explainer": "offline" | "llm:<model or url>", "d_sae": S, "source": {...},
   "labels": [{"i": latent, "label": "…", "kind": "token" | "after" | "position" | "mixed" | "dead" | "concept",
               "tokens": [[token id, text, firings, precision, lift], …],   the input side
               "after":  [[token id, text, firings, precision, lift], …],   the token before
               "positions": [first, last] | null,                           window positions
               "promotes": [text, …], "suppresses": [text, …],              the output side
               "expected": {"tpr": …, "fpr": …},                            the rule's estimate
               "error": "…"}, …]}                                           (an explainer's failure)

Only "i" and "label" are required; other explainers (an LLM) write free text and no rule. Labels
are written whole (atomically); a run that is interrupted keeps what an earlier run wrote.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from mechinterp.formats.atomic import atomic_write_text
from mechinterp.formats.errors import LabError
from mechinterp.formats.reading import read_json

LABELS = "labels.json"
FORMAT = 1
KINDS = ("token", "after", "position", "mixed", "dead", "concept")


class LabelError(LabError):
    """A labels file that is missing or damaged, or labels that cannot be made."""


def labels_path(export: str | Path, explainer: str = "offline") -> Path:
    """EXPORT/labels.json for the offline labels; EXPORT/labels.<name>.json for another explainer's."""
    export = Path(export)
    if explainer == "offline":
        return export / LABELS
    safe = re.sub(r"[^A-Za-z0-9.-]+", "_", re.sub(r"^\w+://", "", explainer)).strip("_")[-60:]
    return export / f"labels.{safe}.json"


def save_labels(path: str | Path, labels: list[dict], explainer: str, d_sae: int, source: dict | None = None) -> Path:
    for lab in labels:
        if not isinstance(lab.get("i"), int) or not isinstance(lab.get("label"), str):
            raise LabelError(f"a label needs an int 'i' and a str 'label', got {lab!r:.120}")
    doc = {"format": FORMAT, "explainer": explainer, "d_sae": int(d_sae), "source": source or {},
           "labels": sorted(labels, key=lambda lab: lab["i"])}
    path = Path(path)
    atomic_write_text(path, json.dumps(doc, ensure_ascii=False, indent=1))
    return path


def load_labels(path: str | Path) -> dict:
    """The labels document; `path` is a labels file or an export folder (its offline labels)."""
    path = Path(path)
    if path.is_dir():
        path = path / LABELS
    if not path.exists():
        raise LabelError(f"no labels at {path}; make them with `mechinterp label --sae {path.parent}`")
    doc = read_json(path, f"delete {path} and re-run mechinterp label", error=LabelError)
    if doc.get("format") != FORMAT or not isinstance(doc.get("labels"), list):
        raise LabelError(f"{path} is not a labels file of format {FORMAT}; re-run mechinterp label")
    return doc


def label_texts(path: str | Path, d_sae: int | None = None) -> list[str]:
    """One string per latent ("" where a latent has no label)."""
    doc = load_labels(path)
    n = d_sae if d_sae is not None else int(doc["d_sae"])
    out = [""] * n
    for lab in doc["labels"]:
        if 0 <= lab["i"] < n:
            out[lab["i"]] = lab["label"]
    return out

