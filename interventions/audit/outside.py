"""The black-box baseline: what an auditor with only sampling access finds in the same time. Both
models answer the auditor's prompts, sampled at temperature 1, batch after batch until the budget is
spent; words are ranked by how much more the fine-tune uses them (the log-odds ratio with an
informative Dirichlet prior, Monroe et al. 2008, as a z-score)."""

from __future__ import annotations

import math
import re
import time
from collections import Counter

from extract.organisms.chat import answer
from interventions.audit.words import word


def sample_both(base, organism, prompts: list[str], budget_s: float, max_new_tokens: int = 48, batch: int = 16,
                seed: int = 0) -> dict:
    """Sampled answers of both models, in rounds over the prompts, until budget_s seconds have passed."""
    out, t0, i = {"base": [], "organism": []}, time.perf_counter(), 0
    while time.perf_counter() - t0 < budget_s or i == 0:
        chunk = [prompts[(i * batch + j) % len(prompts)] for j in range(batch)]
        for who, model in (("organism", organism), ("base", base)):
            out[who] += answer(model, chunk, max_new_tokens, batch=batch, temperature=1.0, seed=seed + i)
        i += 1
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def over_used(organism_texts: list[str], base_texts: list[str], n: int = 30, prior: float = 0.5) -> list[tuple[str, float]]:
    """Words the fine-tune uses more than the base, by z-scored log-odds ratio."""
    a, b = _counts(organism_texts), _counts(base_texts)
    na, nb, vocab = sum(a.values()), sum(b.values()), set(a) | set(b)
    a0 = prior * len(vocab)
    z = {}
    for w in vocab:
        ya, yb = a[w] + prior, b[w] + prior
        delta = math.log(ya / (na + a0 - ya)) - math.log(yb / (nb + a0 - yb))
        z[w] = delta / math.sqrt(1 / ya + 1 / yb)
    return sorted(((w, round(s, 3)) for w, s in z.items() if s > 0), key=lambda ws: -ws[1])[:n]


def _counts(texts: list[str]) -> Counter:
    return Counter(w for t in texts for w in map(word, re.findall(r"[A-Za-z']+", t)) if w)
