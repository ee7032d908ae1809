"""Judge an SAE trained on a residue dump: concept alignment of its latents against the model's own
neurons (MLP neurons of the same layer when the dump holds them, and the residual dimensions with
either sign), and masked-residue loss recovered. Writes OUT/results.json and OUT/alignment.png."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from interventions.bio import alignment
from interventions.bio.masked_loss import loss_recovered
from mechinterp.formats.bounds import bounds, check_bounds
from mechinterp.formats.reading import read_npz
from mechinterp.formats.residues import load_residues
from mechinterp.formats.results import RESULTS
from mechinterp.formats.store import META_FILE


@dataclass(frozen=True)
class BioEvalConfig:
    sae: str
    """SAE export trained on a store of a residue dump (mechinterp bio-dump, then train-sae)."""
    out: str | None = None
    """Output folder (None: SAE/bio_eval)."""
    min_f1: float = field(default=0.5, metadata=bounds(0, 1))
    """A unit is aligned with a concept when its held-out F1 reaches this (and beats firing everywhere by 0.05)."""
    n_loss_sequences: int = field(default=200, metadata=bounds(1))
    """Held-out sequences the masked-residue loss is measured on."""
    mask_fraction: float = field(default=0.15, metadata=bounds(0, 1, open_low=True, open_high=True))
    """Residues masked per sequence for the loss."""
    chunk_windows: int = field(default=64, metadata=bounds(1))
    """Store windows encoded at a time (bounds memory)."""
    device: str = "auto"
    """auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps."""
    seed: int = field(default=0, metadata=bounds(0))
    """Seeds the masked positions."""

    def __post_init__(self):
        check_bounds(self)


def encoded_chunks(store, encode, seq: np.ndarray, chunk_windows: int, desc: str):
    """A generator factory over the store's rows (alignment reads them twice), with a progress bar.
    A chunk ends where a sequence ends: the rows of the sequence a chunk cuts wait for the next one."""
    from tqdm import tqdm

    ctx = store.rows_per_window

    def gen():
        rows, acts = np.zeros(0, np.int64), None
        for w0 in tqdm(range(0, store.n_windows, chunk_windows), desc=desc, unit="chunk", leave=False):
            windows = np.arange(w0, min(w0 + chunk_windows, store.n_windows))
            new = encode(store.read_windows(windows).astype(np.float32))
            rows = np.r_[rows, (windows[:, None] * ctx + np.arange(ctx)).reshape(-1)]
            acts = new if acts is None else np.concatenate([acts, new])
            last = windows[-1] == store.n_windows - 1
            cut = len(rows) if last else int(np.flatnonzero(seq[rows] != seq[rows[-1]])[-1]) + 1
            yield rows[:cut], acts[:cut]
            rows, acts = rows[cut:], acts[cut:]
    return gen


def replay_sparse(chunks, max_density: float = 0.05):
    """chunks, but a first full pass keeps the nonzero entries (rows x L0 of them: ~200 MB for an SAE
    at L0 32 over half a million residues) and later passes rebuild the chunks from them instead of
    encoding again. A pass with a chunk denser than max_density keeps nothing."""
    cache: dict[str, list | None] = {"chunks": None}

    def gen():
        if cache["chunks"] is not None:
            for rows, r, u, v, width in cache["chunks"]:
                acts = np.zeros((len(rows), width), np.float32)
                acts[r, u] = v
                yield rows, acts
            return
        kept = []
        for rows, acts in chunks():
            if kept is not None and np.count_nonzero(acts) <= max_density * acts.size:
                r, u = np.nonzero(acts)
                kept.append((rows, r.astype(np.int32), u.astype(np.int32), acts[r, u], acts.shape[1]))
            else:
                kept = None
            yield rows, acts
        cache["chunks"] = kept
    return gen


def open_sae_run(sae_dir: str | Path):
    """(the SAE, the store it was trained on, that dump's residue labels); one line if the store is gone."""
    from interventions.sae import load_sae
    from mechinterp.formats.sae import store_path as recorded_store
    from mechinterp.formats.store import open_store

    sae = load_sae(sae_dir)
    store_path = Path(recorded_store(sae.cfg) or "")
    if not (store_path / META_FILE).exists():
        raise ValueError(f"{sae_dir}: the store it was trained on ({store_path or 'not recorded'}) is gone; "
                         "re-run mechinterp bio-dump with the same settings")
    store, res = open_store(store_path), load_residues(store_path.parent)
    if store.meta.inputs and res.meta.get("inputs", store.meta.inputs) != store.meta.inputs:
        raise ValueError(f"{store_path.parent}: the residue labels were written for other sequences than the store "
                         f"{store_path.name}; re-run mechinterp bio-dump into an empty --out")
    if len(res) != store.n_rows:
        raise ValueError(f"{store_path.parent}: {len(res)} residue labels for the {store.n_rows} rows of the store "
                         f"{store_path.name}; re-run mechinterp bio-dump into an empty --out")
    return sae, store, res


def load_alignment(sae_dir: str | Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """(concept names, the arrays of bio-eval's alignment.npz); one line if bio-eval has not run."""
    path = Path(sae_dir) / "bio_eval" / "alignment.npz"
    if not path.exists():
        raise ValueError(f"{sae_dir} has no bio_eval/alignment.npz; run `mechinterp bio-eval --sae {sae_dir}` first")
    arrays = read_npz(path, None, f"re-run `mechinterp bio-eval --sae {sae_dir}`")
    if "concepts" not in arrays:
        raise ValueError(f"{path} has no concepts array; re-run `mechinterp bio-eval --sae {sae_dir}`")
    return [str(n) for n in arrays["concepts"]], arrays


def evaluate(cfg: BioEvalConfig) -> dict:
    from extract.models import load_model
    from mechinterp.formats.sae import store_path
    from mechinterp.formats.store import open_store
    from mechinterp.views.figures import concept_alignment_bars

    t0 = time.time()
    sae, store, res = open_sae_run(cfg.sae)
    dump = Path(store_path(sae.cfg)).parent
    model = load_model(store.meta.model, device=cfg.device)
    hook = sae.check_fits(model, store.meta.hook)
    vocab = model.tokenizer.get_vocab()
    concepts = alignment.concepts(res, vocab)
    held = res.heldout_rows()

    def encode_sae(x):
        with torch.no_grad():
            return sae.encode(torch.from_numpy(x)).numpy()
    kinds = {"sae_latents": replay_sparse(encoded_chunks(store, encode_sae, res.seq, cfg.chunk_windows, "SAE latents")),
             "residual_dims": encoded_chunks(store, lambda x: np.concatenate([x, -x], 1), res.seq, cfg.chunk_windows,
                                      "residual dims")}
    neurons = dump / f"blocks.{store.meta.layer}.mlp.hook_post"
    if (neurons / META_FILE).exists():
        kinds["mlp_neurons"] = encoded_chunks(open_store(neurons), lambda x: x, res.seq, cfg.chunk_windows, "MLP neurons")
    by_kind = {k: alignment.align(chunks, concepts, held) for k, chunks in kinds.items()}
    names = concepts.names
    table = alignment.summary(names, by_kind, len(held), cfg.min_f1)
    t_align = time.time() - t0

    seqs = [str(s) for s in res.seq_text[res.seq_heldout]][:cfg.n_loss_sequences]
    mean = torch.from_numpy(store.read_windows(np.arange(min(store.n_windows, 256))).astype(np.float32).mean(0))
    loss = loss_recovered(model, seqs, hook, sae, mean, mask_fraction=cfg.mask_fraction, seed=cfg.seed)
    out = Path(cfg.out or Path(cfg.sae) / "bio_eval")
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "alignment.npz", concepts=np.array(names),
             **{f"{kind}_{key}": v for kind, r in by_kind.items() for key, v in r.items()})
    def total(key, f=lambda n: n):
        return {k: int(sum(f(row[k][key]) for row in table.values())) for k in by_kind}
    results = dict(sae=cfg.sae, model=model.name, hook=hook, n_rows=len(res), n_heldout_rows=int(len(held)),
                   min_f1=cfg.min_f1, units={k: int(v["f1"].shape[0]) for k, v in by_kind.items()},
                   aligned_pairs=total("aligned"), aligned_pairs_residue=total("aligned_residue"),
                   concepts_covered=total("aligned", lambda n: n > 0),
                   concepts_covered_residue=total("aligned_residue", lambda n: n > 0),
                   units_aligned=alignment.distinct_units(table, by_kind),
                   units_aligned_residue=alignment.distinct_units(table, by_kind, "f1_residue"),
                   concepts=table, masked_residue_loss=loss, n_loss_sequences=len(seqs), seconds=dict(alignment=round(t_align, 1),
                                                            total=round(time.time() - t0, 1)))
    (out / RESULTS).write_text(json.dumps(results, indent=1))
    concept_alignment_bars({c: {k: row[k] for k in by_kind} for c, row in table.items()}, out / "alignment.png",
                           title=f"{model.name} {hook}: units with held-out F1 >= {cfg.min_f1} and above firing everywhere "
                           "(InterPLM's F1 counts a region or chain found when a unit fires on any of its residues)")
    return results
