"""Feature ablation against a baseline of random ablations of the same size.

A behaviour metric is any function of the hooks it is run with, returning a float (the IOI
logit difference, the CE loss on held-out text, a probe's accuracy ...). The SAE is spliced
with its error term kept, so with no edit the model is unchanged and the metric moves only
through the ablated latents.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from interventions.sae import SAERun, TorchSAE
from interventions.splice import FeatureEdit, splice_hook
from mechinterp.formats.bounds import bounds, check_bounds

Metric = Callable[[list], float]


@dataclass(frozen=True)
class AblateConfig(SAERun):
    features: str = "auto:8"
    """Comma-separated latent indices, or auto:N for the N latents most active on the eval inputs."""
    eval: str = field(default="ioi", metadata={"choices": ("ioi", "ce")})
    """ioi: mean IOI logit difference; ce: next-token loss on held-out windows of the SAE's store."""
    mode: str = field(default="zero", metadata={"choices": ("zero", "mean")})
    """Ablate to zero or to the latent's mean activation."""
    n_random: int = field(default=20, metadata=bounds(1))
    """Random ablations of the same size (the baseline)."""
    n_prompts: int = field(default=32, metadata=bounds(1))
    """IOI prompts, or held-out windows for --eval ce."""
    batch: int = field(default=8, metadata=bounds(1))
    """Inputs per forward pass."""
    out: str | None = None
    """Output directory (ablation.json; None: runs/ablate)."""

    def latents(self) -> list[int] | int:
        """The latent list, or the N of auto:N."""
        try:
            if self.features.startswith("auto:"):
                return int(self.features[5:])
            return [int(f) for f in self.features.split(",") if f.strip()]
        except ValueError:
            raise ValueError(f"--features must be comma-separated integers or auto:N, got {self.features!r}") from None

    def __post_init__(self):
        check_bounds(self)
        chosen = self.latents()
        if not chosen or (isinstance(chosen, int) and chosen < 1):
            raise ValueError(f"--features names no latent ({self.features!r})")
        if self.n_random < 0 or self.n_prompts < 1 or self.batch < 1:
            raise ValueError("--n_random must be >= 0, --n_prompts and --batch positive")


