"""Sparse probing (SAEBench's protocol): can a probe on the k latents that differ most between a
class and the rest predict the class, and how does that compare with the same probe on k raw
dimensions, and with a probe on every raw dimension?

For each labelled text (truncated to `ctx` tokens), the site's activations and the SAE's latents
are mean-pooled over the non-BOS positions (latents encoded per token, then pooled). For each class
of a set: positives are its texts, negatives as many texts sampled evenly from the other classes
(one-vs-rest, balanced); the k features with the largest |mean(pos) - mean(neg)| on the training
texts are kept and a logistic regression (sklearn, L2, C=1) is fitted on them; accuracy is measured
on the test texts. A set's number is the mean over its classes.

Differences from SAEBench: the full probe on every raw dimension is sklearn's on standardised
inputs (SAEBench trains a torch probe on a GPU); k includes 20. sae-probes (Kantamneni et al. 2025)
probes the last token instead of the mean and picks C by cross-validation.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from interventions.evals.labelled import LabelledSet
from interventions.sae import TorchSAE
from interventions.shift.probe import site_batches, tokenize

K_VALUES = (1, 2, 5, 20)


_TOKEN_ACTS: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
"""Per-token activations already read in this process, by (model, hook, ctx, texts): evaluating
several SAEs of one site in one process runs the model once."""


def token_activations(model, texts: list[str], hook: str, ctx: int = 128, batch: int = 16):
    """(rows [n_tokens, d] fp16: every text's non-BOS positions of its first ctx tokens, in order;
    offsets [n + 1]: text i is rows[offsets[i]:offsets[i + 1]])."""
    key = (model.name, hook, ctx, hash(tuple(texts)))
    if key not in _TOKEN_ACTS:
        ids = [row[:ctx] for row in tokenize(model, texts)]
        per_text: list[np.ndarray] = [np.zeros((0, model.d_model), np.float16)] * len(ids)
        for idx, acts, mask in site_batches(model, ids, hook, batch, desc=f"reading {len(ids)} texts"):
            for j, i in enumerate(idx):
                per_text[i] = acts[j][mask[j]].numpy().astype(np.float16)
        offsets = np.concatenate([[0], np.cumsum([len(a) for a in per_text])])
        _TOKEN_ACTS[key] = (np.concatenate(per_text), offsets)
    return _TOKEN_ACTS[key]


def pooled_features(model, sae: TorchSAE, texts: list[str], hook: str, ctx: int = 128,
                    chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """(raw [n, d], latents [n, d_sae]): the mean over each text's non-BOS positions (first ctx tokens);
    latents are encoded per token, then averaged."""
    rows, offsets = token_activations(model, texts, hook, ctx)
    n = len(texts)
    raw = np.zeros((n, rows.shape[1]), np.float32)
    latents = np.zeros((n, sae.d_sae), np.float32)
    i = 0
    while i < n:  # whole texts per chunk, so each text's rows are summed in one reduceat
        j = i + 1
        while j < n and offsets[j + 1] - offsets[i] <= chunk:
            j += 1
        x = rows[offsets[i]:offsets[j]].astype(np.float32)
        full = i + np.flatnonzero(np.diff(offsets[i:j + 1]) > 0)  # a text of BOS only stays 0
        if len(full):
            with torch.no_grad():
                f = sae.encode(torch.from_numpy(x).to(sae.W_enc.device)).cpu().numpy()
            starts = offsets[full] - offsets[i]
            raw[full], latents[full] = np.add.reduceat(x, starts), np.add.reduceat(f, starts)
        i = j
    counts = np.maximum(np.diff(offsets), 1)[:, None]
    return raw / counts, latents / counts


def one_vs_rest(y: np.ndarray, cls: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of a balanced one-vs-rest task: every text of `cls`, and as many others drawn evenly
    from the other classes (SAEBench's prepare_probe_data)."""
    pos = np.flatnonzero(y == cls)
    others = [c for c in np.unique(y) if c != cls]
    per = -(-len(pos) // len(others))
    neg = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per] for c in others])
    neg = rng.permutation(neg)[:len(pos)]
    return rng.permutation(np.concatenate([pos, neg]))


