"""The computational graph of a transformer at head / MLP granularity, and circuits in it.

Nodes that write to the residual stream ("upstream", U of them, in topological order):
  0 = input (the embeddings: blocks.0.hook_resid_pre), then per layer L its heads aL.hH
  and its MLP mL.
Inputs that read from it ("downstream", V of them): per layer the query input of each head
(aL.hH<q>), the key and value inputs of each key/value head (aL.gG<k>, aL.gG<v>: under grouped-
query attention one kv head serves its whole query group), the MLP's input (mL), then the logits.

An edge u -> v exists when u is written before v reads: every downstream input reads a prefix of
the upstream order, so a circuit is a dense [U, V] bool matrix masked by `valid`. The residual
stream read by v is the sum of the writes of all its upstream nodes; removing an edge replaces
u's write in v's input (only there) by a reference write (a corrupted run's, or a mean).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch


@dataclass(frozen=True)
class CircuitGraph:
    n_layers: int
    n_heads: int
    n_kv_heads: int
    parallel: bool = False
    """Attention and MLP read the same residual (GPT-NeoX): an MLP does not see its own layer's heads."""

    @classmethod
    def of(cls, model) -> CircuitGraph:
        if model.layout.attn_norm is None:
            raise ValueError(f"{model.name} is post-norm (BERT family): circuit discovery needs a pre-norm causal LM")
        return cls(model.n_layers, model.n_heads, model.n_kv_heads, model.layout.parallel)

    # ------------------------------------------------------------------ indices
    @property
    def group(self) -> int:
        return self.n_heads // self.n_kv_heads

    @property
    def n_up(self) -> int:
        return 1 + self.n_layers * (self.n_heads + 1)

    @property
    def per_layer_in(self) -> int:
        """Downstream inputs per layer: queries, keys, values, the MLP."""
        return self.n_heads + 2 * self.n_kv_heads + 1

    @property
    def n_down(self) -> int:
        return self.n_layers * self.per_layer_in + 1

    def head(self, layer: int, head: int) -> int:
        return 1 + layer * (self.n_heads + 1) + head

    def mlp(self, layer: int) -> int:
        return 1 + layer * (self.n_heads + 1) + self.n_heads

    def attn_inputs(self, layer: int) -> slice:
        """Downstream indices of layer's q (per head), k, v (per kv head), in that order."""
        start = layer * self.per_layer_in
        return slice(start, start + self.per_layer_in - 1)

    def mlp_input(self, layer: int) -> int:
        return layer * self.per_layer_in + self.per_layer_in - 1

    @property
    def logits(self) -> int:
        return self.n_down - 1

    def attn_prefix(self, layer: int) -> int:
        """Upstream nodes a layer's attention reads: the input and every earlier layer."""
        return 1 + layer * (self.n_heads + 1)

    def mlp_prefix(self, layer: int) -> int:
        return self.attn_prefix(layer) + (0 if self.parallel else self.n_heads)

    @cached_property
    def prefix(self) -> torch.Tensor:
        """[V] how many upstream nodes each downstream input reads."""
        p = torch.empty(self.n_down, dtype=torch.long)
        for layer in range(self.n_layers):
            p[self.attn_inputs(layer)] = self.attn_prefix(layer)
            p[self.mlp_input(layer)] = self.mlp_prefix(layer)
        p[self.logits] = self.n_up
        return p

    @cached_property
    def valid(self) -> torch.Tensor:
        """[U, V] the edges that exist."""
        return torch.arange(self.n_up)[:, None] < self.prefix[None, :]

    @property
    def n_edges(self) -> int:
        return int(self.prefix.sum())

    # ------------------------------------------------------------------ names
    def up_names(self) -> list[str]:
        names = ["input"]
        for layer in range(self.n_layers):
            names += [f"a{layer}.h{h}" for h in range(self.n_heads)] + [f"m{layer}"]
        return names

    def down_names(self) -> list[str]:
        names = []
        for layer in range(self.n_layers):
            names += [f"a{layer}.h{h}<q>" for h in range(self.n_heads)]
            names += [f"a{layer}.g{g}<{c}>" for c in "kv" for g in range(self.n_kv_heads)]
            names.append(f"m{layer}")
        return names + ["logits"]

    @cached_property
    def reader(self) -> torch.Tensor:
        """[V, U] bool: which upstream node(s) a downstream input belongs to (a kv input: its
        group's heads; the logits: none)."""
        r = torch.zeros(self.n_down, self.n_up, dtype=torch.bool)
        H, G = self.n_heads, self.n_kv_heads
        for layer in range(self.n_layers):
            s = self.attn_inputs(layer).start
            for h in range(H):
                r[s + h, self.head(layer, h)] = True
                for c in range(2):
                    r[s + H + c * G + h // self.group, self.head(layer, h)] = True
            r[self.mlp_input(layer), self.mlp(layer)] = True
        return r

    # ------------------------------------------------------------------ circuits
    def prune(self, kept: torch.Tensor) -> torch.Tensor:
        """Keep only edges on some input -> logits path of kept edges (MIB's prune=True)."""
        kept = kept & self.valid
        reader = self.reader
        forward = torch.zeros(self.n_up, dtype=torch.bool)
        forward[0] = True
        for u in range(1, self.n_up):  # topological: every reader of u's inputs reads earlier nodes only
            forward[u] = bool((kept[:, reader[:, u]] & forward[:, None]).any())
        to_logits = torch.zeros(self.n_down, dtype=torch.bool)
        to_logits[self.logits] = True
        for u in range(self.n_up - 1, -1, -1):  # reverse order: u's readers are later inputs
            if (kept[u] & to_logits).any():
                to_logits |= reader[:, u]
        return kept & forward[:, None] & to_logits[None, :]

    def top_edges(self, scores: torch.Tensor, n: int) -> torch.Tensor:
        """The n valid edges with the largest |score|, pruned."""
        if n > self.n_edges:
            raise ValueError(f"{n} edges asked for; the graph has {self.n_edges}")
        flat = scores.abs().masked_fill(~self.valid, -1.0).flatten()
        kept = torch.zeros(flat.numel(), dtype=torch.bool)
        kept[torch.topk(flat, n).indices] = True
        return self.prune(kept.view_as(scores))

    def greedy_edges(self, scores: torch.Tensor, n: int) -> torch.Tensor:
        """MIB's greedy selection: grow a circuit from the logits, each step adding the highest-|score|
        edge into a node already in it (so no edge dangles on the output side), then prune."""
        import heapq

        if n > self.n_edges:
            raise ValueError(f"{n} edges asked for; the graph has {self.n_edges}")
        score = scores.abs().masked_fill(~self.valid, -1.0)
        inputs_of = [row.nonzero().flatten().tolist() for row in self.reader.T]
        kept = torch.zeros_like(self.valid)

        heap = [(-s, u, self.logits) for u, s in enumerate(score[:, self.logits].tolist())]
        heapq.heapify(heap)
        opened = {self.logits}
        inside = torch.zeros(self.n_up, dtype=torch.bool)
        for _ in range(n):
            if not heap:
                break
            _, u, v = heapq.heappop(heap)
            kept[u, v] = True
            if not inside[u]:
                inside[u] = True
                for w in inputs_of[u]:
                    if w not in opened:
                        opened.add(w)
                        for u2, s in enumerate(score[:int(self.prefix[w]), w].tolist()):
                            heapq.heappush(heap, (-s, u2, w))
        return self.prune(kept)

    def select(self, scores: torch.Tensor, n: int, how: str = "greedy") -> torch.Tensor:
        return self.greedy_edges(scores, n) if how == "greedy" else self.top_edges(scores, n)

    def head_circuit(self, heads) -> torch.Tensor:
        """All edges among the input, the given heads, every MLP and the logits (how a head ranking
        reads as a circuit), pruned."""
        nodes = torch.zeros(self.n_up, dtype=torch.bool)
        nodes[0] = True
        for layer in range(self.n_layers):
            nodes[self.mlp(layer)] = True
        for layer, h in heads:
            nodes[self.head(layer, h)] = True
        reads_kept = (self.reader & nodes[None, :]).any(1)
        reads_kept[self.logits] = True
        return self.prune(nodes[:, None] & reads_kept[None, :])

    def edges_json(self, kept: torch.Tensor, scores: torch.Tensor | None = None) -> list[dict]:
        up, down = self.up_names(), self.down_names()
        out = []
        for u, v in kept.nonzero().tolist():
            item = {"from": up[u], "to": down[v]}
            if scores is not None:
                item["score"] = round(float(scores[u, v]), 6)
            out.append(item)
        return sorted(out, key=lambda e: -abs(e.get("score", 0.0)))