def latent_stats(model, sae: TorchSAE, tokens: torch.Tensor, first_pos: int = 1,
                 batch: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean activation, fired at least once) of every latent over token windows (positions >= first_pos)."""
    hook = sae.check_fits(model)
    layer = model.site(hook).layer
    total, fired, count = torch.zeros(sae.d_sae), torch.zeros(sae.d_sae, dtype=torch.bool), 0
    with torch.no_grad():
        for i in range(0, len(tokens), batch):
            _, cache = model.run_with_cache(tokens[i:i + batch], names=[hook],
                                            stop_at_layer=None if layer is None else layer + 1)
            f = sae.encode(cache[hook][:, first_pos:].flatten(0, 1).float()).cpu()
            total += f.sum(0)
            fired |= (f > 0).any(0)
            count += f.shape[0]
    return total / max(count, 1), fired


def run_ablation_stage(model, sae: TorchSAE, cfg: AblateConfig) -> dict:
    """The ablation stage on a named behaviour: 'ioi' (mean logit difference IO - S over n
    IOI prompts) or 'ce' (mean next-token loss over n held-out windows of the SAE's store).
    cfg.features: latent indices, or auto:N: the N latents most active on the eval inputs."""
    features, eval_kind, mode, n_random, n, seed, batch = (cfg.latents(), cfg.eval, cfg.mode, cfg.n_random,
                                                           cfg.n_prompts, cfg.seed, cfg.batch)
    hook = sae.check_fits(model)
    if eval_kind == "ioi":
        from extract.ioi.metrics import logit_diff
        from extract.ioi.prompts import make_ioi

        ds = make_ioi(model, n=n, seed=seed)
        tokens, first_pos = ds.tokens, 1 if model.bos_token_id is not None else 0

        def metric(hooks):
            with torch.no_grad():
                return float(logit_diff(model.run_with_hooks(tokens, hooks=hooks), ds.io_tok, ds.s_tok,
                                        ds.pos["end"]).mean())
    elif eval_kind == "ce":
        from interventions.ce_loss import heldout_tokens, next_token_loss

        windows, first_pos = heldout_tokens(sae, n)
        tokens = torch.as_tensor(windows, dtype=torch.long)

        def metric(hooks):
            return next_token_loss(model, tokens, hooks, batch)
    else:
        raise ValueError(f"unknown --eval {eval_kind!r}; use ioi or ce")
    means, alive = latent_stats(model, sae, tokens, first_pos, batch)
    if isinstance(features, int):
        features = means.topk(features).indices.tolist()
    dead_chosen = [f for f in features if 0 <= f < sae.d_sae and not alive[f]]
    result = ablation_study(sae, features, metric, alive, means, mode, n_random, seed, first_pos)
    return {**result, "eval": eval_kind, "hook": hook, "n_inputs": int(len(tokens)),
            "chosen_never_fire_on_eval": dead_chosen}


def ablation_edit(features: list[int], mode: str, means: torch.Tensor | None, first_pos: int = 0) -> FeatureEdit:
    positions = slice(first_pos, None) if first_pos else None
    if mode == "zero":
        return FeatureEdit(zero=list(features), positions=positions)
    if mode == "mean":
        if means is None:
            raise ValueError("mean ablation needs the latents' mean activations")
        return FeatureEdit(mean={int(i): float(means[i]) for i in features}, positions=positions)
    raise ValueError(f"unknown ablation mode {mode!r}; use zero or mean")


def ablation_study(sae: TorchSAE, features: list[int], metric: Metric, alive: torch.Tensor | None = None,
                   means: torch.Tensor | None = None, mode: str = "zero", n_random: int = 20, seed: int = 0,
                   first_pos: int = 0) -> dict:
    """Metric clean, with the SAE spliced (no edit), with `features` ablated, and with
    `n_random` random sets of as many latents drawn from the alive ones (excluding `features`)."""
    bad = [f for f in features if not 0 <= f < sae.d_sae]
    if bad:
        raise ValueError(f"features {bad} out of range: the SAE has {sae.d_sae} latents (0..{sae.d_sae - 1})")
    if not features:
        raise ValueError("no features to ablate; pass --features 12,40,...")
    pool = np.flatnonzero(alive.cpu().numpy()) if alive is not None else np.arange(sae.d_sae)
    pool = np.setdiff1d(pool, features)
    if len(pool) < len(features):
        raise ValueError(f"only {len(pool)} other alive latents to draw random baselines of size {len(features)} from")
    rng = np.random.default_rng(seed)

    def run(edit: FeatureEdit | None) -> float:
        return float(metric([] if edit is None else [splice_hook(sae, edit, keep_error=True)]))

    clean = run(None)
    spliced_no_edit = run(FeatureEdit())
    chosen = run(ablation_edit(features, mode, means, first_pos))
    random_values = [run(ablation_edit(list(rng.choice(pool, len(features), replace=False)), mode, means, first_pos))
                     for _ in range(n_random)]
    rand = np.array(random_values)
    effect, rand_effects = chosen - clean, rand - clean
    return {
        "features": [int(f) for f in features], "mode": mode, "metric_clean": clean,
        "metric_spliced_no_edit": spliced_no_edit, "metric_ablated": chosen, "effect": effect,
        "random_metric_mean": float(rand.mean()) if n_random else None,
        "random_metric_std": float(rand.std()) if n_random else None,
        "random_metrics": random_values,
        # how many random ablations moved the metric at least as far as the chosen one did
        "random_fraction_as_extreme": float(np.mean(np.abs(rand_effects) >= abs(effect))) if n_random else None,
        "n_random": n_random, "alive_pool": int(len(pool)),
    }
