"""Batched activation patching: many patches per forward.

The engine runs `k` patched copies of a base batch (n prompts) in one forward. Copy j is a
list of edits (hook name, index, source); row block j*n:(j+1)*n of the batch carries it.
Row block 0 is the unpatched base run.

The batch *grows* inside the forward: a copy whose first edit sits in layer L is created at
the start of block L by repeating the base rows (the rows are identical before L, so blocks
0..L-1 run once for all of them). A full layer x position residual sweep therefore costs about
half the FLOPs of one forward per patch, and the big batches use the CPU/GPU far better than
n-row forwards (optionally, `suffix=True` also skips the unchanged prefix positions).
Only the end position's logits are computed (`logits_to_keep=1`; the IOI
prompts of a set all end at the same position). `max_rows` bounds the batch; the copies are
split into chunks that each fit.

Two exact savings on top (both on by default when they apply, see run_copies): a copy whose
sources equal the base run's activations bit for bit (e.g. positions before the first token
where clean and corrupted prompts differ) is not run at all, its result is the base run's;
and a copy patched only at positions >= p runs on tokens[p:] with the base run's keys and
values for the earlier positions (causal attention leaves those unchanged).

Directions: denoising (clean -> corrupted: base = corrupted prompts, sources = the clean run's
activations) and noising (corrupted -> clean: base = clean, sources = corrupted).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import torch

Metric = Callable[[torch.Tensor], torch.Tensor]
"""logits [rows, 1 or pos, vocab] -> [rows] (one value per prompt row)"""


@dataclass(frozen=True, eq=False)
class Edit:
    """Set activation[rows of the copy][(prompt, *index)] to a source value.

    index: what follows the batch dim; ints, slices, or a [n] tensor of per-prompt positions.
    source: the replacement for act[(prompts, *index)]; None takes it from the source cache
    (the same name, the same index)."""
    name: str
    index: tuple = ()
    source: torch.Tensor | None = None


def resid_edits(layers: Sequence[int], positions: Sequence, site: str = "hook_resid_pre") -> list[list[Edit]]:
    """One copy per (layer, position) cell, layer-major."""
    return [[Edit(f"blocks.{layer}.{site}", (p,))] for layer in layers for p in positions]


def _depth(model, name: str) -> int:
    site = model.site(name)
    if site.layer is not None:
        return site.layer
    return model.n_layers if name.startswith("ln_final") else -1


def _full_index(index: tuple, n: int, device) -> tuple:
    if any(isinstance(i, torch.Tensor) for i in index):
        return (torch.arange(n, device=device), *(i.to(device) if isinstance(i, torch.Tensor) else i for i in index))
    return (slice(None), *index)


def forward_end(model, tokens: torch.Tensor, hooks=(), stop_at_layer: int | None = None, grad: bool = False,
                **kwargs):
    """Logits at the last position only ([b, 1, vocab]) with hooks, under no_grad unless grad=True;
    falls back to all logits for models whose forward does not take logits_to_keep."""
    with torch.set_grad_enabled(grad):
        try:
            return model.run_with_hooks(tokens, hooks=hooks, stop_at_layer=stop_at_layer, logits_to_keep=1, **kwargs)
        except TypeError:
            return model.run_with_hooks(tokens, hooks=hooks, stop_at_layer=stop_at_layer, **kwargs)


# sites whose first index after the batch dim is the token position
_POS_FIRST = ("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out", "attn.hook_z",
              "attn.hook_q", "attn.hook_k", "attn.hook_v", "mlp.hook_post", "hook_embed", "hook_pos_embed")


def _first_position(edits: Sequence[Edit], T: int) -> int:
    """The earliest position any edit of a copy touches (0 when one is not position-specific)."""
    first = T
    for e in edits:
        if not e.name.endswith(_POS_FIRST) or not e.index:
            return 0
        p = e.index[0]
        if isinstance(p, torch.Tensor):
            first = min(first, int(p.min()))
        elif isinstance(p, int):
            first = min(first, p % T)
        else:
            return 0
    return 0 if first == T else first


def _shift(index: tuple, p: int, T: int) -> tuple:
    q = index[0]
    q = q - p if isinstance(q, torch.Tensor) else (q % T) - p
    return (q, *index[1:])


@torch.no_grad()
def run_copies(model, base_tokens: torch.Tensor, copies: Sequence[Sequence[Edit]], source_cache: dict | None = None,
               metric: Metric | None = None, *, max_rows: int = 1024, grow: bool = True, suffix: bool = True,
               skip_unchanged: bool = True, hooks: Sequence[tuple[str, Callable]] = (), record: Sequence[str] = (),
               stop_at_layer: int | None = None) -> dict:
    """Run every copy (a list of edits) on the base prompts, batched.

    Returns {"values": [k] mean metric per copy, "per_prompt": [k, n], "base": mean metric of
    the unpatched base rows, "base_per_prompt": [n], "recorded": {name: [k, n, ...]},
    "unchanged": [k] bool, the copies that needed no forward}.
    hooks: applied to all rows before the edits (e.g. freezing activations).
    record: hook names whose activation (after edits) is returned per copy.
    grow=False stacks all copies from the embedding on (the plain batched version).
    suffix=True: copies whose edits all sit at positions >= p run on tokens[p:] only, with the
    base run's keys and values for positions < p (causal attention: those are unchanged). The
    metric must read the end position. Off when hooks, record or stop_at_layer are given (as is
    skip_unchanged: copies whose every edit writes the value already there take the base
    run's metric without a forward).
    """
    n, T = base_tokens.shape
    k = len(copies)
    plain = not hooks and not record and stop_at_layer is None
    cache = {name: t.to(model.device) for name, t in (source_cache or {}).items()}
    use_suffix = suffix and grow and plain
    first = [_first_position(c, T) if use_suffix else 0 for c in copies]
    unchanged = [False] * k
    if skip_unchanged and plain and metric is not None and k:
        names = sorted({e.name for c in copies for e in c})
        _, base_acts = model.run_with_cache(base_tokens.to(model.device), names=names)
        unchanged = [bool(c) and all(_writes_same(e, base_acts, cache, n) for e in c) for c in copies]
    groups: dict[int, list[int]] = {}
    for j in range(k):
        if not unchanged[j]:
            groups.setdefault(first[j], []).append(j)
    if not groups:
        groups[0] = []  # one forward still gives the base metric
    values = torch.full((k, n), float("nan"))
    recorded: dict[str, torch.Tensor] = {}
    base_vals = None
    kv = None
    if any(p > 0 for p in groups):
        names = [f"blocks.{layer}.attn.hook_{c}" for layer in range(model.n_layers) for c in "kv"]
        _, kv = model.run_with_cache(base_tokens.to(model.device), names=names)
    for p, members in sorted(groups.items()):
        rows = max_rows * T // (T - p)  # the same number of tokens per forward
        out = _run_group(model, base_tokens, [copies[j] for j in members], cache, metric, rows, grow, hooks, record,
                         stop_at_layer, p, kv)
        if out["values"] is not None:
            values[members] = out["values"]
            base_vals = out["base"]
        for name, act in out["recorded"].items():
            recorded.setdefault(name, torch.empty(k, *act.shape[1:], dtype=act.dtype))[members] = act
    if base_vals is not None:
        values[torch.tensor(unchanged)] = base_vals
    return {"values": values.mean(1), "per_prompt": values, "recorded": recorded, "unchanged": torch.tensor(unchanged),
            "base": None if base_vals is None else float(base_vals.mean()), "base_per_prompt": base_vals}


def _writes_same(e: Edit, base_acts: dict, cache: dict, n: int) -> bool:
    act = base_acts[e.name]
    idx = _full_index(e.index, n, act.device)
    if e.source is None and e.name not in cache:
        return False
    src = e.source if e.source is not None else cache[e.name][idx]
    return torch.equal(src.to(act.device, act.dtype).expand_as(act[idx]), act[idx])


def _run_group(model, base_tokens, copies, cache, metric, max_rows, grow, hooks, record, stop_at_layer, p, kv):
    n, T = base_tokens.shape
    device = model.device
    base_tokens = base_tokens.to(device)
    k = len(copies)
    per_chunk = max(1, max_rows // n - 1)
    starts = [min(_depth(model, e.name) for e in c) if c else -1 for c in copies]
    if not grow:
        starts = [-1] * k
    order = sorted(range(k), key=lambda j: starts[j])  # stable: layer-major
    values = torch.full((k, n), float("nan")) if metric is not None else None
    recorded: dict[str, torch.Tensor] = {}
    base_vals = None
    extra = {}
    prefix_hooks = []
    if p > 0:
        extra = {"attention_mask": torch.ones(T - p, T, dtype=torch.bool, device=device).tril(p)[None, None],
                 "position_ids": torch.arange(p, T, device=device)[None]}

        def prepend(name):
            pre = kv[name][:, :p]

            def fn(act, hook):
                return torch.cat([pre.repeat(act.shape[0] // n, 1, 1, 1).to(act.dtype), act], 1)
            return fn
        prefix_hooks = [(name, prepend(name)) for name in kv]
    for c0 in range(0, max(k, 1), per_chunk):  # no copies: one forward of the base rows
        chunk = order[c0:c0 + per_chunk]
        # copies present from the start (edits on the embedding) come first, then the grown ones
        at_start = [j for j in chunk if starts[j] < 0]
        grown: dict[int, list[int]] = {}
        for j in chunk:
            if starts[j] >= 0:
                grown.setdefault(starts[j], []).append(j)
        slot: dict[int, int] = {}  # copy -> row block
        for j in at_start:
            slot[j] = len(slot) + 1
        for layer in sorted(grown):
            for j in grown[layer]:
                slot[j] = len(slot) + 1
        site_edits: dict[str, list[tuple[int, Edit]]] = {}
        for j in chunk:
            for e in copies[j]:
                site_edits.setdefault(e.name, []).append((slot[j] * n, e))

        def make_edit_fn(items):
            def fn(act, hook):
                act = act.clone()
                for off, e in items:
                    if off >= act.shape[0]:
                        raise AssertionError(f"copy rows {off} not present at {hook.name}")
                    src_idx = _full_index(e.index, n, act.device)
                    idx = _full_index(_shift(e.index, p, T), n, act.device) if p else src_idx
                    src = e.source if e.source is not None else cache[e.name][src_idx]
                    act[off:off + n][idx] = src.to(act.device, act.dtype)
                return act
            return fn

        rec_chunk: dict[str, torch.Tensor] = {}

        def make_record_fn(name):
            def fn(act, hook):
                rec_chunk[name] = act.detach().clone()
            return fn

        all_hooks = list(hooks) + [(name, make_edit_fn(items)) for name, items in site_edits.items()] \
            + prefix_hooks + [(name, make_record_fn(name)) for name in record]
        tokens = base_tokens[:, p:].repeat(1 + len(at_start), 1)
        with ExitStack() as stack:
            for layer in sorted(grown):
                stack.callback(model._layers[layer].register_forward_pre_hook(
                    grow_rows(n, len(grown[layer])), with_kwargs=True).remove)
            logits = forward_end(model, tokens, all_hooks, stop_at_layer, **extra)
        if logits is not None and metric is not None:
            vals = metric(logits).float().cpu().view(-1, n)
            base_vals = vals[0]
            for j in chunk:
                values[j] = vals[slot[j]]
        for name, act in rec_chunk.items():
            act = act.cpu().view(-1, n, *act.shape[1:])
            out = recorded.setdefault(name, torch.empty(k, *act.shape[1:], dtype=act.dtype))
            for j in chunk:
                out[j] = act[slot[j]] if slot[j] < act.shape[0] else act[0]
    return {"values": values, "base": base_vals, "recorded": recorded}


def grow_rows(n: int, count: int):
    """A forward pre-hook (with_kwargs) that appends `count` copies of the first n rows of the block's input."""
    def hook(mod, args, kwargs):
        x = args[0] if args else kwargs["hidden_states"]
        x = torch.cat([x, x[:n].repeat(count, *([1] * (x.dim() - 1)))])
        return ((x, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": x})
    return hook


@torch.no_grad()
def run_one(model, base_tokens: torch.Tensor, edits: Sequence[Edit], source_cache: dict | None,
            metric: Metric) -> torch.Tensor:
    """One forward for one patch (the reference the batched engine must match): [n] metric."""
    n = base_tokens.shape[0]
    cache = source_cache or {}
    by_name: dict[str, list[Edit]] = {}
    for e in edits:
        by_name.setdefault(e.name, []).append(e)

    def make(es):
        def fn(act, hook):
            act = act.clone()
            for e in es:
                idx = _full_index(e.index, n, act.device)
                act[idx] = (e.source if e.source is not None else cache[e.name].to(act.device)[idx]).to(act.dtype)
            return act
        return fn

    logits = forward_end(model, base_tokens.to(model.device), [(name, make(es)) for name, es in by_name.items()])
    return metric(logits).float().cpu()


# ---------------------------------------------------------------------------- sweeps


def site_names(model, kinds: Sequence[str]) -> list[str]:
    return [f"blocks.{layer}.{kind}" for layer in range(model.n_layers) for kind in kinds]


def sweep(model, base_tokens, source_cache, metric, site: str, shape: Sequence[int], index_fn,
          layers: Sequence[int] | None = None, **kw) -> torch.Tensor:
    """Generic grid: one copy per (layer, *cell) with Edit(blocks.{layer}.{site}, index_fn(*cell)).
    Returns [len(layers), *shape] mean metric."""
    import itertools

    layers = list(range(model.n_layers)) if layers is None else list(layers)
    cells = list(itertools.product(*(range(s) for s in shape)))
    copies = [[Edit(f"blocks.{layer}.{site}", index_fn(*cell))] for layer in layers for cell in cells]
    out = run_copies(model, base_tokens, copies, source_cache, metric, **kw)
    return out["values"].view(len(layers), *shape)


def residual_sweep(model, base_tokens, source_cache, metric, site="hook_resid_pre", layers=None, **kw):
    """[layer, pos]: patch one position of one layer's residual (or attn_out / mlp_out)."""
    return sweep(model, base_tokens, source_cache, metric, site, [base_tokens.shape[1]], lambda p: (p,), layers, **kw)


def head_sweep(model, base_tokens, source_cache, metric, site="attn.hook_z", layers=None, **kw):
    """[layer, head]: patch one head's z/q/k/v (all positions) or attention pattern."""
    if site == "attn.hook_pattern":
        return sweep(model, base_tokens, source_cache, metric, site, [model.n_heads], lambda h: (h,), layers, **kw)
    heads = model.n_kv_heads if site in ("attn.hook_k", "attn.hook_v") else model.n_heads
    return sweep(model, base_tokens, source_cache, metric, site, [heads], lambda h: (slice(None), h), layers, **kw)


def head_by_position_sweep(model, base_tokens, source_cache, metric, positions: dict[str, torch.Tensor | int],
                           layers=None, **kw):
    """[layer, head, position]: one head's z at one position (positions: label -> int or [n] tensor)."""
    pos = list(positions.values())
    return sweep(model, base_tokens, source_cache, metric, "attn.hook_z", [model.n_heads, len(pos)],
                 lambda h, i: (pos[i], h), layers, **kw)


PATCH_SITES = ("hook_resid_pre", "hook_attn_out", "hook_mlp_out", "attn.hook_z", "attn.hook_q", "attn.hook_k",
               "attn.hook_v", "attn.hook_pattern")


def cache_sites(model, tokens, kinds=PATCH_SITES):
    """The patterns come from a run of their own: a pattern hook makes attention eager, whose
    rounding would leak into every later site (and run_copies' exact no-op test compares
    sources with unhooked runs)."""
    names = site_names(model, kinds)
    cache = {}
    for group in ([n for n in names if not n.endswith("hook_pattern")], [n for n in names if n.endswith("hook_pattern")]):
        if group:
            cache.update(model.run_with_cache(tokens.to(model.device), names=group, cache_device="cpu")[1])
    return cache
