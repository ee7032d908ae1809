"""An LLM labels a sample of latents and simulates labels on held-out excerpts (what `mechinterp label
--explainer` adds to the score table). Both steps are cached and resume:

- its labels go to EXPORT/labels.<name>.json after every latent (a failure is recorded as the
  latent's "error" and retried on the next run);
- its simulations go to OUT/llm_scores.<name>.json after every latent.

Rows added to the table (all on the same sampled latents): the LLM's labels read by the LLM; the
offline labels read by the LLM; the offline labels read by the rule simulator. The LLM answers per
excerpt, so its rows have detection (and AUROC of P(yes)) but no fuzzing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from interventions.labels.llm import EXPLAIN, SIMULATE, LLMError, mark
from interventions.labels.score import sample, score_labels, summarise
from mechinterp.formats.atomic import atomic_write_text
from mechinterp.formats.labels import labels_path, load_labels, save_labels
from mechinterp.formats.store import open_store


def example_texts(stats, store, tok, i: int, n: int = 6) -> list[str]:
    """Latent i's top-activating contexts (from the statistics), active tokens marked."""
    offs, out = stats["ctx_offsets"], []
    for r, acts in zip(stats["top_rows"][i][:n], stats["top_ctx"][i][:n]):
        if r < 0:
            continue
        w, p = store.row_location(int(r))
        toks = np.asarray(store.window_tokens(w))
        keep = [(j, p + o) for j, o in enumerate(offs) if 0 <= p + o < len(toks) and np.isfinite(acts[j])]
        out.append(mark([tok.decode([int(toks[t])]) for _, t in keep], np.array([acts[j] for j, _ in keep])))
    return out


def _auroc(p: np.ndarray, truth: np.ndarray) -> float:
    pos, neg = p[truth], p[~truth]
    if not len(pos) or not len(neg):
        return float("nan")
    return float(((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (len(pos) * len(neg)))


def explain(lm, latents, stats, store, tok, export, progress=True) -> dict[int, dict]:
    path = labels_path(export, lm.name)
    done = {lab["i"]: lab for lab in load_labels(path)["labels"]} if path.exists() else {}
    t0, todo = time.perf_counter(), [int(i) for i in latents if "error" in done.get(int(i), {"error": 1})]
    for n, i in enumerate(todo):
        try:
            text = lm.generate(EXPLAIN.format(examples="\n".join(f"{k + 1}. {e}" for k, e in
                                                                  enumerate(example_texts(stats, store, tok, i)))))
            done[i] = {"i": i, "label": text} if text else {"i": i, "label": "", "error": "an empty answer"}
        except LLMError as e:
            done[i] = {"i": i, "label": "", "error": str(e)}
        save_labels(path, list(done.values()), f"llm:{lm.name}", int(stats["count"].shape[0]))
        if progress and (n % 8 == 0 or n == len(todo) - 1):
            rate = (n + 1) / (time.perf_counter() - t0)
            print(f"  explained {n + 1}/{len(todo)} latents, {rate:.2f}/s, ETA {(len(todo) - n - 1) / rate:.0f}s", flush=True)
    return done


def simulate(lm, name: str, labels: dict[int, dict], ex, latents, score_cfg, tok, cache: Path, progress=True) -> dict:
    """Per-latent detection of the LLM reading `labels` on the same excerpts the rule scorer draws."""
    got = json.loads(cache.read_text()) if cache.exists() else {}
    per = {int(k): v for k, v in got.get(name, {}).items()}
    t0, todo = time.perf_counter(), [int(i) for i in latents if int(i) not in per]
    for n, i in enumerate(todo):
        lab = labels.get(i, {})
        drawn = sample(ex, i, score_cfg, np.random.default_rng([score_cfg.seed, i]))
        if drawn is None or not lab.get("label"):
            per[i] = {"detection": None, "error": lab.get("error", "no label")}
        else:
            pick, _, non = drawn
            ids = np.concatenate([pick, non])
            prompts = [SIMULATE.format(label=lab["label"], excerpt=tok.decode([int(t) for t in ex.tokens[e]])) for e in ids]
            truth = np.r_[np.ones(len(pick), bool), np.zeros(len(non), bool)]
            try:
                p = lm.yes_probability(prompts)
                tpr, tnr = float((p[truth] > 0.5).mean()), float((p[~truth] <= 0.5).mean())
                per[i] = {"detection": (tpr + tnr) / 2, "tpr": tpr, "tnr": tnr, "acc14": (4 * tpr + 10 * tnr) / 14,
                          "auroc": _auroc(p, truth), "fuzzing": None}
            except LLMError as e:
                per[i] = {"detection": None, "error": str(e)}
        got[name] = {str(k): v for k, v in per.items()}
        atomic_write_text(cache, json.dumps(got))
        if progress and (n % 8 == 0 or n == len(todo) - 1):
            rate = (n + 1) / (time.perf_counter() - t0)
            print(f"  simulated {name}: {n + 1}/{len(todo)} latents, {rate:.2f}/s, ETA {(len(todo) - n - 1) / rate:.0f}s",
                  flush=True)
    return per


def llm_rows(lm, n_latents: int, model, export, labels, ex, freq, stats, score_cfg, latents, out: Path) -> dict:
    rng = np.random.default_rng([score_cfg.seed, 3])
    sub = np.sort(rng.choice(latents, min(n_latents, len(latents)), replace=False))
    store = open_store(stats.summary["store"])
    tok = model.tokenizer
    theirs = explain(lm, sub, stats, store, tok, export)
    cache = out / f"llm_scores.{labels_path(export, lm.name).stem.split('.', 1)[1]}.json"
    ours = {lab["i"]: lab for lab in labels}
    rows = {}
    for name, labs in ((f"LLM labels, LLM simulator ({len(sub)} latents)", theirs),
                       (f"offline labels, LLM simulator ({len(sub)} latents)", ours)):
        per = simulate(lm, name, labs, ex, sub, score_cfg, tok, cache)
        ok = {i: v for i, v in per.items() if v.get("detection") is not None}
        rows[name] = {"per_latent": per, "summary": {**summarise(ok, freq), "failed": len(per) - len(ok),
                                                     "auroc": _mean([v["auroc"] for v in ok.values()])}}
    rows[f"offline labels, rule simulator ({len(sub)} latents)"] = score_labels(labels, ex, freq, cfg=score_cfg, latents=sub)
    return rows


def _mean(v: list) -> float | None:
    v = [x for x in v if x is not None and np.isfinite(x)]
    return float(np.mean(v)) if v else None
