"""The smoke stage's library call: prove that model, device and hooks work, in a few lines."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from extract.models import load_model
from mechinterp.formats.bounds import bounds, check_bounds
from mechinterp.formats.defaults import DEFAULT_MODEL

IOI_PROMPT = "When Mary and John went to the store, John gave a drink to"
# a human VH3-23 heavy chain with its first conserved cysteine (IMGT 23) masked
MASKED_HEAVY_CHAIN = ("EVQLVESGGGLVQPGGSLRLS[MASK]AASGFTFSSYAMSWVRQAPGKGLEWVSAISGSGGSTYYADSVKGRFTISRDNSKNTLYLQMNSLRAEDT"
                      "AVYYCAKDRGYSSGWYFDYWGQGTLVTVSS")


@dataclass(frozen=True)
class SmokeConfig:
    model: str = DEFAULT_MODEL
    """Registry name, Hugging Face repo id or local model directory (extract/models.py)."""
    device: str = "auto"
    """auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps."""
    hook: str | None = None
    """Hook to capture (None: the middle layer's hook_resid_pre)."""
    prompt: str | None = None
    """Prompt to run (None: the IOI prompt; for a masked LM such as antiberty, a heavy chain with a
    [MASK]ed cysteine). Masked LMs predict every [MASK] position."""
    top: int = field(default=5, metadata=bounds(1))
    """Next-token guesses shown."""

    def __post_init__(self):
        check_bounds(self)
        if self.prompt is not None and not self.prompt:
            raise ValueError("--prompt is empty; give some text")


def smoke(cfg: SmokeConfig) -> list[str]:
    model = load_model(cfg.model, device=cfg.device)
    hook = cfg.hook or f"blocks.{model.n_layers // 2}.hook_resid_pre"
    prompt, top = cfg.prompt or (MASKED_HEAVY_CHAIN if model.masked_lm else IOI_PROMPT), cfg.top
    tokens = model.to_tokens(prompt)
    logits, cache = model.run_with_cache(tokens, names=[hook])
    if model.masked_lm:
        positions = (tokens[0] == model.tokenizer.mask_token_id).nonzero()[:, 0].tolist()
        if not positions:
            raise ValueError(f"{model.name} is a masked LM: put {model.tokenizer.mask_token} where it should predict")
        what = "masked positions"
    else:
        positions, what = [tokens.shape[1] - 1], "next tokens"

    def guesses(pos: int) -> str:
        best = torch.softmax(logits[0, pos].float(), dim=-1).topk(top)
        return ", ".join(f"{model.tokenizer.decode([int(i)])!r} {float(p):.3f}" for p, i in zip(best.values, best.indices))

    return [
        f"model: {model.name} ({model.config.model_type}, {model.n_layers} layers, d_model {model.d_model}) from {model.weights}",
        f"device: {model.device.type}",
        f"logits shape: {tuple(logits.shape)}",
        f"activation hook shape: {tuple(cache[hook].shape)}  ({hook})",
        f"prompt: {prompt!r}",
        *(f"top {what}{f' (position {p})' if model.masked_lm else ''}: {guesses(p)}" for p in positions),
    ]
