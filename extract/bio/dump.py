"""Residue dumps: an antibody model's activations over real sequences, in the activation-store
format every other stage reads, with per-residue labels beside them.

    dump_residues(BioDumpConfig(model="antiberty", sequences="abnativ", n_sequences=5000, out="OUT"))
    -> OUT/<hook>/ (one store per hook) + OUT/residues.npz (mechinterp/formats/residues.py)

Sequences are drawn (seeded), numbered and labelled (extract/bio/labels.py; those AntPack cannot
number are skipped and counted), split into training and held-out sequences, and run in padded
batches ([CLS] residues [SEP], attention masked). Only residue positions are stored, sequence after
sequence: a store window is `ctx` consecutive residue rows (a storage chunk, not a sequence; the tail
short of a whole window is dropped), held-out sequences' rows in the last windows. Interrupted, it
resumes at the first unwritten window (the sequence order is fixed by the seed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from extract.bio import labels as L
from extract.bio.sequences import SequenceError, read_sequences, sample
from mechinterp.formats.bounds import bounds, check_bounds
from mechinterp.formats.defaults import given_out
from mechinterp.formats.fingerprint import combine
from mechinterp.formats.residues import Residues
from mechinterp.formats.store import StoreMeta


@dataclass(frozen=True)
class BioDumpConfig:
    model: str = "antiberty"
    """Antibody masked LM: antiberty, sapiens-vh, sapiens-vl (or any BERT/RoBERTa masked LM)."""
    sequences: str = "abnativ"
    """abnativ (50k heavy + 50k light), abnativ:vh, abnativ:vl, or a FASTA / CSV file."""
    n_sequences: int = field(default=5000, metadata=bounds(1))
    """Sequences drawn (seeded) before labelling."""
    hooks: tuple[str, ...] = field(default=(), metadata={"repeat": True, "flag": "hook"})
    """Hook name, {L} expanded over --layers; repeat for several. None: --layer's --site."""
    layers: str = "all"
    """Layers a --hook containing {L} is expanded over: all, or a list such as 0,2-4."""
    layer: int | None = field(default=None, metadata=bounds(0))
    """Layer for --site when no hooks are named; default the middle layer."""
    site: str = "normalized_resid_post"
    """Site within --layer (post-norm models: normalized_resid_post is the block's output)."""
    out: str | None = None
    """Parent of one store per hook and of residues.npz (None: runs/bio/acts)."""
    ctx: int = field(default=128, metadata=bounds(1))
    """Residue rows per store window (a storage chunk)."""
    batch: int = field(default=32, metadata=bounds(1))
    """Sequences per forward pass."""
    seed: int = field(default=0, metadata=bounds(0))
    """Seeds the draw and the held-out split."""
    eval_fraction: float = field(default=0.05, metadata=bounds(0, 1, open_high=True))
    """Fraction of sequences held out (their rows fill the last windows)."""
    species: str = "human"
    """Germline genes compared against (AntPack: human, mouse, alpaca, rabbit)."""
    dtype: str = field(default="float16", metadata={"choices": ("float16", "float32")})
    """Storage dtype of the activations."""
    device: str = "auto"
    """auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps."""
    progress: bool = True
    """Show a progress bar (sequences/s, ETA)."""

    def __post_init__(self):
        check_bounds(self)


def _labelled(cfg: BioDumpConfig, sequences: list, max_len: int):
    """(sequences, annotations, rejected count, held-out mask), training sequences first."""
    seqs = sample(sequences, cfg.n_sequences, cfg.seed)
    for ab in seqs:
        if len(ab.sequence) > max_len:
            raise SequenceError(f"sequence {ab.id!r} has {len(ab.sequence)} residues; {cfg.model} reads at most "
                                f"{max_len} (its context less [CLS] and [SEP]); drop or trim it")
    annotate = L.Annotator(cfg.species)
    pairs = [(ab, a) for ab in seqs if (a := annotate(ab.sequence)) is not None]
    if not pairs:
        raise SequenceError(f"none of the {len(seqs)} sequences could be numbered as an antibody variable domain")
    n_eval = int(round(cfg.eval_fraction * len(pairs)))
    heldout = np.zeros(len(pairs), bool)
    heldout[len(pairs) - n_eval:] = True
    return [p[0] for p in pairs], [p[1] for p in pairs], len(seqs) - len(pairs), heldout


