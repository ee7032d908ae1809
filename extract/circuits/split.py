"""Forwards in which every downstream input of the circuit graph reads its own residual stream.

A layer's attention is run on C = heads + 2 x kv heads copies of its input, one per query,
key and value input; the hook on q / k / v takes each head's projection from its own copy, and
only the first copy's rows leave the attention module. The MLP and the logits read through
their pre-norm, whose input is rewritten without touching the residual (the block adds its
input back, not the norm's). This works for every pre-norm family through the hook tables;
its q / k / v projections and scores cost C times more (the output projection runs on the merged
rows only), the MLPs and everything else nothing. With removed edges, inputs whose removed edges
are the same (in a small circuit, most readers lose every edge) share one copy.

k circuits run as a growing batch (run_copies' engine): a lead circuit runs from the embeddings, and
each other circuit joins at the first layer whose inputs it removes differently from the lead's,
as a copy of the lead's rows (before that layer the two runs are the same). Circuits that differ
in one late edge, as ACDC's trials or a circuit's variants, skip the layers before it.

Two uses:
  removed edges: input_v = residual - sum over removed (u, v) of (write_u in this run - ref_u),
    exact edge patching (the ACDC / MIB definition), for k circuits at once (copy j on rows
    j*n:(j+1)*n);
  gradients: a zero leaf added to every input, so one backward gives d metric / d input_v.
"""

from __future__ import annotations

from contextlib import ExitStack

import torch

from extract.circuits.edge_graph import CircuitGraph
from extract.ioi.dla import o_proj_weight
from extract.norms import gain, norm_scale
from extract.patching import forward_end, grow_rows
from extract.sites import get_module


def head_writes(model, layer: int, z: torch.Tensor) -> torch.Tensor:
    """z [rows, pos, head, d_head] -> each head's write to the residual [head, rows, pos, d_model]
    (without the output bias; through Gemma 3's post-attention norm, its scale taken from the sum)."""
    block = model._layers[layer]
    o = get_module(block, model.layout.o_proj)
    w = o_proj_weight(o).float().view(model.n_heads, model.d_head, model.d_model)
    writes = torch.einsum("rphk,hkd->hrpd", z.float(), w)
    if model.layout.sandwich_norm:
        post = get_module(block, model.layout.attn_out)
        total = writes.sum(0) + (o.bias.float() if getattr(o, "bias", None) is not None else 0.0)
        writes = writes * norm_scale(post, total) * gain(post, model.layout.norm_gain_offset)
    return writes


def _write_sites(model) -> list[str]:
    return ["blocks.0.hook_resid_pre"] + [f"blocks.{layer}.{s}" for layer in range(model.n_layers)
                                          for s in ("attn.hook_z", "hook_mlp_out")]


@torch.no_grad()
def node_writes(model, graph: CircuitGraph, tokens: torch.Tensor) -> torch.Tensor:
    """[U, n, pos, d_model] float32: what every upstream node writes on these prompts."""
    _, cache = model.run_with_cache(tokens.to(model.device), names=_write_sites(model))
    out = torch.empty(graph.n_up, *cache["blocks.0.hook_resid_pre"].shape, dtype=torch.float32, device=model.device)
    out[0] = cache["blocks.0.hook_resid_pre"].float()
    for layer in range(model.n_layers):
        h0 = graph.head(layer, 0)
        out[h0:h0 + model.n_heads] = head_writes(model, layer, cache[f"blocks.{layer}.attn.hook_z"])
        out[graph.mlp(layer)] = cache[f"blocks.{layer}.hook_mlp_out"].float()
    return out


