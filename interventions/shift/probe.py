"""Per-token activations of texts at one hook site, mean pooling, and a linear probe.

    acts = site_activations(model, texts, "blocks.15.hook_resid_pre")   # TokenActs
    probe = train_probe(acts.pooled(), labels)                           # logistic regression
    acc = (probe.predict(acts.pooled()) == labels).float().mean()

Texts of different lengths are tokenised one by one (BOS prepended), sorted by length, padded
on the right and run in batches; with right padding and causal attention the real positions
never see a pad, so no attention mask is needed in the forward, only in the pooling. Pooling
is the mean over the non-BOS, non-pad positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TokenActs:
    """Activations [n, T, d] (right-padded), pooling mask [n, T] (True at real non-BOS
    positions) and token ids [n, T] of n texts at one site."""
    acts: torch.Tensor
    mask: torch.Tensor
    tokens: torch.Tensor
    hook: str

    def __len__(self) -> int:
        return self.acts.shape[0]

    def pooled(self, acts: torch.Tensor | None = None) -> torch.Tensor:
        """Mean over the masked positions: [n, d]. `acts` (same shape as self.acts) overrides."""
        return pool(self.acts if acts is None else acts, self.mask)

    def rows(self) -> torch.Tensor:
        """The masked positions' activations, flattened: [n_tokens, d]."""
        return self.acts[self.mask]


def pool(acts: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.to(acts.dtype).unsqueeze(-1)
    return (acts * m).sum(1) / m.sum(1).clamp_min(1.0)


def tokenize(model, texts: list[str]) -> list[list[int]]:
    bos = [model.bos_token_id] if model.bos_token_id is not None else []
    return [bos + model.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]


def site_batches(model, ids: list[list[int]], hook: str, batch: int = 32, desc: str | None = None):
    """Yield (indices into ids, activations [b, t, d] fp32 on the CPU, mask [b, t]: True at the real
    non-BOS positions) for batches of similar length (sorted by length, right-padded). desc: show a
    progress bar (texts/s, ETA) under that name."""
    first = 1 if model.bos_token_id is not None else 0
    pad = model.tokenizer.pad_token_id if model.tokenizer.pad_token_id is not None else 0
    stop = model.min_stop_layer([hook])
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    bar = None
    if desc:
        from tqdm import tqdm

        bar = tqdm(total=len(order), desc=desc, unit="text")
    with torch.no_grad():
        for s in range(0, len(order), batch):
            idx = order[s:s + batch]
            t = max(len(ids[i]) for i in idx)
            tokens = torch.full((len(idx), t), pad, dtype=torch.long)
            mask = torch.zeros(len(idx), t, dtype=torch.bool)
            for j, i in enumerate(idx):
                tokens[j, :len(ids[i])] = torch.tensor(ids[i])
                mask[j, first:len(ids[i])] = True
            _, cache = model.run_with_cache(tokens.to(model.device), names=[hook], stop_at_layer=stop)
            yield idx, cache[hook].float().cpu(), mask
            if bar:
                bar.update(len(idx))
    if bar:
        bar.close()


def site_activations(model, texts: list[str], hook: str, batch: int = 32) -> TokenActs:
    """TokenActs of `texts` at `hook` (fp32, on the CPU)."""
    ids = tokenize(model, texts)
    T = max(len(i) for i in ids)
    pad = model.tokenizer.pad_token_id if model.tokenizer.pad_token_id is not None else 0
    tokens = torch.full((len(ids), T), pad, dtype=torch.long)
    mask = torch.zeros(len(ids), T, dtype=torch.bool)
    acts = torch.zeros(len(ids), T, model.d_model)
    for i, row in enumerate(ids):
        tokens[i, :len(row)] = torch.tensor(row)
    for idx, a, m in site_batches(model, ids, hook, batch):
        acts[idx, :a.shape[1]] = a
        mask[idx, :m.shape[1]] = m
    return TokenActs(acts, mask, tokens, hook)


# ---------------------------------------------------------------------------- the probe


@dataclass
class Probe:
    """Logistic regression on pooled activations: logit = ((x - mu) / sigma) . w + b."""
    w: torch.Tensor
    b: torch.Tensor
    mu: torch.Tensor
    sigma: torch.Tensor

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mu) / self.sigma) @ self.w + self.b

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return (self.logits(x) > 0).long()

    def direction(self) -> torch.Tensor:
        """d logit / d x: the probe as a direction in activation space [d]."""
        return self.w / self.sigma


def train_probe(x: torch.Tensor, y, steps: int = 300, lr: float = 0.01, weight_decay: float = 1e-3,
                seed: int = 0) -> Probe:
    """Full-batch Adam on the logistic loss + L2 (weight_decay x |w|^2), from w = 0: deterministic.
    Features are standardised with the training set's statistics."""
    x = x.float()
    y = torch.as_tensor(y, dtype=torch.float32)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{x.shape[0]} examples but {y.shape[0]} labels")
    if len(set(y.tolist())) < 2:
        raise ValueError("the probe needs both classes in its training set")
    torch.manual_seed(seed)
    mu, sigma = x.mean(0), x.std(0).clamp_min(1e-6)
    z = (x - mu) / sigma
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z @ w + b, y) + weight_decay * (w * w).sum()
        loss.backward()
        opt.step()
    return Probe(w.detach(), b.detach(), mu, sigma)


def accuracies(pred, prof, gender) -> dict:
    """Profession accuracy, gender accuracy (the prediction read as a gender: professor = male)
    and accuracy per (profession, gender) group with the worst of them."""
    pred, prof, gender = (torch.as_tensor(a).long() for a in (pred, prof, gender))
    out = {"profession_acc": float((pred == prof).float().mean()),
           "gender_acc": float((pred == gender).float().mean())}
    groups = {}
    for p in (0, 1):
        for g in (0, 1):
            sel = (prof == p) & (gender == g)
            if sel.any():
                groups[f"{p}{g}"] = float((pred[sel] == prof[sel]).float().mean())
    out["group_acc"] = groups
    out["worst_group_acc"] = min(groups.values()) if groups else float("nan")
    return out
