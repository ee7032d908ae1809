"""Per-row labels of a residue dump (numpy only): written by extract/bio/dump.py beside the stores,
read by anyone (SAE concept alignment, the browser).

`residues.npz` holds one entry per stored row (the same row order as every store of the dump):
  seq [rows] int32        index into the sequence table
  pos [rows] int16        residue position in its sequence (0-based)
  token [rows] int32      residue token id
  region [rows] int8      index into REGIONS (FR1..FR4, CDR1..CDR3), -1 outside the domain
  imgt [rows] int16       IMGT position number (insertions share their number), -1 outside
  mutated [rows] int8     1 differs from germline V / J, 0 same, -1 no germline (CDR3, outside)
and one entry per sequence:
  seq_ids, seq_text, seq_chain (H/K/L), seq_v_gene, seq_j_gene (str arrays), seq_heldout [seqs] bool
`residues.json` records the names of the coded values and where the sequences came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mechinterp.formats.atomic import atomic_path, atomic_write_text
from mechinterp.formats.reading import read_json, read_npz

NPZ, JSON = "residues.npz", "residues.json"
ROW_ARRAYS = ("seq", "pos", "token", "region", "imgt", "mutated")
SEQ_ARRAYS = ("seq_ids", "seq_text", "seq_chain", "seq_v_gene", "seq_j_gene", "seq_heldout")


@dataclass
class Residues:
    seq: np.ndarray
    pos: np.ndarray
    token: np.ndarray
    region: np.ndarray
    imgt: np.ndarray
    mutated: np.ndarray
    seq_ids: np.ndarray
    seq_text: np.ndarray
    seq_chain: np.ndarray
    seq_v_gene: np.ndarray
    seq_j_gene: np.ndarray
    seq_heldout: np.ndarray
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.seq)

    def heldout_rows(self) -> np.ndarray:
        return np.flatnonzero(self.seq_heldout[self.seq])

    def save(self, out: str | Path) -> None:
        out = Path(out)
        with atomic_path(out / NPZ) as tmp:
            np.savez(tmp, **{k: getattr(self, k) for k in ROW_ARRAYS + SEQ_ARRAYS})
        atomic_write_text(out / JSON, json.dumps(self.meta, indent=1))


def load_residues(path: str | Path) -> Residues:
    path = Path(path)
    if not (path / NPZ).exists():
        raise ValueError(f"{path} has no {NPZ}: it is not a residue dump (make one with `mechinterp bio-dump`)")
    fix = "re-run mechinterp bio-dump into an empty --out"
    arrays = read_npz(path / NPZ, ROW_ARRAYS + SEQ_ARRAYS, fix)
    return Residues(**arrays, meta=read_json(path / JSON, fix))
