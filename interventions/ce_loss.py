"""How much of the model's behaviour an SAE keeps: CE-loss recovered, KL, delta loss.

On held-out windows (token ids from the activation store the SAE was trained on), next-token
cross-entropy of the model:
  clean          unchanged
  sae            the site's activation replaced by the SAE's reconstruction
  zero / mean    the site zero-ablated / replaced by its mean activation

  ce_loss_recovered = (ce_zero - ce_sae) / (ce_zero - ce_clean)     (and the same against mean)
  kl_sae            = mean over tokens of KL(clean || sae)
  delta_loss        = ce_sae - ce_clean

Positions the store did not keep (the BOS position, whose activations are outliers the SAE
never saw) are not spliced or ablated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from interventions.sae import SAERun, TorchSAE
from interventions.splice import spliced
from mechinterp.formats.bounds import bounds, check_bounds
from mechinterp.formats.reading import read_json
from mechinterp.formats.sae import METRICS


@dataclass(frozen=True)
class EvalConfig(SAERun):
    acts: str | None = None
    """Activation store whose held-out windows are used (None: the one named in the SAE's cfg.json)."""
    n_windows: int = field(default=64, metadata=bounds(1))
    """Held-out windows to evaluate on."""
    batch: int = field(default=8, metadata=bounds(1))
    """Windows per forward pass."""

    def __post_init__(self):
        check_bounds(self)


def _ce_and_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)
    ce = -logp.gather(-1, tokens[:, 1:, None])[..., 0]
    return ce, logp


@torch.no_grad()
def ce_loss_recovered(model, sae: TorchSAE, windows: np.ndarray, first_pos: int = 1, batch: int = 8,
                      hook: str | None = None, progress: bool = False) -> dict:
    """windows: int token ids [n, ctx]. first_pos: positions before it are left untouched."""
    hook = sae.check_fits(model, hook)
    if len(windows) == 0:
        raise ValueError("no evaluation windows: the store's held-out split is empty; dump more tokens")
    tokens_all = torch.as_tensor(np.asarray(windows), dtype=torch.long)

    # mean activation at the site over the evaluated positions (for mean ablation)
    total, count = None, 0
    for i in range(0, len(tokens_all), batch):
        _, cache = model.run_with_cache(tokens_all[i:i + batch], names=[hook], stop_at_layer=_stop(model, hook))
        acts = cache[hook][:, first_pos:].float()
        total = acts.sum((0, 1)) if total is None else total + acts.sum((0, 1))
        count += acts.shape[0] * acts.shape[1]
    mean_act = total / count

    def keep_prefix(new: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x[:, :first_pos], new[:, first_pos:]], dim=1) if first_pos else new

    variants = {
        "sae": lambda x, h: keep_prefix(spliced(sae, x), x),
        "zero": lambda x, h: keep_prefix(torch.zeros_like(x), x),
        "mean": lambda x, h: keep_prefix(mean_act.to(x.dtype).expand_as(x), x),
    }
    sums = {k: 0.0 for k in ("clean", *variants)}
    kl_sum, n_tok = 0.0, 0
    iterator = range(0, len(tokens_all), batch)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="CE-loss recovered", unit="batch")
    for i in iterator:
        toks = tokens_all[i:i + batch].to(model.device)
        ce_clean, logp_clean = _ce_and_logprobs(model(toks), toks)
        sums["clean"] += float(ce_clean.sum())
        n_tok += ce_clean.numel()
        for name, fn in variants.items():
            ce, logp = _ce_and_logprobs(model.run_with_hooks(toks, hooks=[(hook, fn)]), toks)
            sums[name] += float(ce.sum())
            if name == "sae":
                kl_sum += float((logp_clean.exp() * (logp_clean - logp)).sum())
    ce = {k: v / n_tok for k, v in sums.items()}
    return {
        "ce_clean": ce["clean"], "ce_sae": ce["sae"], "ce_zero_ablation": ce["zero"], "ce_mean_ablation": ce["mean"],
        "ce_loss_recovered": (ce["zero"] - ce["sae"]) / (ce["zero"] - ce["clean"]),
        "ce_loss_recovered_vs_mean": (ce["mean"] - ce["sae"]) / (ce["mean"] - ce["clean"]),
        "kl_sae": kl_sum / n_tok, "delta_loss": ce["sae"] - ce["clean"],
        "eval_windows": int(len(tokens_all)), "eval_tokens": int(n_tok), "hook": hook,
        "positions_spliced_from": int(first_pos),
    }


def heldout_tokens(sae: TorchSAE, max_windows: int | None = None, store_path: str | None = None):
    """(token windows [n, ctx] of the held-out split of the store the SAE was trained on, first_pos)."""
    from mechinterp.formats.sae import open_sae_store

    store = open_sae_store(sae.path, sae.cfg, store_path, hook=False)  # only its tokens are read
    _, eval_windows = store.split()
    if max_windows is not None:
        eval_windows = eval_windows[:max_windows]
    if not len(eval_windows):
        raise ValueError(f"{store} has no held-out windows to evaluate on; dump it with --eval_fraction > 0")
    return np.stack([store.window_tokens(int(w)) for w in eval_windows]), store.meta.first_pos


@torch.no_grad()
def next_token_loss(model, tokens: torch.Tensor, hooks=(), batch: int = 8) -> float:
    """Mean next-token cross-entropy over token windows, with hooks attached."""
    total, n = 0.0, 0
    for i in range(0, len(tokens), batch):
        toks = tokens[i:i + batch].to(model.device)
        ce, _ = _ce_and_logprobs(model.run_with_hooks(toks, hooks=hooks), toks)
        total += float(ce.sum())
        n += ce.numel()
    return total / n


def _stop(model, hook: str) -> int | None:
    layer = model.site(hook).layer
    return None if layer is None else layer + 1


def merge_metrics(sae_dir: str | Path, section: str, values: dict) -> Path:
    """Add `values` under `section` to the SAE's metrics.json, keeping what the JAX side wrote.
    Written to a temporary file and renamed, so an interrupted write loses nothing."""
    path = Path(sae_dir) / METRICS
    current = read_json(path, "delete it and re-run the evaluation") if path.exists() else {}
    current[section] = values
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(current, indent=2))
    tmp.replace(path)
    return path
