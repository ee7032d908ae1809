"""Judge an SAE trained on a residue dump: concept alignment of its latents against the model's own
neurons (MLP neurons of the same layer when the dump holds them, and the residual dimensions with
either sign), and masked-residue loss recovered. Writes OUT/results.json and OUT/alignment.png."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from interventions.bio import alignment
from interventions.bio.masked_loss import loss_recovered
from mechinterp.residues_format import load_residues


@dataclass(frozen=True)
class BioEvalConfig:
    sae: str
    """SAE export trained on a store of a residue dump (mechinterp bio-dump, then train-sae)."""
    out: str | None = None
    """Output folder (None: SAE/bio_eval)."""
    min_f1: float = 0.5
    """A unit is aligned with a concept when its held-out F1 reaches this (and beats firing everywhere by 0.05)."""
    n_loss_sequences: int = 200
    """Held-out sequences the masked-residue loss is measured on."""
    mask_fraction: float = 0.15
    """Residues masked per sequence for the loss."""
    chunk_windows: int = 64
    """Store windows encoded at a time (bounds memory)."""
    device: str = "auto"
    """auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps."""
    seed: int = 0
    """Seeds the masked positions."""


def _chunks(store, encode, chunk_windows: int, desc: str):
    """A generator factory over the store's rows (alignment reads them twice), with a progress bar."""
    from tqdm import tqdm

    ctx = store.rows_per_window

    def gen():
        for w0 in tqdm(range(0, store.n_windows, chunk_windows), desc=desc, unit="chunk", leave=False):
            windows = np.arange(w0, min(w0 + chunk_windows, store.n_windows))
            acts = store.read_windows(windows).astype(np.float32)
            yield (windows[:, None] * ctx + np.arange(ctx)).reshape(-1), encode(acts)
    return gen


def evaluate(cfg: BioEvalConfig) -> dict:
    from extract.models import load_model
    from extract.store import open_store
    from interventions.sae import load_sae
    from mechinterp.figures import concept_alignment_bars
    from mechinterp.sae_format import store_path as recorded_store

    t0 = time.time()
    sae = load_sae(cfg.sae)
    store_path = Path(recorded_store(sae.cfg) or "")
    if not (store_path / "meta.json").exists():
        raise ValueError(f"{cfg.sae}: the store it was trained on ({store_path or 'not recorded'}) is gone; "
                         "re-run mechinterp bio-dump with the same settings")
    dump = store_path.parent
    res = load_residues(dump)
    store = open_store(store_path)
    model = load_model(store.meta.model, device=cfg.device)
    hook = sae.check_fits(model, store.meta.hook)
    vocab = model.tokenizer.get_vocab()
    names, labels = alignment.concepts(res, vocab)
    held = res.heldout_rows()

    def encode_sae(x):
        with torch.no_grad():
            return sae.encode(torch.from_numpy(x)).numpy()
    kinds = {"sae_latents": _chunks(store, encode_sae, cfg.chunk_windows, "SAE latents"),
             "residual_dims": _chunks(store, lambda x: np.concatenate([x, -x], 1), cfg.chunk_windows, "residual dims")}
    neurons = dump / f"blocks.{store.meta.layer}.mlp.hook_post"
    if (neurons / "meta.json").exists():
        kinds["mlp_neurons"] = _chunks(open_store(neurons), lambda x: x, cfg.chunk_windows, "MLP neurons")
    by_kind = {k: alignment.align(chunks, labels, len(names), held) for k, chunks in kinds.items()}
    table = alignment.summary(names, by_kind, len(held), cfg.min_f1)
    t_align = time.time() - t0

    seqs = [str(s) for s in res.seq_text[res.seq_heldout]][:cfg.n_loss_sequences]
    mean = torch.from_numpy(store.read_windows(np.arange(min(store.n_windows, 256))).astype(np.float32).mean(0))
    loss = loss_recovered(model, seqs, hook, sae, mean, mask_fraction=cfg.mask_fraction, seed=cfg.seed)
    out = Path(cfg.out or Path(cfg.sae) / "bio_eval")
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "alignment.npz", concepts=np.array(names),
             **{f"{kind}_{key}": v for kind, r in by_kind.items() for key, v in r.items()})
    counts = {k: sum(row[k]["aligned"] for row in table.values()) for k in by_kind}
    per_concept = {k: sum(row[k]["aligned"] > 0 for row in table.values()) for k in by_kind}
    results = dict(sae=cfg.sae, model=model.name, hook=hook, n_rows=len(res), n_heldout_rows=int(len(held)),
                   min_f1=cfg.min_f1, units={k: int(v["f1"].shape[0]) for k, v in by_kind.items()},
                   aligned_pairs=counts, concepts_covered=per_concept, concepts=table, masked_residue_loss=loss,
                   n_loss_sequences=len(seqs), seconds=dict(alignment=round(t_align, 1),
                                                            total=round(time.time() - t0, 1)))
    (out / "results.json").write_text(json.dumps(results, indent=1))
    concept_alignment_bars({c: {k: row[k] for k in by_kind} for c, row in table.items()}, out / "alignment.png",
                           title=f"{model.name} {hook}: units with held-out F1 >= {cfg.min_f1} and above firing everywhere")
    return results
