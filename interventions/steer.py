"""Feature steering: add alpha x a latent's decoder direction at the SAE's site and compare.

The edit keeps the SAE's error term, so the steered run differs from the clean one only by
alpha x W_dec[feature] (added at every position after BOS).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from interventions.sae import SAERun, TorchSAE
from interventions.splice import FeatureEdit, splice_hook
from mechinterp.formats.bounds import bounds, check_bounds


@dataclass(frozen=True)
class SteerConfig(SAERun):
    feature: str = "auto"
    """Latent index, or auto: a moderately frequent latent with a strong logit effect."""
    alpha: float | None = field(default=None, metadata=bounds())
    """Amount of the (unit-norm) decoder direction to add (None: 2x the site's mean norm on the prompt)."""
    prompt: str = "I think that"
    """Prompt to continue."""
    max_new_tokens: int = field(default=30, metadata=bounds(1))
    """Tokens generated, with and without steering."""
    top: int = field(default=10, metadata=bounds(1))
    """Tokens shown per logit table."""
    out: str | None = None
    """Output directory (steer_f<feature>_a<alpha>.json; None: runs/steer)."""

    def __post_init__(self):
        check_bounds(self)
        if not self.prompt.strip():
            raise ValueError("--prompt is empty; give the text to continue")
        if self.feature != "auto" and not self.feature.isdigit():
            raise ValueError(f"--feature must be a latent index or auto, got {self.feature!r}")


def feature_logit_effects(model, sae: TorchSAE, features: list[int] | torch.Tensor, top: int = 10) -> list[dict]:
    """Tokens each latent's decoder direction promotes and suppresses most (through the final norm)."""
    with torch.no_grad():
        logits = model.unembed_directions(sae.W_dec[torch.as_tensor(features, dtype=torch.long)])
    out = []
    for feature, row in zip(list(features), logits):
        up, down = row.topk(top), (-row).topk(top)
        out.append({"feature": int(feature),
                    "promoted": [{"token": model.tokenizer.decode([int(i)]), "id": int(i), "logit": float(v)}
                                 for v, i in zip(up.values, up.indices)],
                    "suppressed": [{"token": model.tokenizer.decode([int(i)]), "id": int(i), "logit": -float(v)}
                                   for v, i in zip(down.values, down.indices)]})
    return out


def pick_feature(model, sae: TorchSAE, frequencies=None, band=(0.002, 0.05)) -> int:
    """A latent worth steering with: among those firing on a moderate fraction of tokens (when the
    training frequencies are known), the one whose decoder direction promotes a token most."""
    candidates = torch.arange(sae.d_sae)
    if frequencies is not None:
        freq = torch.as_tensor(frequencies).reshape(-1)
        in_band = candidates[(freq >= band[0]) & (freq <= band[1])]
        candidates = in_band if len(in_band) else candidates
    with torch.no_grad():
        peak = model.unembed_directions(sae.W_dec[candidates]).max(-1).values
    return int(candidates[int(peak.argmax())])


@torch.no_grad()
def greedy(model, tokens: torch.Tensor, max_new_tokens: int, hooks=()) -> torch.Tensor:
    """Greedy continuation (no KV cache: every step reruns the hooked forward on the whole sequence)."""
    for _ in range(max_new_tokens):
        logits = model.run_with_hooks(tokens, hooks=hooks)
        tokens = torch.cat([tokens, logits[:, -1:].argmax(-1)], dim=1)
    return tokens


@torch.no_grad()
def steer(model, sae: TorchSAE, feature: int, alpha: float | None, prompt: str, max_new_tokens: int,
          top: int = 10) -> dict:
    """alpha None: twice the mean norm of the prompt's activations at the site (after BOS)."""
    if not 0 <= feature < sae.d_sae:
        raise ValueError(f"feature {feature} out of range: the SAE has {sae.d_sae} latents (0..{sae.d_sae - 1})")
    hook = sae.check_fits(model)
    tokens = model.to_tokens(prompt)
    first = 1 if model.bos_token_id is not None else 0
    _, cache = model.run_with_cache(tokens, names=[hook])
    site_norm = float(cache[hook][0, first:].flatten(1).norm(dim=-1).mean())
    alpha = 2.0 * site_norm if alpha is None else float(alpha)
    edit = FeatureEdit(steer={feature: alpha}, positions=slice(first, None))
    hooks = [splice_hook(sae, edit, keep_error=True, hook=hook)]
    effects = feature_logit_effects(model, sae, [feature], top)[0]
    p_clean = torch.softmax(model(tokens)[0, -1].float(), -1)
    p_steer = torch.softmax(model.run_with_hooks(tokens, hooks=hooks)[0, -1].float(), -1)
    moved = [{**t, "p_clean": float(p_clean[t["id"]]), "p_steered": float(p_steer[t["id"]])} for t in effects["promoted"]]
    n_prompt = tokens.shape[1]
    clean_ids = greedy(model, tokens, max_new_tokens)[0, n_prompt:]
    steer_ids = greedy(model, tokens, max_new_tokens, hooks)[0, n_prompt:]
    return {"feature": feature, "alpha": alpha, "site_mean_norm": site_norm, "hook": hook, "prompt": prompt,
            "clean": model.tokenizer.decode(clean_ids), "steered": model.tokenizer.decode(steer_ids),
            "top_tokens": moved, "suppressed": effects["suppressed"],
            "mean_p_top_tokens_clean": sum(m["p_clean"] for m in moved) / len(moved),
            "mean_p_top_tokens_steered": sum(m["p_steered"] for m in moved) / len(moved)}
