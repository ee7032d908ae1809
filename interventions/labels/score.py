"""Scoring labels the way SAEBench and delphi do: detection and fuzzing on held-out excerpts.

For every alive latent with at least `min_active` activating excerpts:
- activating excerpts: up to `n_examples`, evenly spaced in the ranking by the excerpt's maximum
  activation (every quantile is represented, as delphi samples them), or (sampling "saebench") the
  strongest half plus a draw weighted by activation squared, as SAEBench's autointerp;
- non-activating excerpts: `n_examples` drawn at random among those where the latent never fires;
- detection: a simulator reads the label and says, per excerpt, whether the latent fires in it;
  balanced accuracy (TPR + TNR) / 2; `acc14` weighs the same rates as SAEBench's 4 activating and
  10 random examples (plain accuracy; answering "never" scores 10/14 = 0.714 there);
- fuzzing: per token of the activating excerpts, does it fire; balanced accuracy over the tokens.

A simulator is a function (label dict, tokens, prev, pos [n, L]) -> per-token predictions [n, L]
(bool, or a probability; > 0.5 means fires). `rule_simulator` reads an offline label's rule.
Numpy only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from interventions.labels.excerpts import Excerpts
from mechinterp.formats.bounds import bounds, check_bounds

DENSITY_BUCKETS = (0.0, 1e-3, 1e-2, 1e-1, 1.0)


@dataclass(frozen=True)
class ScoreConfig:
    n_examples: int = field(default=20, metadata=bounds(1))
    """Activating and non-activating excerpts per latent (each)."""
    min_active: int = field(default=5, metadata=bounds(1))
    """Latents with fewer activating held-out excerpts are not scored."""
    sampling: str = field(default="quantiles", metadata={"choices": ("quantiles", "saebench")})
    """Activating excerpts: evenly over the ranks of all of them (quantiles, as delphi), or half the
    strongest and half drawn with weight activation^2 (saebench, as SAEBench's autointerp)."""
    max_latents: int | None = field(default=None, metadata=bounds(1))
    """Score at most this many latents (a seeded sample; None: all that qualify)."""
    seed: int = 0

    def __post_init__(self):
        check_bounds(self)


def rule_simulator(label: dict, tokens: np.ndarray, prev: np.ndarray, pos: np.ndarray) -> np.ndarray:
    rule = label.get("rule") or {}
    fires = np.zeros(tokens.shape, bool)
    if rule.get("tokens"):
        fires |= np.isin(tokens, rule["tokens"])
    if rule.get("after"):
        fires |= np.isin(prev, rule["after"])
    if rule.get("positions"):
        lo, hi = rule["positions"]
        fires |= (pos >= lo) & (pos <= hi)
    return fires


def sample(ex: Excerpts, i: int, cfg: ScoreConfig, rng: np.random.Generator):
    """(activating excerpt ids, their per-token activations [n, L], non-activating ids), or None when
    the latent fires in too few excerpts, or in all of them."""
    e, o, v = ex.firing(i)
    act_ids, inv = np.unique(e, return_inverse=True)
    if len(act_ids) < cfg.min_active:
        return None
    mx = np.zeros(len(act_ids))
    np.maximum.at(mx, inv, v)
    order = np.argsort(-mx, kind="stable")
    n = min(cfg.n_examples, len(order))
    if cfg.sampling == "saebench":
        top, rest = order[:n // 2], order[n // 2:]
        w = mx[rest] ** 2
        drawn = rng.choice(rest, n - len(top), replace=False, p=w / w.sum()) if len(rest) and w.sum() > 0 else rest[:0]
        pick = np.sort(act_ids[np.r_[top, drawn]])
    else:
        pick = np.sort(act_ids[order[np.unique(np.linspace(0, len(order) - 1, n).round().astype(int))]])
    row = np.clip(np.searchsorted(pick, e), 0, len(pick) - 1)
    hit = pick[row] == e
    dense = np.zeros((len(pick), ex.tokens.shape[1]), np.float32)
    dense[row[hit], o[hit]] = v[hit]
    quiet = np.setdiff1d(np.arange(ex.n), act_ids, assume_unique=True)
    if not len(quiet):                                   # fires everywhere: nothing to tell it from
        return None
    return pick, dense, rng.choice(quiet, min(cfg.n_examples, len(quiet)), replace=False)


def _balanced(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    tpr = float(pred[truth].mean()) if truth.any() else np.nan
    tnr = float((~pred[~truth]).mean()) if (~truth).any() else np.nan
    return np.nanmean([tpr, tnr]), tpr, tnr


def score_latent(label: dict, ex: Excerpts, drawn, simulate: Callable) -> dict:
    pick, dense, non = drawn
    ids = np.concatenate([pick, non])
    p = np.asarray(simulate(label, ex.tokens[ids], ex.prev[ids], ex.pos[ids]), np.float64) > 0.5
    truth = np.r_[np.ones(len(pick), bool), np.zeros(len(non), bool)]
    det, tpr, tnr = _balanced(p.any(1), truth)
    fuzz, _, _ = _balanced(p[:len(pick)].ravel(), dense.ravel() > 0)
    return {"detection": det, "fuzzing": fuzz, "tpr": tpr, "tnr": tnr,
            "acc14": (4 * tpr + 10 * tnr) / 14, "n_active": len(pick), "n_quiet": len(non)}


def score_labels(labels: list[dict], ex: Excerpts, freq: np.ndarray, simulate: Callable = rule_simulator,
                 cfg: ScoreConfig | None = None, latents: np.ndarray | None = None) -> dict:
    """Per-latent scores and their summary. `labels` indexed by latent; `latents`: which to score
    (default: every alive latent with enough activating excerpts)."""
    cfg = cfg or ScoreConfig()
    if latents is None:
        latents = scorable(ex, labels, cfg)
    per = {}
    for i in latents:
        drawn = sample(ex, int(i), cfg, np.random.default_rng([cfg.seed, int(i)]))
        if drawn is not None:
            per[int(i)] = score_latent(labels[int(i)], ex, drawn, simulate)
    return {"per_latent": per, "summary": summarise(per, freq)}


def scorable(ex: Excerpts, labels: list[dict], cfg: ScoreConfig) -> np.ndarray:
    """Latents with a label that is not dead and at least min_active activating excerpts (a seeded
    sample of max_latents of them when that is set)."""
    lat, first = np.unique(ex.lat, return_index=True)
    n_exc = np.array([len(np.unique(ex.exc[a:b])) for a, b in zip(first, np.r_[first[1:], len(ex.lat)])], int)
    ok = lat[(n_exc >= cfg.min_active)]
    ok = np.array([i for i in ok if i < len(labels) and labels[i].get("kind") != "dead"], np.int64)
    if cfg.max_latents is not None and len(ok) > cfg.max_latents:
        ok = np.sort(np.random.default_rng([cfg.seed, 1]).choice(ok, cfg.max_latents, replace=False))
    return ok


def summarise(per: dict, freq: np.ndarray) -> dict:
    """Means and medians over latents (None where no latent has the score), and detection by density."""
    if not per:
        return {"n": 0}
    ids = np.array(sorted(per))
    out = {"n": len(ids)}

    def mean(values, f=np.nanmean):
        v = np.array([np.nan if x is None else x for x in values], np.float64)
        return float(f(v)) if np.isfinite(v).any() else None
    for k in ("detection", "fuzzing", "acc14"):
        out[k] = mean([per[i].get(k) for i in ids])
        out[k + "_median"] = mean([per[i].get(k) for i in ids], np.nanmedian)
    buckets = []
    for lo, hi in zip(DENSITY_BUCKETS[:-1], DENSITY_BUCKETS[1:]):
        m = (freq[ids] >= lo) & ((freq[ids] < hi) if hi < 1 else True)
        buckets.append({"freq": [lo, hi], "n": int(m.sum()), "detection": mean([per[i]["detection"] for i in ids[m]])})
    out["by_density"] = buckets
    return out


def shuffled(labels: list[dict], latents: np.ndarray, seed: int = 0) -> list[dict]:
    """The baseline: each scored latent gets another scored latent's label (a derangement)."""
    out = list(labels)
    cycle = latents[np.random.default_rng([seed, 2]).permutation(len(latents))]
    for a, b in zip(cycle, np.roll(cycle, -1)):
        out[int(a)] = labels[int(b)]
    return out


def top_token(labels: list[dict], top_tokens: np.ndarray) -> list[dict]:
    """The baseline: the label is the token of the latent's strongest activation, alone."""
    return [{"i": lab["i"], "label": "", "rule": {"tokens": [int(t)] if t >= 0 else []}}
            for lab, t in zip(labels, top_tokens)]