def _residue_table(model, seqs, anns, heldout, ctx: int) -> tuple[Residues, int]:
    """Labels of the rows to store (training rows then held-out rows, each cut to whole windows)."""
    parts, n_train_windows = [], 0
    for keep in (~heldout, heldout):
        idx = np.flatnonzero(keep)
        seq = np.concatenate([np.full(len(seqs[i].sequence), i, np.int32) for i in idx]) if len(idx) else np.zeros(0, np.int32)
        rows = len(seq) // ctx * ctx
        n_train_windows = n_train_windows or rows // ctx
        parts.append(seq[:rows])
    seq = np.concatenate(parts)
    pos = _positions(seq)
    token = np.array([model.tokenizer.convert_tokens_to_ids(seqs[s].sequence[p]) for s, p in zip(seq, pos)], np.int32)
    region = np.array([anns[s].region[p] for s, p in zip(seq, pos)], np.int8)
    mutated = np.array([anns[s].mutated[p] for s, p in zip(seq, pos)], np.int8)
    imgt = np.array([int(x.rstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")) if (x := anns[s].imgt[p]) else -1
                     for s, p in zip(seq, pos)], np.int16)
    res = Residues(seq=seq, pos=pos, token=token, region=region, imgt=imgt, mutated=mutated,
                   seq_ids=np.array([s.id for s in seqs]), seq_text=np.array([s.sequence for s in seqs]),
                   seq_chain=np.array([a.chain for a in anns]),
                   seq_v_gene=np.array([a.v_gene for a in anns]), seq_j_gene=np.array([a.j_gene for a in anns]),
                   seq_heldout=heldout)
    return res, n_train_windows


def _positions(seq: np.ndarray) -> np.ndarray:
    """Position of each row within its sequence's run of rows."""
    starts = np.r_[0, np.flatnonzero(seq[1:] != seq[:-1]) + 1]
    lengths = np.diff(np.r_[starts, len(seq)])
    return (np.arange(len(seq)) - np.repeat(starts, lengths)).astype(np.int16)


def _forward(model, names: list[str], batch: list[str]) -> dict[str, list[np.ndarray]]:
    """Each hook's activations at the residue positions of each sequence of the batch."""
    ids = [model.to_tokens(s)[0] for s in batch]
    n = max(len(i) for i in ids)
    pad = model.tokenizer.pad_token_id
    tokens = torch.full((len(ids), n), pad, dtype=torch.long, device=model.device)
    mask = torch.zeros((len(ids), n), dtype=torch.long, device=model.device)
    for b, i in enumerate(ids):
        tokens[b, :len(i)], mask[b, :len(i)] = i, 1
    _, cache = model.run_with_cache(tokens, names=names, stop_at_layer=model.min_stop_layer(names), attention_mask=mask)
    return {h: [cache[h][b, 1:len(s) + 1].float().cpu().numpy() for b, s in enumerate(batch)] for h in names}


def dump_residues(cfg: BioDumpConfig, model=None) -> dict:
    """Write the stores and residues.npz; returns the run's summary (also in OUT/residues.json)."""
    from extract.dump import _open_writers, hook_names
    from extract.models import load_model

    sequences = read_sequences(cfg.sequences)  # a bad file is refused before the model loads
    model = model or load_model(cfg.model, device=cfg.device)
    if not model.masked_lm:
        raise SequenceError(f"{cfg.model} is not a masked LM; residue dumps take antiberty, sapiens-vh or sapiens-vl")
    names = hook_names(model, cfg)
    offset = model.config.pad_token_id + 1 if model.config.model_type == "roberta" else 0  # its positions start there
    seqs, anns, rejected, heldout = _labelled(cfg, sequences, model.config.max_position_embeddings - 2 - offset)
    res, n_train_windows = _residue_table(model, seqs, anns, heldout, cfg.ctx)
    n_windows = len(res) // cfg.ctx
    if n_windows == 0:
        raise SequenceError(f"{len(res)} residues do not fill one window of {cfg.ctx}; draw more --n_sequences")
    corpus = {"spec": cfg.sequences, "seed": cfg.seed, "eval_fraction": cfg.eval_fraction, "n_docs": len(seqs),
              "packing": "residues", "train_windows": [0, n_train_windows],
              "eval_windows": [n_train_windows, n_windows]}
    inputs = {"the model's weights": model.fingerprint,
              "the sequences": combine({"ids": repr([s.id for s in seqs]), "text": repr([s.sequence for s in seqs])})}
    widths = {h: a[0].shape[-1] for h, a in _forward(model, names, [seqs[0].sequence[:4]]).items()}
    metas = {h: StoreMeta(model=model.name, weights=model.weights, hook=h, layer=model.site(h).layer,
                          d_model=widths[h], ctx=cfg.ctx, keep_bos=False, prepend_bos=False, n_windows=n_windows,
                          dtype=cfg.dtype, corpus=corpus, inputs=inputs) for h in names}
    out = given_out(cfg.out, "BioDumpConfig")
    writers, _ = _open_writers({h: out / h for h in names}, metas, say=print)
    res.meta = dict(model=model.name, sequences=cfg.sequences, n_drawn=cfg.n_sequences, n_sequences=len(seqs),
                    rejected=rejected, heldout=int(heldout.sum()), rows=len(res), windows=n_windows,
                    ctx=cfg.ctx, hooks=names, regions=list(L.REGIONS), chains=list(L.CHAINS), species=cfg.species,
                    inputs=inputs)
    if writers:
        _write(model, cfg, writers, seqs, res)
    res.save(out)
    return res.meta


def _write(model, cfg, writers, seqs, res: Residues) -> None:
    """Run the sequences from the first row some store lacks; each store takes the rows it lacks
    (complete ones are not in `writers`)."""
    from tqdm import tqdm

    names = list(writers)
    start_row = min(w.windows_done for w in writers.values()) * cfg.ctx
    starts = np.r_[0, np.flatnonzero(res.seq[1:] != res.seq[:-1]) + 1]
    order = res.seq[starts].tolist()  # sequences in row order
    kept = np.diff(np.r_[starts, len(res)])  # rows kept of each (the cut to whole windows shortens some)
    row_of = np.r_[0, np.cumsum(kept)]
    first = int(np.searchsorted(row_of, start_row, side="right")) - 1
    skip = start_row - int(row_of[first])  # rows of the first sequence already written
    buffers = {h: [] for h in names}
    ahead = {h: writers[h].windows_done * cfg.ctx - start_row for h in names}  # a store the kill left ahead
    bar = tqdm(total=len(order), initial=first, unit="seq", disable=not cfg.progress, smoothing=0.1)
    t0, rows_left = time.time(), len(res) - start_row
    for b0 in range(first, len(order), cfg.batch):
        batch = [seqs[s].sequence for s in order[b0:b0 + cfg.batch]]
        acts = _forward(model, names, batch)
        for h in names:
            rows = np.concatenate([a[:k] for a, k in zip(acts[h], kept[b0:b0 + cfg.batch])])
            rows = rows[skip:] if b0 == first else rows
            rows, ahead[h] = rows[ahead[h]:], max(0, ahead[h] - len(rows))
            buffers[h].append(rows)
            _drain(writers[h], buffers[h], cfg.ctx, res.token, final=b0 + cfg.batch >= len(order))
        bar.update(len(batch))
    bar.close()
    for w in writers.values():
        w.finish()
    if cfg.progress:
        print(f"{rows_left:,} residue rows x {len(names)} stores in {time.time() - t0:.0f} s", flush=True)


def _drain(writer, buffer: list[np.ndarray], ctx: int, tokens: np.ndarray, final: bool) -> None:
    """Write the buffer's whole windows (up to the store's size); keep the rest."""
    rows = np.concatenate(buffer)
    room = (writer.meta.n_windows - writer.windows_done) * ctx
    n = min(len(rows) // ctx * ctx, room)
    if n:
        r0 = writer.windows_done * ctx
        writer.write(rows[:n].reshape(-1, ctx, rows.shape[1]), tokens[r0:r0 + n].reshape(-1, ctx))
        writer.flush()
    buffer[:] = [rows[n:]] if not final else []
