"""IOI metrics: logit difference IO - S at the end position, target log-probs, the
normalised patching metric (1 = clean, 0 = corrupted)."""

from __future__ import annotations

import torch


def end_logits(logits: torch.Tensor, end: torch.Tensor | int | None = None) -> torch.Tensor:
    """[batch, vocab] logits at each prompt's end position. logits may be [batch, pos, vocab]
    (end indexes it; None = last) or already [batch, 1, vocab] / [batch, vocab]."""
    if logits.dim() == 2:
        return logits
    if logits.shape[1] == 1 or end is None:
        return logits[:, -1]
    end = torch.as_tensor(end, device=logits.device).expand(logits.shape[0])
    return logits[torch.arange(logits.shape[0], device=logits.device), end]


def logit_diff(logits: torch.Tensor, io_tok: torch.Tensor, s_tok: torch.Tensor,
               end: torch.Tensor | int | None = None) -> torch.Tensor:
    """[batch] logit(IO) - logit(S) at the end position. A batch that is k stacked copies of
    the prompts (k * n rows) is handled: the answer tokens repeat."""
    last = end_logits(logits, end)
    n = io_tok.shape[0]
    k = last.shape[0] // n
    io = io_tok.to(last.device).repeat(k)
    s = s_tok.to(last.device).repeat(k)
    rows = torch.arange(last.shape[0], device=last.device)
    return (last[rows, io] - last[rows, s]).float()


def target_logprobs(logits: torch.Tensor, io_tok: torch.Tensor, s_tok: torch.Tensor,
                    end: torch.Tensor | int | None = None) -> dict[str, torch.Tensor]:
    """log p(IO) and log p(S) at the end position, each [batch]."""
    lp = torch.log_softmax(end_logits(logits, end).float(), dim=-1)
    rows = torch.arange(lp.shape[0], device=lp.device)
    k = lp.shape[0] // io_tok.shape[0]
    return {"io": lp[rows, io_tok.to(lp.device).repeat(k)], "s": lp[rows, s_tok.to(lp.device).repeat(k)]}


def normalised(value: torch.Tensor | float, clean: float, corrupted: float) -> torch.Tensor | float:
    """(value - corrupted) / (clean - corrupted): 1 = clean behaviour, 0 = corrupted."""
    denom = clean - corrupted
    if abs(denom) < 1e-8:
        raise ValueError("clean and corrupted metrics are equal; the normalised metric is undefined")
    return (value - corrupted) / denom


def ld_metric(io_tok: torch.Tensor, s_tok: torch.Tensor):
    """The patching engine's metric (logits -> one value per prompt row): IO - S logit difference."""
    return lambda logits: logit_diff(logits, io_tok, s_tok)
