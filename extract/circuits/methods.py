"""Circuit methods: each scores every edge of the graph; caching and resume wrap any of them.

A method is an object with a `name`, `settings(cfg)` (what its saved scores depend on beyond the
run's key: model, weights, task, prompts ...) and `run(ctx, saved, save)`, which returns its entry:
`scores` ([U, V], higher = more important) and whatever else it reports. A long method saves
partial progress through `save(entry)` and resumes from `saved`. `scores_for(name, ctx, cache)` is
the one wrapper: a method whose scores are saved with the same key and settings is not run again.
Adding a method is one class here and one line in METHODS (docs/extending.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from extract import patching as P
from extract.circuits.acdc import ACDCState, acdc, acdc_scores
from extract.circuits.edge_graph import CircuitGraph
from extract.circuits.scores import edge_scores


@dataclass
class Context:
    """What every method sees: the model, its edge graph, the task, the run's settings, the
    reference writes a removed edge carries, and the log."""
    model: object
    graph: CircuitGraph
    task: object
    cfg: object
    ref: torch.Tensor
    log: Callable[[str], None]
    cache: ScoreCache


class ScoreCache:
    """Per-method entries in one file, saved as each changes; entries saved under another key
    (model, weights, task, prompts ...) are dropped on open."""

    def __init__(self, path: Path, key: dict, log: Callable[[str], None] = print):
        self.path, self.key = path, key
        saved = torch.load(path, weights_only=False) if path.exists() else None
        self.methods = saved["methods"] if saved and saved.get("key") == key else {}
        if saved and not self.methods:
            differ = [k for k in key if saved.get("key", {}).get(k) != key[k]]
            log(f"  {path} holds scores for another {', '.join(differ) or 'run'}: recomputing")

    def get(self, method: str) -> dict | None:
        return self.methods.get(method)

    def put(self, method: str, value: dict) -> dict:
        self.methods[method] = value
        tmp = self.path.with_suffix(".tmp")
        torch.save({"key": self.key, "methods": self.methods}, tmp)
        tmp.replace(self.path)
        return value


def scores_for(name: str, ctx: Context) -> dict:
    """The method's entry, computed (or resumed) only when no complete one with its settings is saved."""
    method, cache = METHODS[name], ctx.cache
    settings = method.settings(ctx.cfg)
    saved = cache.get(name)
    if saved is not None and saved.get("settings", {}) != settings:
        saved = None  # other settings: start over
    if saved is not None and "scores" in saved:
        ctx.log(f"  {name}: scores from {cache.path} (same settings)")
        return saved
    t = time.time()
    entry = method.run(ctx, saved, lambda partial: cache.put(name, {"settings": settings, **partial}))
    entry = cache.put(name, {"settings": settings, "score_seconds": round(time.time() - t, 2), **entry})
    ctx.log(f"  {name}: scores in {entry['score_seconds']} s")
    return entry


class EdgeAttribution:
    """EAP (one gradient step) or EAP-IG (integrated gradients over `steps` points)."""

    def __init__(self, name: str, integrated: bool):
        self.name, self.integrated = name, integrated

    def settings(self, cfg) -> dict:
        return {}

    def run(self, ctx: Context, saved, save) -> dict:
        t0 = time.time()

        def progress(done, total):
            if done == total or done % max(1, total // 4) == 0:
                rate = done / max(time.time() - t0, 1e-9)
                ctx.log(f"    {self.name}: {done}/{total} backward passes, {rate:.2f}/s, ETA {(total - done) / rate:.0f} s")

        task = ctx.task
        steps = ctx.cfg.ig_steps if self.integrated else 1
        return {"scores": edge_scores(ctx.model, ctx.graph, task.clean, task.corrupt, task.grad_metric(), steps=steps,
                                      batch=ctx.cfg.batch, progress=progress)}


class NodePatching:
    """Edges scored by their ends' exact patching effects (denoising: the clean output of one node
    into the corrupted run), heads from one head-patching sweep, MLPs from one MLP sweep; an edge
    scores the smaller of its two ends' effects (the input and logits never limit it)."""
    name = "nodes"

    def settings(self, cfg) -> dict:
        return {}

    def run(self, ctx: Context, saved, save) -> dict:
        return {"scores": node_scores(ctx.model, ctx.graph, ctx.task)}


def node_scores(model, graph: CircuitGraph, task, max_rows: int = 1024) -> torch.Tensor:
    metric = task.patch_metric()
    cache = P.cache_sites(model, task.clean, ["attn.hook_z", "hook_mlp_out"])
    heads = P.head_sweep(model, task.corrupt, cache, metric, max_rows=max_rows)
    mlps = P.sweep(model, task.corrupt, cache, metric, "hook_mlp_out", [], lambda: (), max_rows=max_rows)
    base = float(metric(P.forward_end(model, task.corrupt)).mean())
    effect = torch.full((graph.n_up,), float("inf"))
    for layer in range(graph.n_layers):
        for h in range(graph.n_heads):
            effect[graph.head(layer, h)] = abs(float(heads[layer, h]) - base)
        effect[graph.mlp(layer)] = abs(float(mlps[layer]) - base)
    reader_effect = (graph.reader.float() * effect[None, :].clamp(max=1e30)).amax(1)
    reader_effect[graph.logits] = float("inf")
    return torch.minimum(effect[:, None], reader_effect[None, :]).clamp(max=1e30) * graph.valid


class ACDC:
    """EAP-IG's top edges pruned one by one with real patching (extract/circuits/acdc.py); saves its
    state after each decision, so an interrupted run resumes at the next edge."""
    name = "acdc"

    def settings(self, cfg) -> dict:
        return {"candidates": cfg.acdc_candidates, "threshold": cfg.acdc_threshold}

    def run(self, ctx: Context, saved, save) -> dict:
        cfg, graph = ctx.cfg, ctx.graph
        base = scores_for("eap_ig", ctx)["scores"]
        candidates = graph.select(base, max(1, int(cfg.acdc_candidates * graph.n_edges)), cfg.selection)
        resume = (saved or {}).get("acdc_state")
        if resume:
            ctx.log(f"  acdc: resuming at edge {resume['next']} of {len(resume['order'])}")
        else:
            ctx.log(f"  acdc: pruning {int(candidates.sum())} EAP-IG edges, threshold {cfg.acdc_threshold}")
        run = acdc(ctx.model, graph, ctx.task.clean, ctx.ref, candidates, ctx.task.grad_metric(), cfg.acdc_threshold,
                   state=ACDCState(**resume) if resume else None, log=ctx.log, speculate=cfg.acdc_speculate,
                   save=lambda st: save({"acdc_state": st.as_dict()}))
        circuit = {"edges": int(run.kept.sum()), "faithfulness": round(run.faithfulness, 4), "trials": run.trials,
                   "discarded": run.discarded, "candidates": len(run.order), "threshold": cfg.acdc_threshold,
                   "seconds": round(run.seconds, 1)}
        ctx.log(f"  acdc: {circuit['edges']} of {circuit['candidates']} edges kept, faithfulness "
                f"{run.faithfulness:.3f}, {run.trials} trials ({run.discarded} speculative ones run again) in "
                f"{run.seconds:.0f} s")
        return {"acdc_state": run.as_dict(), "acdc_circuit": circuit, "scores": acdc_scores(run, base),
                "score_seconds": round(run.seconds, 2)}


METHODS = {m.name: m for m in (EdgeAttribution("eap_ig", True), EdgeAttribution("eap", False), NodePatching(),
                               ACDC())}
