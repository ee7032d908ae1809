"""Circuit discovery on a task, every method scored by the same faithfulness procedure.

    from extract.circuits.discover import CircuitConfig, discover
    results = discover(load_model("smollm2-135m-q4"), CircuitConfig(task="ioi"))

Methods (extract/circuits/methods.py, one class each, cached and resumed by one wrapper): eap_ig
(EAP with integrated gradients), eap, nodes (exact patching of heads and MLPs read as edges), acdc
(EAP-IG's top edges pruned one by one with real patching).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from extract.circuits.edge_graph import CircuitGraph
from extract.circuits.faithfulness import PERCENTAGES, curve, faithfulness, first_faithful, mean_writes
from extract.circuits.methods import METHODS, Context, ScoreCache, scores_for
from extract.circuits.roles import head_roles
from extract.circuits.split import node_writes
from extract.circuits.tasks import TASKS, IOITask, load_task
from mechinterp.formats.bounds import bounds, check_bounds
from mechinterp.formats.defaults import DEFAULT_MODEL, given_out
from mechinterp.formats.results import RESULTS


@dataclass(frozen=True)
class CircuitConfig:
    model: str = DEFAULT_MODEL
    """Registry name, Hugging Face repo id or local model directory (extract/models.py)."""
    device: str = "auto"
    """auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps."""
    task: str = "ioi"
    """ioi or greater_than (extract/circuits/tasks.py)."""
    methods: str = "eap_ig,eap,nodes"
    """Comma-separated: eap_ig, eap, nodes, acdc (one patching forward per candidate edge: minutes)."""
    n_prompts: int = field(default=32, metadata=bounds(1))
    """Prompts the scores and the curves are computed on."""
    n_heldout: int = field(default=32, metadata=bounds(0))
    """Prompts from held-out templates and names the chosen circuit is checked on (0: skip)."""
    ig_steps: int = field(default=8, metadata=bounds(1))
    """EAP-IG's integration steps."""
    intervention: str = "patching"
    """What a removed edge carries: patching (the corrupted prompt's write) or mean (the mean write over
    a reference set of corrupted prompts, per position)."""
    goal: float = field(default=0.8, metadata=bounds(0, 1, open_low=True))
    """Faithfulness the chosen circuit must reach (the smallest eap_ig circuit that does)."""
    selection: str = "greedy"
    """How a curve point picks its edges: greedy (MIB's: grown from the logits, the best-scoring edge
    into the circuit each step) or topn (the top |scores|); both then pruned to input -> logits paths."""
    acdc_candidates: float = field(default=0.01, metadata=bounds(0, 1, open_low=True))
    """ACDC starts from this fraction of the edges, EAP-IG's best (chosen by --selection)."""
    acdc_threshold: float = field(default=0.01, metadata=bounds(0))
    """ACDC removes an edge when that costs less than this much faithfulness."""
    acdc_speculate: int = field(default=4, metadata=bounds(1))
    """ACDC trials per forward into one late layer, each assuming the ones before removed their edge (1: one at a time)."""
    n_edges: int | None = field(default=None, metadata=bounds(1))
    """Edges of the chosen circuit (None: the smallest of the curve's sizes that reaches --goal)."""
    diagram_edges: int = field(default=100, metadata=bounds(1))
    """The strongest edges of the chosen circuit drawn in circuit.png / circuit.html."""
    seed: int = field(default=0, metadata=bounds(0))
    """Seeds the prompt sets (held-out prompts: seed + 1000)."""
    batch: int = field(default=8, metadata=bounds(1))
    """Prompts per backward pass."""
    max_rows: int = field(default=64, metadata=bounds(1))
    """Rows (prompts x circuits) per edge-patching forward."""
    out: str | None = None
    """Output directory (None: runs/circuits/<model>/<task>)."""

    def __post_init__(self):
        check_bounds(self)
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; choose from {', '.join(TASKS)}")
        bad = [m for m in self.method_list() if m not in METHODS]
        if bad or not self.method_list():
            raise ValueError(f"unknown method {bad[0] if bad else '(none)'!r}; choose from {', '.join(METHODS)}")
        if self.selection not in ("greedy", "topn"):
            raise ValueError(f"--selection must be greedy or topn, got {self.selection!r}")
        if self.intervention not in ("patching", "mean"):
            raise ValueError(f"--intervention must be patching or mean, got {self.intervention!r}")

    def method_list(self) -> list[str]:
        return [m.strip() for m in self.methods.split(",") if m.strip()]

    def out_dir(self) -> Path:
        return given_out(self.out, "CircuitConfig")


