"""Sparse probing, sae-probes' protocol (Kantamneni et al. 2025; sae-probes 0.4.2, its "normal"
setting), where it differs from SAEBench's (interventions.evals.probing):

- the feature of a text is its last token's activation (and the SAE's latents there), not the mean;
- latents are ranked by |mean(pos) - mean(neg)| after each is divided by its mean nonzero |value|
  (sae-probes' mean_act_normalization), so a rarely-firing latent with large values is not favoured;
- the logistic regression's C is chosen from 10 values (1e5 .. 1e-5) by validation ROC AUC: the last
  min(20%, 100) training rows hold out when there are >= 128 of them, else 6 stratified folds
  (leave-two-out for <= 12); the final probe is fitted on all training rows, shuffled;
- the headline is test ROC AUC (accuracy is kept too), for k = 1, 2, 4, 8, 16; the baseline is the
  same regression on every raw dimension (sae-probes' "logreg" baseline).

The tasks are SAEBench's balanced one-vs-rest tasks per class (for sae-probes' binary datasets,
`saep:NAME`, that is its own positive-vs-negative task, once per side).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import LeavePOut, StratifiedKFold

from interventions.evals.labelled import LabelledSet
from interventions.evals.probing import balanced_tasks, class_means, sparse_probing, token_activations
from interventions.sae import TorchSAE

K_VALUES = (1, 2, 4, 8, 16)
CS = np.logspace(5, -5, 10)
SEED = 42  # sae-probes' default: its regressions' random_state and the final shuffle


def last_token_features(model, sae: TorchSAE, texts: list[str], hook: str, ctx: int = 128):
    """(raw [n, d], latents [n, d_sae]) at each text's last token of its first ctx (zeros for a text of BOS only)."""
    rows, offsets = token_activations(model, texts, hook, ctx)
    has = np.diff(offsets) > 0
    raw = np.zeros((len(texts), rows.shape[1]), np.float32)
    raw[has] = rows[offsets[1:][has] - 1]
    with torch.no_grad():
        latents = sae.encode(torch.from_numpy(raw).to(sae.W_enc.device)).cpu().numpy()
    latents[~has] = 0
    return raw, latents


def ranked_by_mean_diff(x: np.ndarray, is_pos: np.ndarray) -> np.ndarray:
    """Feature indices by |mean difference| of the mean-activation-normalised features, largest first."""
    x = x.astype(np.float64)
    scale = np.abs(x).sum(0) / ((x != 0).sum(0) + 1e-6)
    x = x / (scale + 1e-6)
    return np.argsort(-np.abs(x[is_pos].mean(0) - x[~is_pos].mean(0)), kind="stable")


def _validation_splits(y: np.ndarray, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    n = len(y)
    if n >= 128:
        n_val = min(int(0.2 * n), 100)
        return [(np.arange(n - n_val), np.arange(n - n_val, n))]
    cv = LeavePOut(2) if n <= 12 else StratifiedKFold(n_splits=6, shuffle=True, random_state=seed)
    return [(tr, va) for tr, va in cv.split(np.zeros(n), y) if len(np.unique(y[va])) == 2]


def best_c_probe(x_train, y_train, x_test, y_test, seed: int = SEED) -> dict:
    """The regression with C chosen by validation AUC, refitted on all training rows: test AUC and accuracy."""
    def fit(c, x, y):
        return LogisticRegression(C=c, random_state=seed, max_iter=1000).fit(x, y)

    val = []
    for c in CS:
        scores = [0.5 if len(np.unique(y_train[tr])) < 2 else
                  roc_auc_score(y_train[va], fit(c, x_train[tr], y_train[tr]).predict_proba(x_train[va])[:, 1])
                  for tr, va in _validation_splits(y_train, seed)]
        val.append(float(np.mean(scores)))
    best = int(np.argmax(val))
    order = np.random.RandomState(seed).permutation(len(x_train))
    clf = fit(CS[best], x_train[order], y_train[order])
    return dict(auc=float(roc_auc_score(y_test, clf.predict_proba(x_test)[:, 1])),
                acc=float((clf.predict(x_test) == y_test).mean()), val_auc=val[best], c=float(CS[best]))


def probe_set(data: LabelledSet, raw: tuple[np.ndarray, np.ndarray], latents: tuple[np.ndarray, np.ndarray],
              ks=K_VALUES, seed: int = 0) -> dict:
    """Per class and as the mean over classes: llm_full_auc, sae_top_k_auc / llm_top_k_auc, and the
    accuracies under the same names without _auc. raw / latents: (train features, test features)."""
    per_class = {}
    for c, name, tr, te in balanced_tasks(data, seed):
        ytr, yte = (data.train_y[tr] == c).astype(int), (data.test_y[te] == c).astype(int)
        full = best_c_probe(raw[0][tr], ytr, raw[1][te], yte)
        row = {"llm_full_auc": full["auc"], "llm_full": full["acc"]}
        for key, (xtr, xte) in (("llm", raw), ("sae", latents)):
            ranked = ranked_by_mean_diff(xtr[tr], ytr == 1)
            for k in ks:
                r = best_c_probe(xtr[tr][:, ranked[:k]], ytr, xte[te][:, ranked[:k]], yte)
                row[f"{key}_top_{k}_auc"], row[f"{key}_top_{k}"] = r["auc"], r["acc"]
            if key == "sae":
                row["sae_top_1_latent"] = int(ranked[0])
        per_class[name] = row
    return class_means(per_class, data)


def sparse_probing_saep(model, sae: TorchSAE, sets: list[LabelledSet], hook: str, ctx: int = 128, ks=K_VALUES,
                        seed: int = 0, progress=None) -> dict:
    """{set name: probe_set(...)} plus 'mean' over sets, with the protocol named."""
    out = sparse_probing(model, sae, sets, hook, ctx, ks, seed, progress, features=last_token_features,
                         probe=probe_set)
    return out | {"protocol": "sae-probes 0.4.2 (normal setting)"}
