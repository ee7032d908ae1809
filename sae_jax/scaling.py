"""A power law through held-out FVU against training tokens, and what it projects (numpy only).

    fit = power_law(tokens, fvu)          # fvu ~ a * tokens ** -b, least squares in log-log space
    tokens_to(fit, 0.15)                  # the tokens it takes to reach FVU 0.15 on that law
"""

from __future__ import annotations

import math

import numpy as np


def power_law(tokens, values, from_tokens: float = 0.0) -> dict | None:
    """{"a", "b", "points", "from_tokens"} of values ~ a * tokens^-b over the points with tokens >=
    from_tokens (the early points follow the warm-up, not the law); None with fewer than 3 points."""
    t, v = np.asarray(tokens, np.float64), np.asarray(values, np.float64)
    keep = (t >= max(from_tokens, 1.0)) & (v > 0) & np.isfinite(v)
    if keep.sum() < 3:
        return None
    slope, intercept = np.polyfit(np.log(t[keep]), np.log(v[keep]), 1)
    return {"a": float(math.exp(intercept)), "b": float(-slope), "points": int(keep.sum()),
            "from_tokens": float(t[keep].min())}


def tokens_to(fit: dict | None, target: float) -> float | None:
    """Tokens at which the law reaches `target` (None: no fit, or a law that does not fall)."""
    if fit is None or fit["b"] <= 0:
        return None
    return float((fit["a"] / target) ** (1.0 / fit["b"]))
