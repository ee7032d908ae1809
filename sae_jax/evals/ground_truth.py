"""Ground-truth metrics: how well an SAE's latents recover the known features of a synthetic
world (sae_jax.ground_truth), scored on fresh samples of that world.

  mcc         mean |cos| between true features and decoder rows under the best one-to-one
              matching (Hungarian; SynthSAEBench's MCC, as sae_lens.synthetic computes it)
  recovered   fraction of true features whose best decoder row has |cos| >= 0.9
  feature_f1  per true feature: F1 of "its best-matching latent fires" against "it fires",
              averaged over the features that fired in the samples
  latent_*    per latent: precision / recall / F1 / accuracy against its best-matching true
              feature, averaged over latents (sae_lens's classification metrics)
  uniqueness  distinct true features matched by the latents' best matches / latents
plus L0, explained variance and shrinkage (mean ||x_hat|| / ||x||) on the same samples.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from mechinterp.formats.sae import decode_np, encode_np
from sae_jax.ground_truth import GroundTruth

RECOVERED_COS = 0.9


def cosines(decoder: np.ndarray, features: np.ndarray) -> np.ndarray:
    """|cos| [n_features, d_sae] between true features and decoder rows."""
    dec = decoder / np.maximum(np.linalg.norm(decoder, axis=1, keepdims=True), 1e-12)
    feat = features / np.linalg.norm(features, axis=1, keepdims=True)
    return np.abs(feat.astype(np.float32) @ dec.T.astype(np.float32))


def mcc(cos: np.ndarray) -> float:
    rows, cols = linear_sum_assignment(-cos)
    return float(cos[rows, cols].mean())


def _f1(tp, fp, fn):
    prec = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
    rec = np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1), 0.0)
    f1 = np.where(prec + rec > 0, 2 * prec * rec / np.maximum(prec + rec, 1e-12), 0.0)
    return prec, rec, f1


def fresh_samples(gt: GroundTruth, n_samples: int = 20_000, seed: int = 12345, chunk: int = 4096):
    """(x, coefficients) chunks drawn from the world with a seed the training store never uses."""
    rng = np.random.default_rng([seed, 7])
    for start in range(0, n_samples, chunk):
        yield gt.sample(min(chunk, n_samples - start), rng)


def ground_truth_metrics(weights: dict[str, np.ndarray], cfg: dict, features: np.ndarray, samples) -> dict:
    """Every metric above for one exported SAE (weights, cfg: mechinterp.formats.sae.load_export)
    against the true features [n_features, d], on `samples` (fresh_samples)."""
    cos = cosines(weights["W_dec"], features)
    best_latent, best_feature = cos.argmax(1), cos.argmax(0)
    n_feat, d_sae = cos.shape
    feat_counts = np.zeros((3, n_feat))   # tp, fp, fn of each feature's best latent
    lat_counts = np.zeros((4, d_sae))     # tp, fp, fn, tn of each latent against its best feature
    l0 = sse = shrink = 0.0
    n_fired = np.zeros(n_feat)
    sx, sxx, n = np.zeros(features.shape[1]), 0.0, 0
    for x, coef in samples:
        fired = coef > 0
        f = encode_np(weights, cfg, x)
        on = f > 0
        recon = decode_np(weights, f)
        a, b = on[:, best_latent], fired
        feat_counts += [(a & b).sum(0), (a & ~b).sum(0), (~a & b).sum(0)]
        a, b = on, fired[:, best_feature]
        lat_counts += [(a & b).sum(0), (a & ~b).sum(0), (~a & b).sum(0), (~a & ~b).sum(0)]
        n_fired += fired.sum(0)
        l0 += on.sum()
        sse += float(((recon - x) ** 2).sum())
        shrink += float((np.linalg.norm(recon, axis=1) / np.linalg.norm(x, axis=1)).sum())
        sx, sxx, n = sx + x.sum(0, dtype=np.float64), sxx + float((x.astype(np.float64) ** 2).sum()), n + len(x)
    _, _, feat_f1 = _f1(*feat_counts)
    lp, lr, lf1 = _f1(*lat_counts[:3])
    seen = n_fired > 0
    return dict(
        mcc=mcc(cos), recovered=float((cos.max(1) >= RECOVERED_COS).mean()),
        feature_f1=float(feat_f1[seen].mean()), features_seen=int(seen.sum()),
        latent_precision=float(lp.mean()), latent_recall=float(lr.mean()), latent_f1=float(lf1.mean()),
        latent_accuracy=float((lat_counts[0] + lat_counts[3]).mean() / n),
        uniqueness=float(len(np.unique(best_feature)) / d_sae),
        l0=l0 / n, true_l0=float(n_fired.sum() / n),
        explained_variance=1 - sse / (sxx - float((sx ** 2).sum()) / n), shrinkage=shrink / n,
        n_samples=n, d_sae=d_sae, n_features=n_feat,
    )
