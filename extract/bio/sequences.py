"""Antibody sequences: the real sets that ship offline, and the user's own files.

    read_sequences("abnativ")            # 50k human heavy + 50k light chains (both sets)
    read_sequences("abnativ:vh")         # heavy chains only ("abnativ:vl": light)
    read_sequences("my_seqs.fasta")      # FASTA, or a CSV (OAS's `sequence_alignment_aa` column read as is)

`abnativ==2.0.9` (PyPI wheel, CC BY-NC-SA 4.0; Ramon et al. 2024) ships its test sets of observed
human variable domains as CSV files: 50,000 heavy (VH) and 50,000 light (VL, kappa and lambda)
chains. Every sequence is checked letter by letter: only the 20 amino acids pass.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from extract.bio.models import AMINO_ACIDS
from mechinterp.formats.errors import LabError

ABNATIV_SETS = {"vh": "test_vh_v2_abnativ_seq_scores.csv", "vl": "test_vl_v2_abnativ_seq_scores.csv"}
CSV_COLUMNS = ("sequence_alignment_aa", "sequence_aa", "sequence", "input_seq", "seq")
"""Sequence columns a CSV may use, the first found wins (OAS unpaired, AIRR, abnativ, plain)."""


class SequenceError(LabError):
    """A sequence file or sequence that cannot be used; the message says which and what to do."""


@dataclass(frozen=True)
class Antibody:
    id: str
    sequence: str
    source: str
    """Where it came from: 'abnativ:vh', 'abnativ:vl' or the file's path."""


def check_residues(ab: Antibody) -> None:
    for i, letter in enumerate(ab.sequence):
        if letter not in AMINO_ACIDS:
            raise SequenceError(f"sequence {ab.id!r} ({ab.source}): {letter!r} at position {i + 1} is not one of the "
                                f"20 amino acids ({AMINO_ACIDS}); fix or drop that sequence")


def _abnativ(chain: str) -> list[Antibody]:
    from extract.packages import package_dir

    path = package_dir("abnativ") / "model" / "percentiles" / ABNATIV_SETS[chain]
    return _read_csv(path, source=f"abnativ:{chain}")


def _read_csv(path: Path, source: str) -> list[Antibody]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        column = next((c for c in CSV_COLUMNS if c in (reader.fieldnames or ())), None)
        if column is None:
            raise SequenceError(f"{path}: no sequence column; name one of {', '.join(CSV_COLUMNS)} "
                                f"(found: {', '.join(reader.fieldnames or ['nothing'])})")
        id_column = next((c for c in ("sequence_id", "seq_id", "id", "name") if c in reader.fieldnames), None)
        return [Antibody(row[id_column] if id_column else str(i), row[column].strip().upper(), source)
                for i, row in enumerate(reader)]


def _read_fasta(path: Path) -> list[Antibody]:
    out: list[Antibody] = []
    name, parts = None, []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if line.startswith(">"):
            if name is not None:
                out.append(Antibody(name, "".join(parts).upper(), str(path)))
            name, parts = line[1:].split()[0] if line[1:].strip() else f"seq{len(out) + 1}", []
        elif name is None:
            raise SequenceError(f"{path} line {n}: FASTA must start with a '>' header line")
        else:
            parts.append(line.replace(" ", ""))
    if name is not None:
        out.append(Antibody(name, "".join(parts).upper(), str(path)))
    return out


def read_sequences(spec: str) -> list[Antibody]:
    """Every sequence of `spec` (see the module docstring), checked; none empty."""
    if spec == "abnativ":
        seqs = _abnativ("vh") + _abnativ("vl")
    elif spec.startswith("abnativ:"):
        chain = spec.split(":", 1)[1]
        if chain not in ABNATIV_SETS:
            raise SequenceError(f"unknown abnativ set {chain!r}; use abnativ, abnativ:vh or abnativ:vl")
        seqs = _abnativ(chain)
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise SequenceError(f"{spec}: no such file (give a FASTA or CSV file, or abnativ / abnativ:vh / abnativ:vl)")
        seqs = _read_csv(path, str(path)) if path.suffix.lower() in (".csv", ".tsv") else _read_fasta(path)
    if not seqs:
        raise SequenceError(f"{spec} holds no sequences")
    for ab in seqs:
        if not ab.sequence:
            raise SequenceError(f"sequence {ab.id!r} ({ab.source}) is empty")
        check_residues(ab)
    return seqs


def sample(seqs: list[Antibody], n: int, seed: int = 0) -> list[Antibody]:
    """n sequences drawn without replacement (all of them, shuffled, if n >= len)."""
    order = np.random.default_rng(seed).permutation(len(seqs))[:n]
    return [seqs[int(i)] for i in order]
