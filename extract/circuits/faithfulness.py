"""Faithfulness of circuits and the MIB summaries of a faithfulness curve.

faithfulness(C) = (m(C) - m(empty)) / (m(model) - m(empty)): m(C) is the metric with every edge
outside C reading its reference write (a corrupted run's, or the mean over a reference set);
the empty circuit is then exactly the corrupted (or mean-ablated) run, the full one the model.

The curve: for each method, the top n% of its edges (MIB's .1%, .2%, .5%, 1%, 2%, 5%, 10%, 20%,
50%, 100%), pruned to input -> logits paths; x = edges left after pruning. CPR is the area under
the curve and CMD the area between the curve and 1, both by the trapezoid rule over log(edges)
as MIB's evaluate_area_under_curve computes them, here divided by the x range so that a flat
curve at f gives CPR = f and CMD = |1 - f| (higher CPR and lower CMD are better).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch

from extract.circuits.edge_graph import CircuitGraph
from extract.circuits.scores import Metric, patch_edges

PERCENTAGES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def mean_writes(writes: torch.Tensor, n: int) -> torch.Tensor:
    """Per-position means over a reference set's writes [U, m, pos, d], broadcast to n prompts."""
    return writes.mean(1, keepdim=True).expand(-1, n, -1, -1)


def faithfulness(model, graph: CircuitGraph, clean: torch.Tensor, ref: torch.Tensor, circuits: list[torch.Tensor],
                 metric: Metric, max_rows: int = 64, progress: Callable[[int, int], None] | None = None) -> dict:
    """{'faithfulness': [k], 'metric': [k], 'full', 'empty'} for kept-edge masks [U, V]."""
    none = torch.zeros_like(graph.valid)
    removed = torch.stack([graph.valid & ~c for c in circuits] + [graph.valid, none])
    per_prompt = patch_edges(model, graph, clean, ref, removed, metric, max_rows=max_rows, progress=progress)
    values = per_prompt.mean(1)
    empty, full = float(values[-2]), float(values[-1])
    if abs(full - empty) < 1e-6:
        raise ValueError(f"the metric is the same with and without the circuit's complement ({full:.4f}): "
                         "the corruption does not change the behaviour")
    return {"faithfulness": [(float(v) - empty) / (full - empty) for v in values[:-2]],
            "metric": [float(v) for v in values[:-2]], "full": full, "empty": empty,
            "per_prompt": (per_prompt[:-2] - empty) / (full - empty)}


def curve(model, graph: CircuitGraph, clean: torch.Tensor, ref: torch.Tensor, scores: torch.Tensor, metric: Metric,
          select: str = "greedy", percentages=PERCENTAGES, max_rows: int = 64,
          log: Callable[[str], None] | None = None) -> dict:
    """The faithfulness curve of one method's scores, with CPR and CMD."""
    circuits = [graph.select(scores, max(1, int(p * graph.n_edges)), select) for p in percentages]
    res = faithfulness(model, graph, clean, ref, circuits, metric, max_rows=max_rows, progress=_progress(log))
    edges = [int(c.sum()) for c in circuits]
    cpr, cmd = areas(edges, res["faithfulness"])
    res |= monotonicity(res.pop("per_prompt"))
    if log:
        log("    " + "  ".join(f"{p:.1%}:{f:.2f}" for p, f in zip(percentages, res["faithfulness"])))
    return {"percentages": list(percentages), "edges": edges, **res, "cpr": cpr, "cmd": cmd}


def _progress(log):
    if log is None:
        return None
    t0 = time.time()

    def fn(done, total):
        rate = done / max(time.time() - t0, 1e-9)
        log(f"    curve: {done}/{total} circuits patched, {rate:.2f}/s, ETA {(total - done) / rate:.0f} s")
    return fn


def monotonicity(per_prompt: torch.Tensor) -> dict:
    """Does the curve fall anywhere by more than its noise? Each step's fall is compared with twice
    the standard error of the paired per-prompt differences (same prompts at both sizes)."""
    d = per_prompt[:-1] - per_prompt[1:]  # [points - 1, n]: > 0 where the curve falls
    se = d.std(1) / math.sqrt(d.shape[1]) if d.shape[1] > 1 else torch.zeros(d.shape[0])
    fall = d.mean(1)
    worst = int(torch.argmax(fall - 2 * se))
    return {"largest_fall": round(float(fall.max()), 4), "worst_fall_over_2se": round(float(fall[worst] - 2 * se[worst]), 4),
            "monotone_within_noise": bool((fall <= 2 * se).all())}


def areas(edges: list[int], faith: list[float]) -> tuple[float, float]:
    """(CPR, CMD): trapezoids over log(edges), divided by the log range."""
    xs = [math.log(max(e, 1)) for e in edges]
    under = between = 0.0
    for i in range(len(xs) - 1):
        dx = xs[i + 1] - xs[i]
        under += dx * (faith[i] + faith[i + 1]) / 2
        between += dx * (abs(1 - faith[i]) + abs(1 - faith[i + 1])) / 2
    span = xs[-1] - xs[0]
    return (under / span, between / span) if span > 0 else (faith[-1], abs(1 - faith[-1]))


def first_faithful(result: dict, goal: float) -> int | None:
    """Index of the smallest circuit of a curve reaching `goal` (None: none does)."""
    return next((i for i, f in enumerate(result["faithfulness"]) if f >= goal), None)
