"""Causal tests of an antibody SAE's concept latents, after `mechinterp bio-eval` has aligned them:
activation patching of masked-residue prediction (interventions/bio/patching.py), ablation of each
concept's latents against random latents, and steering with a region latent
(interventions/bio/concept_effects.py). Writes OUT/results.json, patching.png and effects.png.

Each ablation's rise is read against the distribution of the random draws' rises
(concept_effects.against_random): their mean and spread, a z-score, the interval 95% of random
draws fall in, and a ratio to the random mean only where that mean is told apart from 0."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from extract.bio.labels import REGIONS
from interventions.bio import concept_effects as E
from interventions.bio.alignment import concepts as concept_table
from interventions.bio.patching import TARGETS, patching
from mechinterp.formats.bounds import bounds, check_bounds
from mechinterp.formats.results import RESULTS


@dataclass(frozen=True)
class BioCausalConfig:
    sae: str
    """SAE export on a residue dump, already judged by mechinterp bio-eval (its bio_eval/alignment.npz)."""
    out: str | None = None
    """Output folder (None: SAE/bio_causal)."""
    targets: tuple[str, ...] = field(default=TARGETS, metadata={"repeat": True, "flag": "target"})
    """Patching targets (CDR3, Cys23, Cys104); repeat the flag for several."""
    n_pairs: int = field(default=3, metadata=bounds(1))
    """Sequence pairs patched per target (each: every layer x every position, ~80 s on AntiBERTy)."""
    concepts: tuple[str, ...] = field(default=("region:CDR3", "region:CDR1", "conserved:Cys23", "conserved:Cys104"),
                                      metadata={"repeat": True, "flag": "concept"})
    """Concepts whose latents are ablated (names as in bio-eval's results.json); repeat for several."""
    max_latents: int = field(default=16, metadata=bounds(1))
    """At most this many aligned latents ablated per concept (best F1 first)."""
    n_random: int = field(default=5, metadata=bounds(1))
    """Draws of as many random live latents, the ablation's baseline."""
    steer_region: str = field(default="CDR3", metadata={"choices": REGIONS})
    """Region whose best-aligned latent steers masked residues outside it."""
    alphas: tuple[float, ...] = field(default=(0.0, 4.0, 8.0, 16.0, 32.0, 64.0), metadata=bounds())
    """Steering strengths, times the latent's mean firing value (the residual's norm is ~7x that value on AntiBERTy)."""
    n_sequences: int = field(default=64, metadata=bounds(1))
    """Held-out sequences the ablation and steering are measured on."""
    mask_fraction: float = field(default=0.15, metadata=bounds(0, 1, open_low=True, open_high=True))
    """Residues masked per sequence."""
    device: str = "auto"
    """auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps."""
    seed: int = field(default=0, metadata=bounds(0))
    """Seeds pairs, masks and random latents."""

    def __post_init__(self):
        check_bounds(self)
        unknown = [t for t in self.targets if t not in TARGETS]
        if unknown:
            raise ValueError(f"unknown patching target {unknown[0]!r}; choose from {', '.join(TARGETS)}")


def _firing(store, sae, windows: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(mean firing value per latent, live latents) over the store's first windows."""
    x = torch.from_numpy(store.read_windows(np.arange(min(windows, store.n_windows))).astype(np.float32))
    with torch.no_grad():
        f = sae.encode(x.reshape(-1, x.shape[-1]))
    n = (f > 0).sum(0)
    return (f.sum(0) / n.clamp(min=1)).numpy(), np.flatnonzero(n.numpy() > 0)


def run(cfg: BioCausalConfig) -> dict:
    from extract.models import load_model
    from interventions.bio.evaluate import load_alignment, open_sae_run
    from mechinterp.views.figures import concept_effects, patching_maps

    t0 = time.time()
    names, arrays = load_alignment(cfg.sae)
    f1 = arrays["sae_latents_f1"]
    sae, store, res = open_sae_run(cfg.sae)
    model = load_model(store.meta.model, device=cfg.device)
    sae = sae.to(model.device)
    hook = sae.check_fits(model, store.meta.hook)
    table = concept_table(res, model.tokenizer.get_vocab())
    summary = json.loads((Path(cfg.sae) / "bio_eval" / RESULTS).read_text())["concepts"]
    unknown = [c for c in cfg.concepts + (f"region:{cfg.steer_region}",) if c not in names]
    if unknown:
        raise ValueError(f"unknown concept {unknown[0]!r}; choose from {', '.join(names)}")

    patched = [patching(model, res, t, cfg.n_pairs, cfg.seed) for t in cfg.targets]
    t_patch = time.time() - t0

    seqs, seq_index = E.held_out_sequences(res, cfg.n_sequences)
    labels_of = E.labeller(res, seq_index, table.labels)
    scale, live = _firing(store, sae)
    chosen = {}
    for c in cfg.concepts:
        j = names.index(c)
        order = np.argsort(-f1[:, j])
        n_aligned = summary[c]["sae_latents"]["aligned"]
        chosen[c] = order[:min(n_aligned, cfg.max_latents) or 4].tolist()
    kw = dict(mask_fraction=cfg.mask_fraction, seed=cfg.seed)
    ablated = E.ablation(model, sae, hook, seqs, labels_of, chosen, {c: names.index(c) for c in names}, live,
                         cfg.n_random, **kw)
    region = REGIONS.index(cfg.steer_region)
    j = names.index(f"region:{cfg.steer_region}")
    latent = int(np.argmax(f1[:, j]))
    random_latent = int(np.random.default_rng(cfg.seed).choice(np.setdiff1d(live, [latent])))
    steered = E.steering(model, sae, hook, seqs, labels_of, j, latent, random_latent,
                         {latent: float(scale[latent]), random_latent: float(scale[random_latent])},
                         E.composition(res, region, len(model.tokenizer.get_vocab())), cfg.alphas, **kw)
    steered["region_latent"]["f1"] = float(f1[latent, j])

    out = Path(cfg.out or Path(cfg.sae) / "bio_causal")
    out.mkdir(parents=True, exist_ok=True)
    results = dict(sae=cfg.sae, model=model.name, hook=hook, patching=patched, ablation=ablated, steering=steered,
                   steer_region=cfg.steer_region, n_sequences=len(seqs),
                   seconds=dict(patching=round(t_patch, 1), total=round(time.time() - t0, 1)))
    (out / RESULTS).write_text(json.dumps(results, indent=1))
    patching_maps(patched, out / "patching.png")
    concept_effects(ablated, steered, out / "effects.png", cfg.steer_region)
    return results
