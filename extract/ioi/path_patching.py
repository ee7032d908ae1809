"""Path patching (Wang et al. 2022, sec. 3.1; ARENA's recipe), batched over senders.

For each sender head, the effect that flows *only* along sender -> receivers' q/k/v:
  1. run the clean prompts with the sender's z taken from the corrupted (e.g. ABC) run and every
     other head frozen to its clean z (MLPs recompute); record the receivers' q/k/v;
  2. run the clean prompts with just those receiver inputs patched in; measure the metric.
Each sender is one copy of the batch in both runs (see patching.run_copies).

receivers='logits' patches the final residual at the end position instead: the sender's
direct path to the logits (through MLPs, with the other heads frozen).

Under grouped-query attention (SmolLM2: 9 query heads share 3 kv heads) a receiver's k or v
is a kv head's; patching it reaches every query head of that group.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from extract.patching import Edit, Metric, run_copies


def _z_cache(model, tokens):
    names = [f"blocks.{layer}.attn.hook_z" for layer in range(model.n_layers)]
    _, cache = model.run_with_cache(tokens.to(model.device), names=names, cache_device="cpu")
    return cache


@torch.no_grad()
def path_patch(model, clean_tokens: torch.Tensor, corrupt_tokens: torch.Tensor, senders: Sequence[tuple[int, int]],
               receivers: Sequence[tuple[int, int]] | str, metric: Metric, inputs: str = "q",
               clean_z: dict | None = None, corrupt_z: dict | None = None, max_rows: int = 1024) -> dict:
    """Metric per sender after patching sender -> receivers[inputs] ('q', 'k', 'v' or a
    combination like 'qkv'). Returns {"values": [len(senders)], "base": clean metric}."""
    n = clean_tokens.shape[0]
    clean_z = clean_z or _z_cache(model, clean_tokens)
    corrupt_z = corrupt_z or _z_cache(model, corrupt_tokens)
    L = model.n_layers
    if receivers == "logits":
        sites = [(f"blocks.{L - 1}.hook_resid_post", (-1,))]
        stop = None
    else:
        if not receivers:
            raise ValueError("no receivers")
        if any(c not in "qkv" for c in inputs) or not inputs:
            raise ValueError(f"inputs must be made of q, k, v; got {inputs!r}")
        group = model.n_heads // model.n_kv_heads
        sites = []
        for layer, head in receivers:
            for c in inputs:
                h = head if c == "q" else head // group
                site = (f"blocks.{layer}.attn.hook_{c}", (slice(None), h))
                if site not in sites:
                    sites.append(site)
        stop = max(layer for layer, _ in receivers) + 1
    last = (stop if stop is not None else L)
    active = [j for j, (layer, _) in enumerate(senders) if layer < last]
    freeze_layers = range(last)

    def freeze(layer):
        z = clean_z[f"blocks.{layer}.attn.hook_z"].to(model.device)

        def fn(act, hook):
            return z.repeat(act.shape[0] // n, 1, 1, 1).to(act.dtype)
        return fn

    hooks = [(f"blocks.{layer}.attn.hook_z", freeze(layer)) for layer in freeze_layers]
    copies = [[Edit(f"blocks.{senders[j][0]}.attn.hook_z", (slice(None), senders[j][1]))] for j in active]
    rec_names = sorted({name for name, _ in sites})
    step1 = run_copies(model, clean_tokens, copies, corrupt_z, None, max_rows=max_rows, hooks=hooks,
                       record=rec_names, stop_at_layer=stop)
    rec = step1["recorded"]
    copies2 = []
    for i in range(len(active)):
        copies2.append([Edit(name, idx, source=rec[name][i][(slice(None), *idx)]) for name, idx in sites])
    step2 = run_copies(model, clean_tokens, copies2, None, metric, max_rows=max_rows)
    base = step2["base"]
    if base is None:  # no active sender: measure the clean run alone
        base = float(run_copies(model, clean_tokens, [], None, metric)["base"])
    values = torch.full((len(senders),), base)
    per_prompt = step2["base_per_prompt"].repeat(len(senders), 1) if step2["base_per_prompt"] is not None else None
    for i, j in enumerate(active):
        values[j] = step2["values"][i]
        per_prompt[j] = step2["per_prompt"][i]
    return {"values": values, "per_prompt": per_prompt, "base": base}