def balanced_tasks(data: LabelledSet, seed: int = 0):
    """Per class: (index, name, train rows, test rows) of its balanced one-vs-rest task, drawn in order
    from one generator seeded with `seed`."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(data.classes):
        yield c, name, one_vs_rest(data.train_y, c, rng), one_vs_rest(data.test_y, c, rng)


def top_k_mean_diff(x: np.ndarray, is_pos: np.ndarray, k: int) -> np.ndarray:
    diff = np.abs(x[is_pos].mean(0) - x[~is_pos].mean(0))
    return np.argsort(-diff, kind="stable")[:k]


def probe_accuracy(x_train, y_train, x_test, y_test, standardise: bool = False) -> float:
    clf = LogisticRegression(C=1.0, max_iter=1000)
    if standardise:
        clf = make_pipeline(StandardScaler(), clf)
    clf.fit(x_train, y_train)
    return float((clf.predict(x_test) == y_test).mean())


def probe_set(data: LabelledSet, raw: tuple[np.ndarray, np.ndarray], latents: tuple[np.ndarray, np.ndarray],
              ks=K_VALUES, seed: int = 0, full: bool = True) -> dict:
    """Accuracies on one set. raw / latents: (train features, test features). Returns the mean over
    classes of llm_full, llm_top_k and sae_top_k for every k, and the same per class."""
    per_class = {}
    for c, name, tr, te in balanced_tasks(data, seed):
        ytr, yte = data.train_y[tr] == c, data.test_y[te] == c
        row = {}
        if full:
            row["llm_full"] = probe_accuracy(raw[0][tr], ytr, raw[1][te], yte, standardise=True)
        for key, (xtr, xte) in (("llm", raw), ("sae", latents)):
            for k in ks:
                keep = top_k_mean_diff(xtr[tr], ytr, k)
                row[f"{key}_top_{k}"] = probe_accuracy(xtr[tr][:, keep], ytr, xte[te][:, keep], yte)
                if k == ks[0] and key == "sae":
                    row["sae_top_1_latent"] = int(keep[0])
        per_class[name] = row
    return class_means(per_class, data)


def class_means(per_class: dict[str, dict], data: LabelledSet) -> dict:
    """A set's numbers: the mean over its classes of each (not the latent ids), the per-class rows, sizes."""
    keys = [k for k in next(iter(per_class.values())) if not k.endswith("_latent")]
    out = {k: float(np.mean([r[k] for r in per_class.values()])) for k in keys}
    out.update(per_class=per_class, n_train=int(len(data.train_y)), n_test=int(len(data.test_y)))
    return out


def sparse_probing(model, sae: TorchSAE, sets: list[LabelledSet], hook: str, ctx: int = 128, ks=K_VALUES,
                   seed: int = 0, progress=None, features=pooled_features, probe=probe_set) -> dict:
    """{set name: probe(...)} plus 'mean' over sets of every number; features(model, sae, texts, hook,
    ctx) -> (raw, latents) per text."""
    out = {}
    for data in sets:
        if progress:
            progress(f"sparse probing: {data.name} ({len(data.train_texts)} + {len(data.test_texts)} texts)")
        raw_tr, lat_tr = features(model, sae, data.train_texts, hook, ctx)
        raw_te, lat_te = features(model, sae, data.test_texts, hook, ctx)
        out[data.name] = probe(data, (raw_tr, raw_te), (lat_tr, lat_te), ks, seed)
    keys = [k for k in next(iter(out.values())) if isinstance(out[next(iter(out))][k], float)]
    out["mean"] = {k: float(np.mean([out[s.name][k] for s in sets])) for k in keys}
    return out