def discover(model, cfg: CircuitConfig, log: Callable[[str], None] = print) -> dict:
    graph = CircuitGraph.of(model)
    if cfg.n_edges is not None and cfg.n_edges > graph.n_edges:
        raise ValueError(f"--n_edges {cfg.n_edges} asks for more edges than {model.name}'s graph has ({graph.n_edges})")
    task = load_task(cfg.task, model, cfg.n_prompts, cfg.seed)
    clean_metric = task.check(model)
    out = cfg.out_dir()
    out.mkdir(parents=True, exist_ok=True)
    log(f"{cfg.task}: {len(task)} prompts, clean {task.metric_name} {clean_metric:+.3f}; "
        f"graph: {graph.n_up} nodes, {graph.n_edges} edges")
    ref = _reference(model, graph, task, cfg)
    state = ScoreCache(out / "scores.pt", _key(model, cfg), log)
    ctx = Context(model, graph, task, cfg, ref, log, state)
    scores, curves = {}, {}
    for method in cfg.method_list():
        done = scores_for(method, ctx)
        scores[method] = done["scores"]
        if "curve" not in done:
            t = time.time()
            c = curve(model, graph, task.clean, ref, scores[method], task.grad_metric(), select=cfg.selection,
                      max_rows=cfg.max_rows, log=log)
            done = state.put(method, {**done, "curve": c | {"seconds": round(time.time() - t, 2)}})
        curves[method] = done["curve"] | {"score_seconds": done["score_seconds"]}
        if "acdc_circuit" in done:
            curves[method]["circuit"] = done["acdc_circuit"]
        log(f"    CPR {curves[method]['cpr']:.3f}  CMD {curves[method]['cmd']:.3f}")
    best = "eap_ig" if "eap_ig" in curves else cfg.method_list()[0]
    if cfg.n_edges is None:
        i = first_faithful(curves[best], cfg.goal)
        i = len(PERCENTAGES) - 1 if i is None else i
        chosen = graph.select(scores[best], max(1, int(PERCENTAGES[i] * graph.n_edges)), cfg.selection)
        faith = curves[best]["faithfulness"][i]
    else:
        chosen = graph.select(scores[best], cfg.n_edges, cfg.selection)
        faith = faithfulness(model, graph, task.clean, ref, [chosen], task.grad_metric(),
                             max_rows=cfg.max_rows)["faithfulness"][0]
    result = {
        "config": asdict(cfg), "model": model.name, "task": cfg.task, "clean_metric": clean_metric,
        "graph": {"nodes": graph.n_up, "inputs": graph.n_down, "edges": graph.n_edges},
        "methods": curves,
        "chosen": {"method": best, "edges": int(chosen.sum()), "edge_fraction": round(int(chosen.sum()) / graph.n_edges, 5),
                   "faithfulness": faith, "reaches_goal": faith >= cfg.goal},
    }
    if cfg.n_heldout:
        held = load_task(cfg.task, model, cfg.n_heldout, cfg.seed + 1000, heldout=True)
        held.check(model)
        held_ref = _reference(model, graph, held, cfg)
        result["chosen"]["heldout"] = faithfulness(model, graph, held.clean, held_ref, [chosen], held.grad_metric(),
                                                   max_rows=cfg.max_rows)["faithfulness"][0]
        log(f"  held-out templates and names: faithfulness {result['chosen']['heldout']:.3f}")
        if "acdc" in curves:
            kept = state.get("acdc")["acdc_state"]["kept"]
            curves["acdc"]["circuit"]["heldout"] = faithfulness(
                model, graph, held.clean, held_ref, [kept], held.grad_metric(), max_rows=cfg.max_rows)["faithfulness"][0]
    edge_list = graph.edges_json(chosen, scores[best])
    result["chosen"]["edge_list"] = edge_list
    from extract.circuits.diagram import draw
    from extract.circuits.plots import plot_curves

    shown = edge_list[:cfg.diagram_edges]
    heads = sorted({_head(n) for e in shown for n in (e["from"], e["to"]) if _head(n)})
    roles = {f"a{layer}.h{h}": r for (layer, h), r in head_roles(model, task, heads).items()} \
        if isinstance(task, IOITask) else {}
    result["chosen"]["roles"] = roles
    title = f"{model.name} {cfg.task}: {best} circuit, {result['chosen']['edges']} edges, faithfulness {faith:.2f}"
    result["files"] = [plot_curves(result, out / "faithfulness.png"),
                       *draw(shown, graph.n_layers, roles, out / "circuit.png", out / "circuit.html", title,
                             result["chosen"]["edges"])]
    (out / RESULTS).write_text(json.dumps(result, indent=1))
    return result


def _head(name: str) -> tuple[int, int] | None:
    """'a3.h2' or 'a3.h2<q>' -> (3, 2); other nodes None."""
    if not name.startswith("a") or ".h" not in name:
        return None
    layer, head = name[1:].split("<")[0].split(".h")
    return int(layer), int(head)


def _key(model, cfg: CircuitConfig) -> dict:
    """What the saved scores and curves depend on."""
    settings = ("task", "n_prompts", "ig_steps", "intervention", "selection", "seed", "batch")
    return {"model": model.name, "weights": model.weights, "weights_fingerprint": model.fingerprint} | {
        k: getattr(cfg, k) for k in settings}


def _reference(model, graph, task, cfg) -> torch.Tensor:
    if cfg.intervention == "patching":
        return node_writes(model, graph, task.corrupt)
    return mean_writes(node_writes(model, graph, task.reference(model)), len(task))
