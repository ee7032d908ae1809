"""Benchmark: edge-level circuit discovery on SmolLM2 IOI, side by side in one run.

  1. EAP-IG scores for every edge (8 steps, 32 prompts) vs one exact head-patching sweep
     (patching.head_sweep: every head's z, denoising, the growing-batch engine) on the same prompts.
  2. Exact edge patching of a 100-edge circuit: k variants (each less one of its edges, drawn at
     random) batched as copies of the prompts (a growing batch: each variant joins at the layer that
     reads its edge; and the plain batch) vs one forward per edge set; the results agree (checked).

    python scripts/bench/bench_circuits.py [--n_prompts 32] [--ig_steps 8] [--k 16] [--per_forward 8]
"""

from __future__ import annotations

import argparse
import time

from _bench import bench_model, cpu_model, peak_rss_mb, write_results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m-q4")
    p.add_argument("--n_prompts", type=int, default=32)
    p.add_argument("--ig_steps", type=int, default=8)
    p.add_argument("--k", type=int, default=16, help="edge sets patched")
    p.add_argument("--per_forward", type=int, default=8, help="edge sets per batched forward")
    a = p.parse_args()

    import torch

    from extract import patching as P
    from extract.circuits.edge_graph import CircuitGraph
    from extract.circuits.scores import edge_scores, patch_edges
    from extract.circuits.split import node_writes
    from extract.circuits.tasks import load_task

    model = bench_model(a.model)
    graph = CircuitGraph.of(model)
    task = load_task("ioi", model, a.n_prompts, seed=0)
    t = time.perf_counter()
    cache = P.cache_sites(model, task.clean, ["attn.hook_z"])
    P.head_sweep(model, task.corrupt, cache, task.patch_metric())
    sweep_s = time.perf_counter() - t
    t = time.perf_counter()
    scores = edge_scores(model, graph, task.clean, task.corrupt, task.grad_metric(), steps=a.ig_steps)
    ig_s = time.perf_counter() - t

    circuit = graph.top_edges(scores, 100)
    kept = circuit.nonzero()
    kept = kept[torch.randperm(len(kept), generator=torch.Generator().manual_seed(0))[:a.k]]
    removed = (graph.valid & ~circuit).expand(a.k, -1, -1).clone()
    removed[torch.arange(a.k), kept[:, 0], kept[:, 1]] = True
    reader_layers = sorted(int(v) // graph.per_layer_in for v in kept[:, 1])
    ref = node_writes(model, graph, task.corrupt)
    metric = task.grad_metric()
    timed = {}
    for name, grow in (("grown", True), ("plain", False)):
        t = time.perf_counter()
        timed[name] = patch_edges(model, graph, task.clean, ref, removed, metric, max_rows=a.per_forward * a.n_prompts,
                                  grow=grow)
        timed[name + "_s"] = time.perf_counter() - t
    t = time.perf_counter()
    single = torch.cat([patch_edges(model, graph, task.clean, ref, removed[j:j + 1], metric, max_rows=a.n_prompts)
                        for j in range(a.k)])
    single_s = time.perf_counter() - t
    batched_s = timed["grown_s"]
    agree = max(float((timed[name] - single).abs().max()) for name in ("grown", "plain"))

    rows = [
        dict(measure=f"EAP-IG ({a.ig_steps} steps, {a.n_prompts} prompts, {graph.n_edges} edges) s", value=round(ig_s, 1),
             goal=""),
        dict(measure="one exact head-patching sweep s", value=round(sweep_s, 1), goal=""),
        dict(measure="EAP-IG / head sweep", value=round(ig_s / sweep_s, 2), goal="<= 2"),
        dict(measure=f"edge patching, {a.k} sets of ~100 edges: reader layers of the dropped edges",
             value=" ".join(map(str, reader_layers)), goal=""),
        dict(measure=f"edge patching: growing batch, {a.per_forward} sets per forward s", value=round(batched_s, 1),
             goal=""),
        dict(measure="edge patching: plain batch s", value=round(timed["plain_s"], 1), goal=""),
        dict(measure="edge patching: one forward per set s", value=round(single_s, 1), goal=""),
        dict(measure="edge patching speed-up (growing batch)", value=round(single_s / batched_s, 2), goal=">= 5"),
        dict(measure="edge patching speed-up (plain batch)", value=round(single_s / timed["plain_s"], 2), goal=""),
        dict(measure="batched vs one-at-a-time, max |diff| of the metric", value=f"{agree:.1e}", goal=""),
    ]
    write_results("circuits", rows, {"cpu": cpu_model(), "peak_rss_mb": round(peak_rss_mb()),
                                     "edges_in_circuit": int(circuit.sum())})


if __name__ == "__main__":
    main()