class SplitForward:
    """One forward of `tokens` [rows, pos] with split inputs.

    removed: [k, U, V] bool, rows = k * n; ref: [U, n, pos, d] writes that removed edges carry.
    leaves=True: self.leaves[v] are zero tensors that require grad, added to each input
    (attention: [C, rows, pos, d] per layer; MLPs and logits: [rows, pos, d]).
    embed: replaces hook_embed (integrated gradients walk it from corrupted to clean).
    grow=False runs every circuit from the embeddings (the plain batch)."""

    def __init__(self, model, graph: CircuitGraph, removed: torch.Tensor | None = None,
                 ref: torch.Tensor | None = None, leaves: bool = False, embed: torch.Tensor | None = None,
                 grow: bool = True):
        if (removed is None) != (ref is None):
            raise ValueError("removed edges need reference writes (and reference writes need removed edges)")
        self.model, self.graph, self.ref, self.embed = model, graph, ref, embed
        self.removed = None
        if removed is not None:
            removed = removed & graph.valid
            fork = self._forks(removed) if grow and not leaves else torch.full((removed.shape[0],), -1)
            self.order = torch.argsort(fork, stable=True)  # copies in the order they join
            self.fork = fork[self.order]
            self.removed = removed[self.order].float().to(model.device)
        self.want_leaves = leaves
        self.leaves: dict[str, torch.Tensor] = {}
        self._split: dict[int, bool] = {}
        self._copy_of: dict[int, torch.Tensor] = {}

    def _forks(self, removed: torch.Tensor) -> torch.Tensor:
        """[k] the layer at which each circuit joins (-1: the lead, from the start; n_layers: at the
        final norm). The lead is the circuit that departs latest from the edges all of them remove."""
        g = self.graph
        layer_of = torch.arange(g.n_down) // g.per_layer_in  # the logits: n_layers

        def first_difference(other: torch.Tensor) -> torch.Tensor:
            differs = (removed ^ other).any(1)  # [k, V]
            return torch.where(differs, layer_of, g.n_layers).min(1).values
        lead = int(first_difference(removed.all(0)).argmax())
        fork = first_difference(removed[lead])
        fork[lead] = -1
        return fork

    def run(self, tokens: torch.Tensor, **kwargs) -> torch.Tensor:
        """tokens: the prompts repeated once per circuit ([k * n, pos], copy-major)."""
        model, graph = self.model, self.graph
        rows, pos = tokens.shape
        self.rows = self.n = rows
        if self.removed is not None:
            self.k = self.removed.shape[0]
            self.n = self.ref.shape[1]
            if rows != self.k * self.n:
                raise ValueError(f"{rows} rows for {self.k} circuits of {self.n} prompts")
            self.active = int((self.fork <= 0).sum())
            self.rows = self.active * self.n
            tokens = tokens[:self.rows]
            # copy-major, so that each copy's [nodes, everything else] block is one matrix
            self.diff = torch.empty(self.k, graph.n_up, self.n, pos, model.d_model, device=model.device)
            self.total = torch.zeros(self.k, self.n, pos, model.d_model, device=model.device)
            self.summed = 0  # nodes in self.total
        hooks = [("blocks.0.hook_resid_pre", self._record_input)]
        if self.embed is not None:
            hooks.insert(0, ("hook_embed", lambda act, hook: self.embed.to(act.dtype)))
        for layer in range(model.n_layers):
            hooks += [(f"blocks.{layer}.attn.hook_{c}", self._merge(layer, c)) for c in "qkv"]
            hooks += [(f"blocks.{layer}.attn.hook_z", self._record_heads(layer)),
                      (f"blocks.{layer}.hook_mlp_out", self._record_mlp(layer))]
        with ExitStack() as stack:
            final = get_module(model.model, model.layout.final_norm)
            for layer in range(1, model.n_layers + 1) if self.removed is not None else ():
                if (self.fork == layer).any():
                    module = model._layers[layer] if layer < model.n_layers else final
                    stack.callback(module.register_forward_pre_hook(self._join(layer), with_kwargs=True).remove)
            for layer in range(model.n_layers):
                block = model._layers[layer]
                mlp_in = self._shift_input(f"m{layer}", graph.mlp_prefix(layer), graph.mlp_input(layer))
                for handle in (get_module(block, model.layout.attn_norm).register_forward_pre_hook(self._split_attn(layer)),
                               get_module(block, model.layout.attn).register_forward_pre_hook(
                                   self._expand_mask(layer), with_kwargs=True),
                               get_module(block, model.layout.o_proj).register_forward_pre_hook(self._first_rows(layer)),
                               get_module(block, model.layout.attn).register_forward_hook(self._keep_first),
                               get_module(block, model.layout.mlp_norm).register_forward_pre_hook(mlp_in)):
                    stack.callback(handle.remove)
            stack.callback(final.register_forward_pre_hook(
                self._shift_input("logits", graph.n_up, graph.logits)).remove)
            logits = forward_end(model, tokens.to(model.device), hooks, grad=self.want_leaves, **kwargs)
        if self.removed is None:
            return logits
        back = torch.argsort(self.order).to(logits.device)  # the callers' order of the circuits
        return logits.view(self.k, self.n, *logits.shape[1:])[back].reshape(logits.shape)

    def _join(self, layer: int):
        """Circuits that join at `layer` enter as copies of the lead's rows, with its writes so far."""
        count = int((self.fork == layer).sum())
        grow = grow_rows(self.n, count)

        def fn(mod, args, kwargs):
            before = self.graph.attn_prefix(layer)  # the nodes written before `layer` (all of them at the end)
            self.diff[self.active:self.active + count, :before] = self.diff[:1, :before]
            self.total[self.active:self.active + count] = self.total[:1]
            self.active += count
            self.rows = self.active * self.n
            return grow(mod, args, kwargs)
        return fn

    # ------------------------------------------------------------------ inputs
    def _delta(self, prefix: int, vs: slice | int) -> torch.Tensor | None:
        """-(sum over removed (u, v) of diff_u) for downstream inputs vs: [C, rows, pos, d] for a slice
        of inputs, [rows, pos, d] for one; every u < prefix is upstream of vs. Where fewer nodes keep
        an edge than lose one, it is -(the running total of every node's diff) + the sum over kept
        ones, so a reader costs the nodes of the smaller side (the diffs are most of a forward's
        memory traffic). One batched matmul: [copy, input, node] x [copy, node, prompt * pos * d]."""
        if self.removed is None:
            return None
        a = self.active
        r = self.removed[:a, :prefix, vs]
        if not r.any():
            return None
        one = r.dim() == 2
        r = r[..., None] if one else r  # [k, P, C]
        kept = 1.0 - r
        lose, keep = (x.any(2).any(0).nonzero().squeeze(1) for x in (r > 0, kept > 0))
        if len(lose) <= len(keep):
            d = self.diff[:a, lose].flatten(2)
            out = -torch.bmm(r[:, lose].transpose(1, 2), d)  # [k, C, n * pos * d]
        else:
            d = self.diff[:a, keep].flatten(2)  # no node kept: zeros
            out = torch.bmm(kept[:, keep].transpose(1, 2), d) - self._total(prefix).reshape(a, 1, -1)
        out = out.transpose(0, 1).reshape(r.shape[2], self.rows, *self.diff.shape[3:])
        return out[0] if one else out

    def _total(self, prefix: int) -> torch.Tensor:
        """[k, n, pos, d] the sum of diff_u over u < prefix (a parallel block's MLP reads before its
        heads, which are written by then)."""
        extra = self.diff[:self.active, prefix:self.summed].sum(1) if self.summed > prefix else 0.0
        return self.total[:self.active] - extra

    def _distinct_inputs(self, layer: int) -> torch.Tensor:
        """[C] for each of the layer's attention inputs, the copy it reads: inputs whose removed
        edges are the same in every circuit share one (each its own with gradient leaves)."""
        inputs = self.graph.attn_inputs(layer)
        c = inputs.stop - inputs.start
        if self.want_leaves or self.removed is None:
            return torch.arange(c)
        cols = self.removed[:self.active, :self.graph.attn_prefix(layer), inputs].permute(2, 0, 1).reshape(c, -1)
        return torch.unique(cols.cpu(), dim=0, return_inverse=True)[1]

    def _leaf(self, name: str, shape) -> torch.Tensor:
        leaf = self.leaves.get(name)
        if leaf is None:
            leaf = self.leaves[name] = torch.zeros(shape, device=self.model.device, requires_grad=True)
        return leaf

    def _split_attn(self, layer: int):
        g = self.graph

        def fn(mod, args):
            x = args[0]
            delta = self._delta(g.attn_prefix(layer), g.attn_inputs(layer))
            self._split[layer] = delta is not None or self.want_leaves
            if not self._split[layer]:
                return None
            copy_of = self._copy_of[layer] = self._distinct_inputs(layer)
            c = int(copy_of.max()) + 1
            xs = x.unsqueeze(0).expand(c, *x.shape)
            if delta is not None:
                one_input_each = torch.tensor([int((copy_of == j).nonzero()[0]) for j in range(c)])
                xs = xs + delta[one_input_each.to(delta.device)].to(x.dtype)
            if self.want_leaves:
                xs = xs + self._leaf(f"a{layer}", (c, *x.shape)).to(x.dtype)
            return (xs.reshape(c * x.shape[0], *x.shape[1:]), *args[1:])
        return fn

    def _merge(self, layer: int, which: str):
        H, G = self.graph.n_heads, self.graph.n_kv_heads

        def fn(act, hook):
            if not self._split.get(layer):
                return None
            copy_of = self._copy_of[layer].to(act.device)
            per = act.view(int(copy_of.max()) + 1, self.rows, *act.shape[1:])
            heads = act.shape[2]
            first = {"q": 0, "k": H, "v": H + G}[which]
            idx = torch.arange(heads, device=act.device)
            mine = per[copy_of[first + idx], :, :, idx]  # [heads, rows, pos, d_head]: head i from input first + i
            return torch.cat([mine.permute(1, 2, 0, 3), act[self.rows:]])
        return fn

    def _expand_mask(self, layer: int):
        """A per-row attention mask (Gemma 3's sliding window) repeats for the copies, split or grown."""
        def fn(mod, args, kwargs):
            mask = kwargs.get("attention_mask")
            x = kwargs.get("hidden_states", args[0] if args else None)
            if not isinstance(mask, torch.Tensor) or x is None or mask.shape[0] in (1, x.shape[0]):
                return None
            repeat = x.shape[0] // self.n
            return args, {**kwargs, "attention_mask": mask[:self.n].repeat(repeat, *([1] * (mask.dim() - 1)))}
        return fn

    def _first_rows(self, layer: int):
        """Only the merged rows go through the output projection (the other copies are dropped anyway)."""
        def fn(mod, args):
            if not self._split.get(layer):
                return None
            return (args[0][:self.rows], *args[1:])
        return fn

    def _keep_first(self, mod, args, output):
        first = output[0] if isinstance(output, tuple) else output
        if first.shape[0] == self.rows:
            return None
        first = first[:self.rows]
        return (first, *output[1:]) if isinstance(output, tuple) else first

    def _shift_input(self, name: str, prefix: int, v: int):
        def fn(mod, args):
            x = args[0]
            delta = self._delta(prefix, v)
            if delta is not None:
                x = x + delta.to(x.dtype)
            if self.want_leaves:
                x = x + self._leaf(name, x.shape).to(x.dtype)
            return None if x is args[0] else (x, *args[1:])
        return fn

    # ------------------------------------------------------------------ writes of this run
    def _store(self, start: int, writes: torch.Tensor) -> None:
        if self.removed is None:
            return
        w = writes.detach().float().view(writes.shape[0], self.active, self.n, *writes.shape[2:])
        ref = self.ref[start:start + writes.shape[0]].to(w.device)[:, None]
        new = (w - ref).transpose(0, 1)
        self.diff[:self.active, start:start + writes.shape[0]] = new
        assert start == self.summed, "nodes are written in graph order"
        self.total[:self.active] += new.sum(1)
        self.summed = start + writes.shape[0]

    def _record_input(self, act, hook):
        self._store(0, act[None])

    def _record_heads(self, layer: int):
        def fn(z, hook):
            if self.removed is not None:
                self._store(self.graph.head(layer, 0), head_writes(self.model, layer, z[:self.rows]))
        return fn

    def _record_mlp(self, layer: int):
        def fn(act, hook):
            self._store(self.graph.mlp(layer), act[None])
        return fn
