"""ACDC (Conmy et al. 2023): prune a circuit edge by edge with real patching.

Starting from a candidate circuit, the downstream inputs are visited from the logits back
(reverse topological order) and, for each, its incoming edges from the latest upstream node to the
earliest. An edge is removed for good when removing it costs less than `threshold` faithfulness
(removals that raise faithfulness always go); otherwise it stays. Every trial is one exact
edge-patching forward of the trial circuit (pruned to input -> logits paths first, as ACDC drops
nodes that no longer reach the output), so the decisions are sequential: trial i depends on every
decision before it.

Speculation: most trials remove their edge, so up to `speculate` consecutive trials into readers of
one layer run in one forward, each assuming that the ones before it removed theirs; they share
every layer before that one (edge patching's growing batch). Their results are taken in order up
to the first trial that keeps its edge; the trials after it assumed otherwise and are run again.
The decisions are those of one trial at a time (up to float rounding at the threshold). Readers
in the first third of the layers gain too little from the shared layers and run one at a time.

The candidates are the top edges of EAP-IG's scores (Conmy et al. start from the whole graph: at
SmolLM2's 70k edges that is 70k forwards, hours on a CPU). Each tested edge keeps the faithfulness
its removal cost (`deltas`), which ranks the candidates for a faithfulness curve.

    res = acdc(model, graph, clean, ref, candidates, metric, threshold=0.01)
    res.kept           # [U, V] bool: the circuit
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from extract.circuits.edge_graph import CircuitGraph
from extract.circuits.scores import Metric, patch_edges


@dataclass
class ACDCState:
    """Where a pruning run stands: saved every few trials, so an interrupted run resumes."""
    kept: torch.Tensor
    """[U, V] bool: the circuit so far (pruned)."""
    deltas: torch.Tensor
    """[U, V] float: faithfulness lost by removing each tested edge (negative: removing it helped)."""
    order: torch.Tensor
    """[n, 2] (u, v): the candidate edges in the order they are tried."""
    next: int = 0
    """Index into order of the next trial."""
    faithfulness: float = 1.0
    trials: int = 0
    discarded: int = 0
    """Speculative trials run and thrown away (an earlier trial of their forward kept its edge)."""
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def acdc_order(graph: CircuitGraph, candidates: torch.Tensor) -> torch.Tensor:
    """[n, 2]: downstream inputs from the logits back, each one's upstream nodes latest first."""
    u, v = candidates.nonzero(as_tuple=True)
    key = v * graph.n_up + u
    i = torch.argsort(key, descending=True)
    return torch.stack([u[i], v[i]], 1)


def acdc(model, graph: CircuitGraph, clean: torch.Tensor, ref: torch.Tensor, candidates: torch.Tensor,
         metric: Metric, threshold: float = 0.01, state: ACDCState | None = None,
         save: Callable[[ACDCState], None] | None = None, save_every: int = 25,
         log: Callable[[str], None] | None = None, speculate: int = 4) -> ACDCState:
    """Prune `candidates` ([U, V] bool) by ACDC; `state` resumes a saved run; `save` is called
    every `save_every` trials and at the end; `speculate`: trials per forward (1: one at a time)."""
    if threshold < 0:
        raise ValueError(f"the ACDC threshold must be >= 0, got {threshold}")
    bounds = patch_edges(model, graph, clean, ref, torch.stack([graph.valid, torch.zeros_like(graph.valid)]), metric)
    empty, full = (float(x) for x in bounds.mean(1))
    if abs(full - empty) < 1e-6:
        raise ValueError("the metric is the same with and without every edge: the corruption does not change the behaviour")
    rows = len(clean) * max(1, speculate)

    def faith(circuits: list[torch.Tensor]) -> list[float]:
        removed = torch.stack([graph.valid & ~c for c in circuits])
        m = patch_edges(model, graph, clean, ref, removed, metric, max_rows=rows).mean(1)
        return [(float(x) - empty) / (full - empty) for x in m]

    if state is None:
        kept = graph.prune(candidates)
        state = ACDCState(kept=kept, deltas=torch.zeros(graph.n_up, graph.n_down), order=acdc_order(graph, kept),
                          faithfulness=faith([kept])[0])
    t0, start, before = time.time(), state.next, state.seconds
    total = len(state.order)
    layer_of = lambda v: int(v) // graph.per_layer_in  # noqa: E731 (the logits: n_layers)
    while state.next < total:
        chain, circuit, i = [], state.kept, state.next  # trials, each assuming the ones before removed theirs
        while i < total and len(chain) < max(1, speculate):
            u, v = (int(x) for x in state.order[i])
            if circuit[u, v]:  # still there (not pruned away with a node that lost its last edge)
                if chain and (layer_of(v) != layer_of(chain[0][2]) or 3 * layer_of(v) < graph.n_layers):
                    break
                circuit = circuit.clone()
                circuit[u, v] = False
                circuit = graph.prune(circuit)
                chain.append((i, u, v, circuit))
            i += 1
        saved_at = state.next // save_every
        state.next = i
        for k, ((at, u, v, trial), f) in enumerate(zip(chain, faith([c[3] for c in chain]) if chain else [])):
            state.deltas[u, v] = state.faithfulness - f
            state.trials += 1
            if state.faithfulness - f < threshold:
                state.kept, state.faithfulness = trial, f
            else:  # the later trials assumed this edge gone: they are tried again
                state.next, state.discarded = at + 1, state.discarded + len(chain) - k - 1
                break
        state.seconds = before + time.time() - t0
        if state.next // save_every > saved_at or state.next == total:
            if save:
                save(state)
            if log:
                rate = (state.next - start) / max(time.time() - t0, 1e-9)
                log(f"    acdc: {state.next}/{total} edges tried, {int(state.kept.sum())} kept, faithfulness "
                    f"{state.faithfulness:.3f}, {rate:.2f} edges/s, ETA {(total - state.next) / max(rate, 1e-9):.0f} s")
    if save and state.next == start:
        save(state)
    return state


def acdc_scores(state: ACDCState, fallback: torch.Tensor) -> torch.Tensor:
    """Scores for a faithfulness curve: the tested candidates by |faithfulness lost|, every one above
    every untested edge, which follow in the order of |fallback| (the scores that chose the candidates)."""
    tested = torch.zeros_like(state.kept)
    tested[state.order[:, 0], state.order[:, 1]] = True
    rest = fallback.abs() * ~tested
    ceiling = float(rest.max()) + 1.0
    return torch.where(tested, state.deltas.abs() + ceiling, rest)
