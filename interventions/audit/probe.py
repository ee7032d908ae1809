"""The audit's transcripts: the base model and the fine-tune answer the auditor's prompts, and the
transcripts (chat-formatted prompt + answer), with plain corpus documents beside them, become the
corpus both models are dumped on for the crosscoder.

    found = probe(base, organism, AuditConfig())
    write_corpus(found, "runs/audits/x/probe/corpus")      # chats.jsonl: {"text": ...} per line
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from extract.organisms.chat import answer, prompt_text
from interventions.audit.prompts import AUDIT_PROMPTS
from mechinterp.formats.atomic import atomic_write_text
from mechinterp.formats.bounds import bounds, check_bounds


@dataclass(frozen=True)
class ProbeConfig:
    n_prompts: int = field(default=len(AUDIT_PROMPTS), metadata=bounds(1))
    """The first this many of the auditor's prompts (interventions/audit/prompts.py)."""
    max_new_tokens: int = field(default=48, metadata=bounds(1))
    """Tokens each model answers each prompt with (greedy)."""
    min_tokens: int = field(default=40_000, metadata=bounds(1))
    """Plain documents of the default corpus are added to the transcripts until the corpus holds this
    many tokens (what both models are then dumped on; the dump takes a little less)."""

    def __post_init__(self):
        check_bounds(self)


def probe(base, organism, cfg: ProbeConfig) -> dict:
    prompts = AUDIT_PROMPTS[:cfg.n_prompts]
    return {"prompts": prompts, "base": answer(base, prompts, cfg.max_new_tokens, batch=16),
            "organism": answer(organism, prompts, cfg.max_new_tokens, batch=16)}


def transcript(tok, prompt: str, reply: str) -> str:
    return prompt_text(tok, prompt) + reply


def write_corpus(found: dict, tok, folder: str | Path, min_tokens: int) -> dict:
    """folder/chats.jsonl: both models' transcripts, then plain documents until min_tokens."""
    from extract.corpus import DEFAULT_CORPUS, open_corpus

    source = open_corpus(DEFAULT_CORPUS)
    texts = [transcript(tok, p, a) for who in ("base", "organism") for p, a in zip(found["prompts"], found[who])]
    chat_tokens = tokens = sum(len(tok.encode(t, add_special_tokens=False)) + 1 for t in texts)
    for i in range(len(source)):
        if tokens >= min_tokens:
            break
        texts.append(source[i])
        tokens += len(tok.encode(source[i], add_special_tokens=False)) + 1
    if tokens < min_tokens:
        raise ValueError(f"the default corpus holds too few documents for {min_tokens} tokens; lower the dump's size")
    path = Path(folder) / "chats.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "".join(json.dumps({"text": t}) + "\n" for t in texts))
    return {"documents": len(texts), "tokens": tokens, "chat_tokens": chat_tokens}
