"""Per-example statistics of SAE latents over a data set, and ROC AUC of a score against labels."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interventions.sae import TorchSAE
from interventions.shift.probe import TokenActs, pool


@dataclass
class LatentStats:
    """Per-example statistics of the SAE latents over one data set's non-BOS tokens."""
    pooled: torch.Tensor
    """Mean latent activation per example [n, d_sae]."""
    pooled_recon: torch.Tensor
    """Mean reconstruction per example [n, d_in]."""
    top: torch.Tensor
    """Largest activation per example [n, d_sae]."""
    top_pos: torch.Tensor
    """Position of that activation [n, d_sae]."""
    token_sum: torch.Tensor
    """Sum over all tokens [d_sae]."""
    n_tokens: int

    @property
    def token_mean(self) -> torch.Tensor:
        return self.token_sum / max(self.n_tokens, 1)


@torch.no_grad()
def latent_stats(sae: TorchSAE, acts: TokenActs, chunk: int = 16) -> LatentStats:
    n = len(acts)
    pooled, recon = torch.zeros(n, sae.d_sae), torch.zeros(n, sae.d_in)
    top, top_pos = torch.zeros(n, sae.d_sae), torch.zeros(n, sae.d_sae, dtype=torch.long)
    total = torch.zeros(sae.d_sae)
    for s in range(0, n, chunk):
        x, m = acts.acts[s:s + chunk], acts.mask[s:s + chunk]
        f = sae.encode(x) * m.unsqueeze(-1)
        pooled[s:s + chunk] = pool(f, m)
        recon[s:s + chunk] = pool(sae.decode(f), m)
        mx = f.max(1)
        top[s:s + chunk], top_pos[s:s + chunk] = mx.values, mx.indices
        total += f.sum((0, 1))
    return LatentStats(pooled, recon, top, top_pos, total, int(acts.mask.sum()))


def roc_auc(scores: torch.Tensor, labels) -> torch.Tensor:
    """ROC AUC of each column of scores [n, k] for binary labels [n] (ties count half)."""
    y = torch.as_tensor(labels).bool()
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("roc_auc needs both classes")
    ranks = _average_ranks(scores)
    return (ranks[y].sum(0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _average_ranks(x: torch.Tensor) -> torch.Tensor:
    """1-based ranks along dim 0 with ties averaged (column-wise)."""
    x = x.double()
    order = x.argsort(0)
    sorted_x = x.gather(0, order)
    n = x.shape[0]
    ranks_sorted = torch.arange(1, n + 1, dtype=torch.float64).unsqueeze(1).expand_as(x).clone()
    # average over runs of equal values
    new_run = torch.ones_like(sorted_x, dtype=torch.bool)
    new_run[1:] = sorted_x[1:] != sorted_x[:-1]
    run_id = new_run.long().cumsum(0) - 1
    for j in range(x.shape[1]):
        rid = run_id[:, j]
        sums = torch.zeros(int(rid.max()) + 1, dtype=torch.float64).index_add_(0, rid, ranks_sorted[:, j])
        counts = torch.zeros_like(sums).index_add_(0, rid, torch.ones_like(ranks_sorted[:, j]))
        ranks_sorted[:, j] = (sums / counts)[rid]
    ranks = torch.empty_like(ranks_sorted)
    ranks.scatter_(0, order, ranks_sorted)
    return ranks


