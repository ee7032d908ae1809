"""The causal check: ablate the audit's top organism-specific crosscoder latents in the organism (their
organism decoder directions projected out of the residual stream at the crosscoder's site, at every
position while it answers) and measure the planted behaviour on the organism's held-out probe prompts,
against as many random alive latents. Reads the manifest (to know what to measure): run after the
blind audit, by the scorer."""

from __future__ import annotations

import numpy as np
import torch

from extract.organisms import measure
from mechinterp.formats.crosscoder import decoder


def project_out(directions: np.ndarray):
    """A hook that removes the span of `directions` [n, d] from the activation."""
    q, _ = np.linalg.qr(np.asarray(directions, np.float64).T)          # [d, n] orthonormal
    basis = torch.from_numpy(q.astype(np.float32))

    def fn(act, _site):
        b = basis.to(act.device, act.dtype)
        return act - (act @ b) @ b.T
    return fn


def rate_with(model, cfg, hook: str, directions: np.ndarray | None) -> float:
    with model.hooks([(hook, project_out(directions))] if directions is not None else []):
        return float(measure.behaviour(model, cfg)["planted"]["rate"])


def confirm(organism, cfg, w: dict[str, np.ndarray], hook: str, latents: list[int], n: int = 5, n_random: int = 3,
            seed: int = 0) -> dict:
    """Planted-behaviour rate with nothing ablated, with the top n latents ablated, and with n random
    alive latents (n_random draws)."""
    dec = decoder(w, "b")
    rng = np.random.default_rng(seed)
    alive = np.flatnonzero(w["freq"] > 0)
    top = list(latents[:n])
    plain = rate_with(organism, cfg, hook, None)
    ablated = rate_with(organism, cfg, hook, dec[top])
    randoms = [rate_with(organism, cfg, hook, dec[rng.choice(np.setdiff1d(alive, top), n, replace=False)])
               for _ in range(n_random)]
    cut = lambda r: (plain - r) / plain if plain > 0 else None
    return {"latents": top, "rate": plain, "rate_top_ablated": ablated, "rate_random_ablated": randoms,
            "cut_top": cut(ablated), "cut_random": [cut(r) for r in randoms]}
