"""Offline labels: a short name for every latent from the statistics the lab already computes.

    labels = offline_labels(stats.arrays, token_text, logits=logit_tables, cfg=LabelConfig())

Each latent gets a *rule* (what it fires on) and a label that says it. Three kinds of rule are fitted
from the firing counts of sae_jax/token_mass.py, and the one that best separates excerpts where the
latent fires from excerpts where it does not is kept:

- token:    the current token is one of a set        (" Mary" / " John" / " Tom")
- after:    the previous token is one of a set       (after " of" / " in")
- position: the token sits near the window's start   (window start, positions 0-2)

A set is grown greedily in order of precision (the share of a token's occurrences on which the
latent fires); each step's expected detection score on excerpts of `excerpt` tokens is
    tpr = firings covered / all firings,   fpr = 1 - (1 - false rows / corpus rows) ** excerpt
    score = (tpr + 1 - fpr) / 2            (balanced accuracy, as the scorer measures it)
and the best prefix wins. A latent whose best score stays below `broad_below` is labelled mixed,
with its rule kept (the simulator still uses it) and, when logit tables are given, the tokens its
decoder promotes appended (the output side is in every label's evidence). Lift = share of the latent's firings on a token over the
token's share of the corpus. Numpy only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mechinterp.formats.bounds import bounds, check_bounds


@dataclass(frozen=True)
class LabelConfig:
    excerpt: int = field(default=32, metadata=bounds(1))
    """Tokens per excerpt the rules are fitted for (the scorer's excerpt length)."""
    max_set: int = field(default=24, metadata=bounds(1))
    """Most tokens in a rule's set."""
    max_positions: int = field(default=4, metadata=bounds(1))
    """Most window positions in a position rule (it names the window's start, not a span of it)."""
    shown: int = field(default=3, metadata=bounds(1))
    """Tokens named in the label text."""
    broad_below: float = field(default=0.6, metadata=bounds(0, 1))
    """Expected detection score under which a latent's label says "mixed" (no sharp input rule)."""

    def __post_init__(self):
        check_bounds(self)


def _best_prefix(ids: np.ndarray, fires: np.ndarray, occurs: np.ndarray, n_fire: int, n_rows: int,
                 cfg: LabelConfig) -> tuple[float, np.ndarray, float, float]:
    """(score, chosen ids, tpr, fpr) of the best precision-ordered prefix of a candidate set."""
    ok = (ids >= 0) & (fires > 0) & (occurs > 0)          # -1 (no previous token) is the position rule's
    ids, fires, occurs = ids[ok], fires[ok].astype(np.float64), occurs[ok].astype(np.float64)
    if not len(ids):
        return 0.5, ids, 0.0, 0.0
    order = np.lexsort((-fires, -fires / occurs))[:cfg.max_set]
    tpr = np.cumsum(fires[order]) / max(n_fire, 1)
    false_rows = np.clip(np.cumsum(occurs[order] - fires[order]), 0, None) / max(n_rows, 1)
    fpr = 1 - (1 - np.minimum(false_rows, 1)) ** cfg.excerpt
    score = (tpr + 1 - fpr) / 2
    j = int(np.argmax(score))
    return float(score[j]), ids[order[:j + 1]], float(tpr[j]), float(fpr[j])


def _quote(s: str) -> str:
    return '"' + s.replace("\n", "\\n").replace("\t", "\\t") + '"'


def _evidence(ids, fires, occurs, n_fire, n_rows, text, keep=8) -> list:
    out = []
    for t, c, n in zip(ids[:keep], fires[:keep], occurs[:keep]):
        if t < -1 or c <= 0:
            continue
        share_corpus = n / max(n_rows, 1)
        lift = (c / max(n_fire, 1)) / share_corpus if share_corpus > 0 else 0.0
        out.append([int(t), text(int(t)), int(c), round(float(c / max(n, 1)), 4), round(float(lift), 2)])
    return out


def offline_labels(arrays: dict, text: Callable[[int], str], logits: dict | None = None,
                   cfg: LabelConfig | None = None) -> list[dict]:
    """One label dict per latent (see mechinterp/formats/labels.py). `arrays`: feature statistics
    with the token-mass arrays; `text(id)`: a token's string (-1: the window start); `logits`: the
    browser's logit tables (up_ids, down_ids), or None."""
    cfg = cfg or LabelConfig()
    need = ("tok_ids", "tok_count", "prev_ids", "prev_count", "pos_count", "corpus_token_count")
    if any(k not in arrays for k in need):
        raise KeyError("the statistics have no token counts")
    count, n_rows = arrays["count"], int(arrays["n_tokens"])
    tok_corpus, prev_corpus = arrays["corpus_token_count"], arrays["corpus_prev_count"]
    pos_corpus, first_pos = arrays["corpus_position_count"], int(arrays["pos_first"])
    out = []
    for i in range(len(count)):
        n = int(count[i])
        lab: dict = {"i": i}
        if n == 0:
            out.append({**lab, "label": "dead", "kind": "dead"})
            continue
        t_ids, t_fire = arrays["tok_ids"][i].astype(np.int64), arrays["tok_count"][i]
        t_occ = np.where(t_ids >= 0, tok_corpus[np.clip(t_ids, 0, None)], 0)
        p_ids, p_fire = arrays["prev_ids"][i].astype(np.int64), arrays["prev_count"][i]
        p_occ = np.where(p_ids >= 0, prev_corpus[np.clip(p_ids, 0, None)], 0)   # -1 (window start): the position rule
        pos_fire = arrays["pos_count"][i]
        rules = {
            "token": _best_prefix(t_ids, t_fire, t_occ, n, n_rows, cfg),
            "after": _best_prefix(p_ids, p_fire, p_occ, n, n_rows, cfg),
            "position": _position_rule(pos_fire, pos_corpus, n, n_rows, cfg),
        }
        kind = max(rules, key=lambda k: rules[k][0])
        score, chosen, tpr, fpr = rules[kind]
        shown = [_quote(text(int(t))) for t in chosen[:cfg.shown]] if kind != "position" else []
        more = " …" if kind != "position" and len(chosen) > cfg.shown else ""
        if kind == "token":
            name = " / ".join(shown) + more
        elif kind == "after":
            name = "after " + " / ".join(shown) + more
        else:
            name = f"window start (positions {first_pos + chosen[0]}-{first_pos + chosen[-1]})"
        kind_out = "mixed" if score < cfg.broad_below else kind
        lab.update(kind=kind_out, rule={"tokens": [int(t) for t in chosen] if kind == "token" else [],
                                        "after": [int(t) for t in chosen] if kind == "after" else [],
                                        "positions": [first_pos + int(chosen[0]), first_pos + int(chosen[-1])]
                                        if kind == "position" else None},
                   expected={"tpr": round(tpr, 4), "fpr": round(fpr, 4)},
                   tokens=_evidence(t_ids, t_fire, t_occ, n, n_rows, text),
                   after=_evidence(p_ids, p_fire, p_occ, n, n_rows, text))
        if logits is not None:
            lab["promotes"] = [text(int(t)) for t in logits["up_ids"][i][:5]]
            lab["suppresses"] = [text(int(t)) for t in logits["down_ids"][i][:5]]
        if kind_out == "mixed":   # no sharp input rule: say so, and what it writes
            name = "mixed: " + name + (" → " + " / ".join(_quote(s) for s in lab["promotes"][:2]) if logits else "")
        lab["label"] = name
        out.append(lab)
    return out


def _position_rule(pos_fire: np.ndarray, pos_corpus: np.ndarray, n_fire: int, n_rows: int,
                   cfg: LabelConfig) -> tuple[float, np.ndarray, float, float]:
    """Positions 0..p of the stored rows, the best p (as _best_prefix, over prefixes of positions)."""
    p = min(len(pos_fire), cfg.max_positions)
    fires = np.cumsum(pos_fire[:p]).astype(np.float64)
    occurs = np.cumsum(pos_corpus[:p]).astype(np.float64)
    tpr = fires / max(n_fire, 1)
    fpr = 1 - (1 - np.clip(occurs - fires, 0, None) / max(n_rows, 1)) ** cfg.excerpt
    score = (tpr + 1 - fpr) / 2
    j = int(np.argmax(score))
    return float(score[j]), np.arange(j + 1), float(tpr[j]), float(fpr[j])
