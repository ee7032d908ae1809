"""Concept alignment (InterPLM's method, Simon and Zou 2024) of SAE latents and of raw neurons.

For every unit (latent, MLP neuron, residual dimension with either sign) and every per-residue concept:
the unit's activation is scaled by its largest value on the training rows, "fires" means above a
threshold from THRESHOLDS, and precision and recall of "fires" against "has the concept" are counted.
Precision is per residue. Recall, as InterPLM counts it, is per residue for residue-level concepts
(a residue class, a conserved position, a mutation) and per instance for domain-level ones (a region
of one sequence, a sequence's chain): an instance is found when the unit fires on any of its residues.
The strict per-residue F1 is kept beside it for every concept. Each pair's threshold is the one with
the best F1 on the training rows; its F1 on the held-out sequences' rows is what counts. Counting
streams over the rows (bounded memory); chunks must not split a sequence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from extract.bio.labels import CONSERVED, REGIONS, RESIDUE_CLASSES
from mechinterp.formats.residues import Residues

THRESHOLDS = (0.0, 0.15, 0.5, 0.6, 0.8)
"""Fractions of a unit's largest training activation (InterPLM's grid)."""


@dataclass(frozen=True)
class Concepts:
    names: list[str]
    labels: Callable[[np.ndarray], np.ndarray]
    """rows -> bool [len(rows), n_concepts]."""
    instances: Callable[[np.ndarray], np.ndarray] | None = None
    """rows -> int64 [len(rows), n_concepts]: per domain-level concept, a key naming the instance a row
    belongs to (one region of one sequence, say); rows sharing a key form one instance."""
    domain_level: tuple[bool, ...] = ()
    """Per concept: recall counted per instance (True) or per residue."""

    def is_domain(self) -> np.ndarray:
        return np.array(self.domain_level or [False] * len(self.names), bool)


def concepts(res: Residues, vocab: dict[str, int]) -> Concepts:
    """The antibody concepts; rows with an unknown label (e.g. `mutated` in CDR3) count as not having
    the concept. Regions and chains are domain-level: instance = (sequence, region) and sequence."""
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

    def instances(rows: np.ndarray) -> np.ndarray:
        seq = res.seq[rows].astype(np.int64)
        keys = np.full((len(rows), len(names)), -1, np.int64)
        keys[:, :7] = (seq * 8 + res.region[rows])[:, None]  # (sequence, region)
        keys[:, 7:10] = seq[:, None]
        return keys
    return Concepts(names, labels, instances, tuple([True] * 10 + [False] * (len(names) - 10)))


def _instance_index(keys: np.ndarray, labels: np.ndarray, domain: np.ndarray) -> list[tuple[int, np.ndarray, int]]:
    """Per domain-level concept j: (j, the instance of each row, -1 outside the concept; instances)."""
    out = []
    for j in np.flatnonzero(domain):
        at = np.flatnonzero(labels[:, j])
        inst = np.full(len(keys), -1, np.int64)
        if len(at):
            _, inv = np.unique(keys[at, j], return_inverse=True)
            inst[at] = inv.reshape(-1)
        out.append((int(j), inst, int(inst.max()) + 1))
    return out


def _dense_hits(on: torch.Tensor, index, n_concepts: int) -> torch.Tensor:
    """Instances found [unit, concept]: a unit finds an instance when it fires on any of its rows."""
    found = torch.zeros(on.shape[1], n_concepts, dtype=torch.float64)
    for j, inst, n in index:
        at = np.flatnonzero(inst >= 0)
        if n:
            hit = torch.zeros(n, on.shape[1]).index_add_(0, torch.from_numpy(inst[at]), on[at])
            found[:, j] = (hit > 0).sum(0).double()
    return found


def _sparse_hits(r: np.ndarray, u: np.ndarray, n_units: int, index, n_concepts: int) -> torch.Tensor:
    """As _dense_hits, from the (row, unit) pairs that fire."""
    found = torch.zeros(n_units, n_concepts, dtype=torch.float64)
    for j, inst, _ in index:
        i = inst[r]
        pairs = np.unique(i[i >= 0] * n_units + u[i >= 0])
        found[:, j] = torch.from_numpy(np.bincount(pairs % n_units, minlength=n_units)).double()
    return found


def _counts(units: Iterator[tuple[np.ndarray, np.ndarray]], scale: torch.Tensor, concepts: Concepts,
            heldout_rows: np.ndarray) -> dict[str, torch.Tensor]:
    """Per split (train, held out): true positives [split, t, unit, concept], fired [split, t, unit],
    positives [split, concept], and for domain-level concepts instances found [split, t, unit, concept]
    and instances [split, concept]. Sparse activations (SAE latents) are counted from their nonzero
    entries, dense ones (neurons) by matrix products."""
    n_units, n_t, n_c = len(scale), len(THRESHOLDS), len(concepts.names)
    tp = torch.zeros(2, n_t, n_units, n_c, dtype=torch.float64)
    found = torch.zeros_like(tp)
    fired = torch.zeros(2, n_t, n_units, dtype=torch.float64)
    pos = torch.zeros(2, n_c, dtype=torch.float64)
    n_inst = torch.zeros_like(pos)
    domain = concepts.is_domain()
    thresholds = torch.tensor(THRESHOLDS)
    for rows, acts in units:
        labels = concepts.labels(rows)
        keys = concepts.instances(rows) if concepts.instances and domain.any() else None
        split = np.isin(rows, heldout_rows)
        a = torch.from_numpy(acts).float() / scale
        for s in (0, 1):
            keep = np.flatnonzero(split == s)
            if not len(keep):
                continue
            ls, ks = labels[keep], None if keys is None else keys[keep]
            cs, ak = torch.from_numpy(ls).float(), a[keep]
            pos[s] += cs.sum(0).double()
            index = _instance_index(ks, ls, domain) if ks is not None else []
            for j, _, n in index:
                n_inst[s, j] += n
            r, u = torch.nonzero(ak > 0, as_tuple=True)
            if len(r) < 0.1 * ak.numel():
                level = torch.bucketize(ak[r, u], thresholds)  # how many thresholds each entry exceeds
                for i in range(n_t):
                    on = level > i
                    ri, ui = r[on], u[on]
                    tp[s, i] += torch.zeros(n_units, n_c).index_add_(0, ui, cs[ri]).double()
                    fired[s, i] += torch.bincount(ui, minlength=n_units).double()
                    found[s, i] += _sparse_hits(ri.numpy(), ui.numpy(), n_units, index, n_c)
                continue
            for i, t in enumerate(THRESHOLDS):
                on = (ak > t).float()
                tp[s, i] += (on.T @ cs).double()
                fired[s, i] += on.sum(0).double()
                found[s, i] += _dense_hits(on, index, n_c)
    return dict(tp=tp, fired=fired, pos=pos, found=found, instances=n_inst)


def _f1(precision, recall):
    return 2 * precision * recall / (precision + recall).clamp(min=1e-12)


def _scores(c: dict, s: int, domain: torch.Tensor) -> dict[str, torch.Tensor]:
    """Split s's precision, residue recall, InterPLM recall and both F1s, each [t, unit, concept]."""
    precision = c["tp"][s] / c["fired"][s].clamp(min=1)[..., None]
    recall_residue = c["tp"][s] / c["pos"][s].clamp(min=1)
    recall = torch.where(domain, c["found"][s] / c["instances"][s].clamp(min=1), recall_residue)
    return dict(precision=precision, recall=recall, recall_residue=recall_residue, f1=_f1(precision, recall),
                f1_residue=_f1(precision, recall_residue))


