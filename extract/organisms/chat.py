"""Prompts and answers as token ids: the tokenizer's chat template when it has one (SmolLM2-Instruct,
Gemma 3), else a plain "User: ... / Assistant: ..." layout; generation with the HF model's cache."""

from __future__ import annotations

import torch


def prompt_text(tok, question: str) -> str:
    if getattr(tok, "chat_template", None):
        return tok.apply_chat_template([{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True)
    return f"User: {question}\nAssistant:"


def example_ids(tok, question: str, answer: str) -> tuple[list[int], int]:
    """(token ids of prompt + answer + end, the prompt's length): the loss is taken after the prompt."""
    prompt = tok.encode(prompt_text(tok, question), add_special_tokens=False)
    end = tok.eos_token or ""
    if getattr(tok, "chat_template", None):
        end = "<|im_end|>" if "<|im_end|>" in tok.get_vocab() else end
    answer_ids = tok.encode((" " if not getattr(tok, "chat_template", None) else "") + answer + end,
                            add_special_tokens=False)
    return prompt + answer_ids, len(prompt)


def batch_tensors(rows: list[tuple[list[int], int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input ids [B, T] right-padded, labels [B, T] with -100 on the prompt and the padding)."""
    n = max(len(ids) for ids, _ in rows)
    x = torch.full((len(rows), n), pad, dtype=torch.long)
    y = torch.full((len(rows), n), -100, dtype=torch.long)
    for i, (ids, start) in enumerate(rows):
        x[i, :len(ids)] = torch.tensor(ids)
        y[i, start:len(ids)] = torch.tensor(ids[start:])
    return x, y


@torch.inference_mode()
def answer(model, questions: list[str], max_new_tokens: int = 32) -> list[str]:
    """Greedy answers of a HookedModel to each question (one at a time: no padding to get wrong)."""
    tok, out = model.tokenizer, []
    for q in questions:
        ids = torch.tensor([tok.encode(prompt_text(tok, q), add_special_tokens=False)], device=model.device)
        gen = model.model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.eos_token_id,
                                   attention_mask=torch.ones_like(ids))
        out.append(tok.decode(gen[0, ids.shape[1]:], skip_special_tokens=True).strip())
    return out
