"""Edge scores: edge attribution patching (EAP; Syed et al. 2023) and EAP with integrated gradients
(EAP-IG; Hanna et al. 2024), and exact edge patching to check them.

score(u -> v) = mean over prompts of sum over positions of (write_u[corrupted] - write_u[clean]) . g_v,
g_v = d metric / d input_v. EAP takes g at the clean run: the first-order Taylor term of patching
the edge. EAP-IG averages g over `steps` runs whose input embeddings walk from the corrupted to the
clean prompt (alpha = 1/steps, ..., 1: one step is EAP). Every score costs the same few backward
passes, whatever the number of edges.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from extract.circuits.edge_graph import CircuitGraph
from extract.circuits.split import SplitForward, node_writes
from extract.sites import get_module

Metric = Callable[[torch.Tensor, slice], torch.Tensor]
"""(end logits [rows, 1, vocab], the prompts' slice) -> [rows] metric per prompt"""


def _embed(model, tokens: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return get_module(model.model, model.layout.embed)(tokens.to(model.device))


def edge_scores(model, graph: CircuitGraph, clean: torch.Tensor, corrupt: torch.Tensor, metric: Metric,
                steps: int = 1, batch: int = 8, progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """[U, V] float32 scores (0 where no edge). steps=1: EAP; steps>1: EAP-IG over the inputs."""
    if clean.shape != corrupt.shape:
        raise ValueError(f"clean {tuple(clean.shape)} and corrupted {tuple(corrupt.shape)} prompts must align")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    n = clean.shape[0]
    scores = torch.zeros(graph.n_up, graph.n_down)
    done = 0
    for start in range(0, n, batch):
        part = slice(start, min(start + batch, n))
        c, x = clean[part], corrupt[part]
        diff = node_writes(model, graph, x) - node_writes(model, graph, c)
        e_clean, e_corrupt = _embed(model, c), _embed(model, x)
        split = SplitForward(model, graph, leaves=True)
        for s in range(steps):
            alpha = (s + 1) / steps
            split.embed = e_corrupt + alpha * (e_clean - e_corrupt) if steps > 1 else None
            with torch.enable_grad():
                logits = split.run(c)
                metric(logits, part).sum().backward()
            done += 1
            if progress:
                progress(done, steps * -(-n // batch))
        scores += _contract(graph, diff, split.leaves).cpu() / steps
    return scores / n


def _contract(graph: CircuitGraph, diff: torch.Tensor, leaves: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum over prompts, positions and d_model of diff[u] * grad[v], for every valid (u, v)."""
    flat = diff.reshape(graph.n_up, -1)
    out = torch.zeros(graph.n_up, graph.n_down, device=diff.device)
    for layer in range(graph.n_layers):
        p = graph.attn_prefix(layer)
        g = leaves[f"a{layer}"].grad
        out[:p, graph.attn_inputs(layer)] = flat[:p] @ g.reshape(g.shape[0], -1).T
        p = graph.mlp_prefix(layer)
        out[:p, graph.mlp_input(layer)] = flat[:p] @ leaves[f"m{layer}"].grad.reshape(-1)
    out[:, graph.logits] = flat @ leaves["logits"].grad.reshape(-1)
    return out


@torch.no_grad()
def patch_edges(model, graph: CircuitGraph, clean: torch.Tensor, ref: torch.Tensor, removed: torch.Tensor,
                metric: Metric, max_rows: int = 64, progress: Callable[[int, int], None] | None = None,
                grow: bool = True) -> torch.Tensor:
    """Exact edge patching: [k, n] metric with each circuit's removed edges (removed [k, U, V]) reading
    the reference writes `ref` ([U, n, pos, d]: a corrupted run's, or means); the k circuits run as
    copies of the batch, as many per forward as max_rows allows (grow: as a growing batch)."""
    n = clean.shape[0]
    per = max(1, max_rows // n)
    out = []
    for start in range(0, removed.shape[0], per):
        chunk = removed[start:start + per]
        logits = SplitForward(model, graph, removed=chunk, ref=ref, grow=grow).run(clean.repeat(chunk.shape[0], 1))
        out.append(metric(logits, slice(0, n)).float().cpu().view(chunk.shape[0], n))
        if progress:
            progress(start + chunk.shape[0], removed.shape[0])
    return torch.cat(out)
