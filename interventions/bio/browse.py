"""The residue browser of an antibody SAE: for every concept, its best-aligned latents (after
`mechinterp bio-eval`), each shown on its top sequences as residues coloured by activation above the
region track (interventions/bio/residue_page.py). Writes OUT/residues.html, OUT/residues.png and
OUT/latents.json, and every latent's label (its best concept; interventions/labels/concepts.py) to
SAE/labels.json, keeping an offline label already there."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from interventions.labels.concepts import concept_labels
from mechinterp.formats.bounds import bounds, check_bounds
from mechinterp.formats.labels import labels_path, load_labels, save_labels


@dataclass(frozen=True)
class BioBrowseConfig:
    sae: str
    """SAE export on a residue dump, already judged by mechinterp bio-eval (its bio_eval/alignment.npz)."""
    out: str | None = None
    """Output folder (None: SAE/bio_browse)."""
    per_concept: int = field(default=3, metadata=bounds(1))
    """Latents shown per concept (best held-out F1 first)."""
    n_examples: int = field(default=8, metadata=bounds(1))
    """Top sequences shown per latent."""
    chunk_windows: int = field(default=64, metadata=bounds(1))
    """Store windows encoded at a time (bounds memory)."""

    def __post_init__(self):
        check_bounds(self)


def chosen_latents(names: list[str], f1: np.ndarray, per_concept: int) -> dict[int, str]:
    """latent -> note ("region:CDR3 F1 0.81; conserved:Cys23 F1 0.52"), concepts in table order."""
    notes: dict[int, list[str]] = {}
    for j, name in enumerate(names):
        for u in np.argsort(-f1[:, j])[:per_concept]:
            if f1[u, j] > 0:
                notes.setdefault(int(u), []).append(f"{name} F1 {f1[u, j]:.2f}")
    return {u: "; ".join(n) for u, n in notes.items()}


def browse(cfg: BioBrowseConfig) -> dict:
    from interventions.bio.evaluate import encoded_chunks, load_alignment, open_sae_run
    from interventions.bio.residue_page import residue_strip_png, top_sequences, write_residue_page

    names, arrays = load_alignment(cfg.sae)
    f1 = arrays["sae_latents_f1"]
    sae, store, res = open_sae_run(cfg.sae)
    path = labels_path(cfg.sae)
    offline = {lab["i"]: lab for lab in load_labels(path)["labels"]} if path.exists() else None
    labels = concept_labels(names, f1, offline)
    save_labels(path, labels, "concepts" if offline is None else "offline+concepts", len(labels),
                {"alignment": str(Path(cfg.sae) / "bio_eval" / "alignment.npz")})
    notes = chosen_latents(names, f1, cfg.per_concept)
    notes = {u: f"{labels[u]['label']} — {n}" for u, n in notes.items()}
    latents = list(notes)

    def encode(x):
        with torch.no_grad():
            return sae.encode(torch.from_numpy(x))[:, latents].numpy()
    examples = top_sequences(encoded_chunks(store, encode, res.seq, cfg.chunk_windows, "SAE latents"), res,
                             list(range(len(latents))), cfg.n_examples)
    examples = {latents[i]: ex for i, ex in examples.items()}
    out = Path(cfg.out or Path(cfg.sae) / "bio_browse")
    title = f"{store.meta.model} {store.meta.hook}: latents aligned with antibody concepts"
    page = write_residue_page(out, examples, notes, title)
    highlights = [int(np.argmax(f1[:, names.index(c)])) for c in ("region:CDR3", "conserved:Cys23",
                                                                 "conserved:Cys104", "conserved:Trp41")]
    residue_strip_png(examples, notes, out / "residues.png",
                      latents=[u for u in dict.fromkeys(highlights) if u in examples] or latents[:4])
    (out / "latents.json").write_text(json.dumps({str(u): notes[u] for u in latents}, indent=1))
    return dict(page=str(page), latents=len(latents), concepts=len(names))
