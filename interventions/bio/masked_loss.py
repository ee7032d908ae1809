"""Masked-residue loss recovered: how much of the model's masked-residue prediction survives when a
site's activations are replaced by an SAE's reconstruction (the masked-LM counterpart of CE-loss
recovered). The same residues (a seeded `mask_fraction` of each sequence) are masked in every run;
the loss is the cross-entropy of the true residue at the masked positions. Baselines: the site
zero-ablated and mean-ablated (the mean over the SAE's training rows), at residue positions only
([CLS], [SEP] and padding keep their own activations in every run)."""

from __future__ import annotations

import numpy as np
import torch


def masked_batches(model, seqs: list[str], mask_fraction: float, seed: int, batch: int):
    rng = np.random.default_rng(seed)
    for b0 in range(0, len(seqs), batch):
        ids = [model.to_tokens(s)[0] for s in seqs[b0:b0 + batch]]
        n = max(len(i) for i in ids)
        tokens = torch.full((len(ids), n), model.tokenizer.pad_token_id, dtype=torch.long, device=model.device)
        attention = torch.zeros_like(tokens)
        masked = torch.zeros(tokens.shape, dtype=torch.bool, device=model.device)
        for r, i in enumerate(ids):
            tokens[r, :len(i)], attention[r, :len(i)] = i, 1
            k = max(1, int(round(mask_fraction * (len(i) - 2))))
            masked[r, 1 + rng.choice(len(i) - 2, k, replace=False)] = True
        residue = attention.bool().clone()
        residue[:, 0] = False
        residue[torch.arange(len(ids)), attention.sum(1) - 1] = False  # [SEP]
        yield tokens, attention, masked, residue


@torch.no_grad()
def masked_residue_loss(model, seqs: list[str], hook: str | None = None, replace=None, mask_fraction: float = 0.15,
                        seed: int = 0, batch: int = 32) -> float:
    """Mean CE of the masked residues; `replace(acts) -> acts` rewrites `hook` at residue positions."""
    total, count = 0.0, 0
    for tokens, attention, masked, residue in masked_batches(model, seqs, mask_fraction, seed, batch):
        inputs = tokens.masked_fill(masked, model.tokenizer.mask_token_id)
        hooks = []
        if hook is not None:
            def edit(x, hook, residue=residue):
                return torch.where(residue[..., None], replace(x).to(x.dtype), x)
            hooks = [(hook, edit)]
        logits = model.run_with_hooks(inputs, hooks=hooks, attention_mask=attention)
        logp = torch.log_softmax(logits[masked].float(), -1)
        total += float(-logp.gather(1, tokens[masked][:, None]).sum())
        count += int(masked.sum())
    return total / count


def loss_recovered(model, seqs: list[str], hook: str, sae, mean: torch.Tensor, **kw) -> dict:
    clean = masked_residue_loss(model, seqs, **kw)
    spliced = masked_residue_loss(model, seqs, hook, lambda x: sae(x.float()), **kw)
    zero = masked_residue_loss(model, seqs, hook, torch.zeros_like, **kw)
    mean_ablated = masked_residue_loss(model, seqs, hook, lambda x: mean.to(x.device).expand_as(x), **kw)
    return dict(loss_clean=clean, loss_sae=spliced, loss_zero=zero, loss_mean=mean_ablated,
                recovered_vs_zero=(zero - spliced) / (zero - clean),
                recovered_vs_mean=(mean_ablated - spliced) / (mean_ablated - clean))
