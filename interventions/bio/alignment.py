"""Concept alignment (InterPLM's method, Simon and Zou 2024) of SAE latents and of raw neurons.

For every unit (latent, MLP neuron, residual dimension with either sign) and every per-residue concept:
the unit's activation is scaled by its largest value on the training rows, "fires" means above a
threshold from THRESHOLDS, and precision, recall and F1 of "fires" against "has the concept" are
counted. Each pair's threshold is the one with the best F1 on the training rows; its F1 on the
held-out sequences' rows is what counts. Counting streams over the rows (bounded memory).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from extract.bio.labels import CONSERVED, REGIONS, RESIDUE_CLASSES
from mechinterp.residues_format import Residues

THRESHOLDS = (0.0, 0.15, 0.5, 0.6, 0.8)
"""Fractions of a unit's largest training activation (InterPLM's grid)."""


def concepts(res: Residues, vocab: dict[str, int]) -> tuple[list[str], Callable[[np.ndarray], np.ndarray]]:
    """(names, rows -> bool [len(rows), n_concepts]); rows with an unknown label (e.g. `mutated` in CDR3)
    count as not having the concept."""
    names = [f"region:{r}" for r in REGIONS] + [f"chain:{c}" for c in ("H", "K", "L")]
    names += [f"class:{c}" for c in RESIDUE_CLASSES] + [f"conserved:{c}" for c in CONSERVED] + ["mutated"]
    class_of = {vocab[a]: i for i, letters in enumerate(RESIDUE_CLASSES.values()) for a in letters}
    chain_index = np.array([("H", "K", "L").index(c) if c in ("H", "K", "L") else -1 for c in res.seq_chain])
    conserved = [(int(pos), [vocab[a] for a in letters]) for pos, letters in CONSERVED.values()]

    def labels(rows: np.ndarray) -> np.ndarray:
        out = np.zeros((len(rows), len(names)), bool)
        region, token = res.region[rows], res.token[rows]
        out[:, :7] = region[:, None] == np.arange(7)
        out[:, 7:10] = chain_index[res.seq[rows]][:, None] == np.arange(3)
        cls = np.array([class_of.get(int(t), -1) for t in token])
        out[:, 10:15] = cls[:, None] == np.arange(len(RESIDUE_CLASSES))
        for j, (pos, ids) in enumerate(conserved):
            out[:, 15 + j] = (res.imgt[rows] == pos) & np.isin(token, ids)
        out[:, -1] = res.mutated[rows] == 1
        return out
    return names, labels


def _counts(units: Iterator[tuple[np.ndarray, np.ndarray]], scale: torch.Tensor, labels, n_concepts: int,
            heldout_rows: np.ndarray) -> dict[str, torch.Tensor]:
    """True positives [split, t, unit, concept], fired [split, t, unit], positives [split, concept]."""
    n_units, n_t = len(scale), len(THRESHOLDS)
    tp = torch.zeros(2, n_t, n_units, n_concepts, dtype=torch.float64)
    fired = torch.zeros(2, n_t, n_units, dtype=torch.float64)
    pos = torch.zeros(2, n_concepts, dtype=torch.float64)
    for rows, acts in units:
        c = torch.from_numpy(labels(rows)).float()
        split = torch.from_numpy(np.isin(rows, heldout_rows)).long()
        a = torch.from_numpy(acts).float() / scale
        for s in (0, 1):
            keep = split == s
            if not keep.any():
                continue
            cs, ak = c[keep], a[keep]
            pos[s] += cs.sum(0).double()
            for i, t in enumerate(THRESHOLDS):
                on = (ak > t).float()
                tp[s, i] += (on.T @ cs).double()
                fired[s, i] += on.sum(0).double()
    return dict(tp=tp, fired=fired, pos=pos)


def _f1(tp, fired, pos):
    precision = tp / fired.clamp(min=1)[..., None]
    recall = tp / pos.clamp(min=1)
    return 2 * precision * recall / (precision + recall).clamp(min=1e-12), precision, recall


def align(chunks: Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]], labels, n_concepts: int,
          heldout_rows: np.ndarray) -> dict[str, np.ndarray]:
    """chunks() yields (row indices, activations [rows, units]) over all rows, twice: first for each
    unit's largest training activation, then for the counts. Returns, per unit and concept, the
    held-out F1 / precision / recall at the threshold chosen on the training rows."""
    peak = None
    for rows, acts in chunks():
        train = ~np.isin(rows, heldout_rows)
        if train.any():
            m = acts[train].max(0)
            peak = m if peak is None else np.maximum(peak, m)
    scale = torch.from_numpy(np.where(peak > 0, peak, np.inf)).float()  # a unit that never fires stays off
    c = _counts(chunks(), scale, labels, n_concepts, heldout_rows)
    f1_train, _, _ = _f1(c["tp"][0], c["fired"][0], c["pos"][0])
    best = f1_train.argmax(0)  # [unit, concept]: the threshold index chosen on the training rows
    f1, precision, recall = (x.gather(0, best[None])[0] for x in _f1(c["tp"][1], c["fired"][1], c["pos"][1]))
    return dict(f1=f1.numpy(), precision=precision.numpy(), recall=recall.numpy(),
                threshold=np.asarray(THRESHOLDS)[best.numpy()], train_f1=f1_train.gather(0, best[None])[0].numpy(),
                heldout_positives=c["pos"][1].numpy())


TRIVIAL_MARGIN = 0.05
"""A unit must beat a unit that fires on every residue by this much F1 to count as aligned."""


def trivial_f1(positives: float, rows: int) -> float:
    """F1 of firing on every residue: 2p / (1 + p) at base rate p (0.70 for a concept of half the residues)."""
    p = positives / max(rows, 1)
    return 2 * p / (1 + p)


def summary(names: list[str], by_kind: dict[str, dict], n_heldout_rows: int, min_f1: float = 0.5) -> dict:
    """Per concept: units of each kind whose held-out F1 reaches min_f1 and beats firing everywhere by
    TRIVIAL_MARGIN (frequent concepts such as the heavy chain would otherwise count near-constant units),
    and each kind's best unit."""
    out = {}
    for j, name in enumerate(names):
        positives = float(next(iter(by_kind.values()))["heldout_positives"][j])
        floor = max(min_f1, trivial_f1(positives, n_heldout_rows) + TRIVIAL_MARGIN)
        row = {"heldout_positives": int(positives), "trivial_f1": trivial_f1(positives, n_heldout_rows)}
        for kind, r in by_kind.items():
            f1 = r["f1"][:, j]
            row[kind] = dict(aligned=int((f1 >= floor).sum()), best_f1=float(f1.max()), best_unit=int(f1.argmax()))
        out[name] = row
    return out
