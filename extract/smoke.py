"""The smoke stage's library call: prove that model, device and hooks work, in a few lines."""

from __future__ import annotations

import torch

from extract.models import load_model

IOI_PROMPT = "When Mary and John went to the store, John gave a drink to"


def smoke(model_name: str, device: str = "auto", hook: str | None = None, prompt: str = IOI_PROMPT, top: int = 5) -> list[str]:
    model = load_model(model_name, device=device)
    hook = hook or f"blocks.{model.n_layers // 2}.hook_resid_pre"
    tokens = model.to_tokens(prompt)
    logits, cache = model.run_with_cache(tokens, names=[hook])
    probs = torch.softmax(logits[0, -1].float(), dim=-1)
    best = probs.topk(top)
    guesses = ", ".join(f"{model.tokenizer.decode([int(i)])!r} {float(p):.3f}" for p, i in zip(best.values, best.indices))
    return [
        f"model: {model.name} ({model.config.model_type}, {model.n_layers} layers, d_model {model.d_model}) from {model.weights}",
        f"device: {model.device.type}",
        f"logits shape: {tuple(logits.shape)}",
        f"activation hook shape: {tuple(cache[hook].shape)}  ({hook})",
        f"prompt: {prompt!r}",
        f"top next tokens: {guesses}",
    ]
