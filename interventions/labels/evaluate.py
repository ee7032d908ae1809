"""The labels' scores on held-out text beside their baselines (what `mechinterp label --score` runs).

Held-out excerpts are computed once per (SAE, held-out size, excerpt length) and cached in
OUT/heldout.npz. Rows of the table: the offline labels, the same labels on the wrong latents
(shuffled), the top-token-only label, and an LLM's own labels when an explainer is given (on a
seeded sample of the scored latents; the offline labels are rescored on the same sample).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from interventions.labels.excerpts import Excerpts
from interventions.labels.score import ScoreConfig, scorable, score_labels, shuffled, top_token
from mechinterp.formats.feature_stats import load_feature_stats
from mechinterp.formats.store import open_store
from mechinterp.views.figures import score_distributions

HELDOUT = "heldout.npz"


def _excerpts(model, sae, export, cfg, length: int, out: Path) -> tuple[Excerpts, dict]:
    from interventions.labels.heldout import heldout_excerpts, heldout_windows
    from mechinterp.formats.fingerprint import fingerprint
    from mechinterp.formats.sae import CFG, WEIGHTS, read_cfg, store_path

    store = open_store(store_path(read_cfg(export)))
    key = {"sae": str(Path(export).resolve()), "weights": fingerprint(export, only=(WEIGHTS, CFG)),
           "tokens": cfg.heldout_tokens, "length": length, "corpus": store.meta.corpus}
    cache, meta = out / HELDOUT, out / "heldout.json"
    t0 = time.perf_counter()
    if cache.exists() and meta.exists() and json.loads(meta.read_text()) == key:
        ex = Excerpts.load(cache)
    else:
        windows = heldout_windows(model, store.meta.corpus, store.meta.ctx, cfg.heldout_tokens)
        ex = heldout_excerpts(model, [sae], windows, length)[0]
        out.mkdir(parents=True, exist_ok=True)
        ex.save(cache)
        meta.write_text(json.dumps(key))
    return ex, {"excerpts": ex.n, "length": length, "tokens": int(ex.tokens.size),
                "wall_s": time.perf_counter() - t0}


def _top_tokens(stats, export) -> np.ndarray:
    """The token of each latent's strongest activation (-1: none)."""
    from mechinterp.formats.sae import read_cfg, store_path

    store = open_store(stats.summary.get("store") or store_path(read_cfg(export)))
    rows = stats["top_rows"][:, 0]
    out = np.full(len(rows), -1, np.int64)
    for i, r in enumerate(rows):
        if r >= 0:
            w, p = store.row_location(int(r))
            out[i] = int(store.window_tokens(w)[p])
    return out


def evaluate_labels(model, sae, export, labels: list[dict], cfg, score_cfg: ScoreConfig, length: int,
                    out: Path, lm=None) -> dict:
    stats = load_feature_stats(cfg.stats)
    freq = stats["freq"]
    ex, held = _excerpts(model, sae, export, cfg, length, out)
    latents = scorable(ex, labels, score_cfg)
    t0 = time.perf_counter()
    rows = {"offline labels": score_labels(labels, ex, freq, cfg=score_cfg, latents=latents)}
    rows["same labels, shuffled"] = score_labels(shuffled(labels, latents, score_cfg.seed), ex, freq,
                                                 cfg=score_cfg, latents=latents)
    rows["top token only"] = score_labels(top_token(labels, _top_tokens(stats, export)), ex, freq,
                                          cfg=score_cfg, latents=latents)
    score_s = time.perf_counter() - t0
    if lm is not None:
        from interventions.labels.llm_run import llm_rows

        rows.update(llm_rows(lm, cfg.llm_latents, model, export, labels, ex, freq, stats, score_cfg, latents, out))
    score_distributions({k: [v["detection"] for v in r["per_latent"].values()] for k, r in rows.items()},
                        out / "scores.png", f"detection on held-out excerpts ({len(latents)} latents)")
    return {"sae": str(export), "heldout": held, "offline": rows["offline labels"]["summary"],
            "table": {k: {m: r["summary"].get(m) for m in ("n", "detection", "fuzzing", "acc14")} for k, r in rows.items()},
            "by_density": {k: r["summary"].get("by_density") for k, r in rows.items()},
            "score_s": score_s, "score_config": vars(score_cfg),
            "per_latent": {k: r["per_latent"] for k, r in rows.items()}}