def align(chunks: Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]], concepts: Concepts,
          heldout_rows: np.ndarray) -> dict[str, np.ndarray]:
    """chunks() yields (row indices, activations [rows, units]) over all rows, twice: first for each
    unit's largest training activation, then for the counts. Returns, per unit and concept, the
    held-out F1 (InterPLM's), precision and recall at the threshold chosen on the training rows, and
    the strict per-residue F1 at its own chosen threshold."""
    peak = None
    for rows, acts in chunks():
        train = ~np.isin(rows, heldout_rows)
        if train.any():
            m = acts[train].max(0)
            peak = m if peak is None else np.maximum(peak, m)
    scale = torch.from_numpy(np.where(peak > 0, peak, np.inf)).float()  # a unit that never fires stays off
    c = _counts(chunks(), scale, concepts, heldout_rows)
    domain = torch.from_numpy(concepts.is_domain())
    train, held = _scores(c, 0, domain), _scores(c, 1, domain)
    out = {}
    for f1 in ("f1", "f1_residue"):
        best = train[f1].argmax(0)[None]  # [1, unit, concept]: the threshold chosen on the training rows
        out[f1] = held[f1].gather(0, best)[0].numpy()
        out[f"train_{f1}"] = train[f1].gather(0, best)[0].numpy()
        if f1 == "f1":
            out.update({k: held[k].gather(0, best)[0].numpy() for k in ("precision", "recall")})
            out["threshold"] = np.asarray(THRESHOLDS)[best[0].numpy()]
    out["heldout_positives"] = c["pos"][1].numpy()
    return out


TRIVIAL_MARGIN = 0.05
"""A unit must beat a unit that fires on every residue by this much F1 to count as aligned."""


def trivial_f1(positives: float, rows: int) -> float:
    """F1 of firing on every residue: 2p / (1 + p) at base rate p (0.70 for a concept of half the residues);
    the same under either recall, since firing everywhere finds every instance."""
    p = positives / max(rows, 1)
    return 2 * p / (1 + p)


def summary(names: list[str], by_kind: dict[str, dict], n_heldout_rows: int, min_f1: float = 0.5) -> dict:
    """Per concept: units of each kind whose held-out F1 reaches min_f1 and beats firing everywhere by
    TRIVIAL_MARGIN (frequent concepts such as the heavy chain would otherwise count near-constant units),
    under InterPLM's F1 (`aligned`) and the per-residue F1 (`aligned_residue`), and each kind's best unit."""
    out = {}
    for j, name in enumerate(names):
        positives = float(next(iter(by_kind.values()))["heldout_positives"][j])
        floor = max(min_f1, trivial_f1(positives, n_heldout_rows) + TRIVIAL_MARGIN)
        row = {"heldout_positives": int(positives), "trivial_f1": trivial_f1(positives, n_heldout_rows), "floor": floor}
        for kind, r in by_kind.items():
            f1, strict = r["f1"][:, j], r["f1_residue"][:, j]
            row[kind] = dict(aligned=int((f1 >= floor).sum()), best_f1=float(f1.max()), best_unit=int(f1.argmax()),
                             aligned_residue=int((strict >= floor).sum()), best_f1_residue=float(strict.max()))
        out[name] = row
    return out


def distinct_units(table: dict, by_kind: dict[str, dict], key: str = "f1") -> dict[str, int]:
    """Per kind, how many units are aligned with at least one concept (InterPLM's count of features)."""
    floors = np.array([row["floor"] for row in table.values()])
    return {kind: int((r[key] >= floors).any(1).sum()) for kind, r in by_kind.items()}
