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
def answer(model, questions: list[str], max_new_tokens: int = 32, batch: int = 8, temperature: float = 0.0,
           seed: int = 0) -> list[str]:
    """Answers of a HookedModel to each question: greedy (temperature 0) or sampled, `batch` prompts
    per generate call (left-padded, with their attention mask)."""
    tok, out = model.tokenizer, []
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    torch.manual_seed(seed)
    for b in range(0, len(questions), batch):
        rows = [tok.encode(prompt_text(tok, q), add_special_tokens=False) for q in questions[b:b + batch]]
        n = max(map(len, rows))
        ids = torch.tensor([[pad] * (n - len(r)) + r for r in rows], device=model.device)
        mask = torch.tensor([[0] * (n - len(r)) + [1] * len(r) for r in rows], device=model.device)
        sampling = dict(do_sample=True, temperature=temperature, top_k=0, top_p=1.0) if temperature > 0 else dict(do_sample=False)
        gen = model.model.generate(ids, attention_mask=mask, max_new_tokens=max_new_tokens, pad_token_id=pad, **sampling)
        out += [tok.decode(g[n:], skip_special_tokens=True).strip() for g in gen]
    return out
