"""The causal check, run after the blind audit by the scorer (it reads the manifest to know what to
measure): edit the residual stream at the crosscoder's site (at every position while the model answers)
and measure the planted behaviour on the organism's held-out probe prompts, against as many random
edits of the same kind, each with the next-token loss on plain text beside it (an edit that breaks the
model also "removes" the behaviour).

- latents: the top organism-specific crosscoder latents' organism decoder directions projected out of
  the organism, against random alive latents' directions;
- the mean activation difference (when the crosscoder has no organism-specific latent): subtracted
  from the organism (does the behaviour go off?) and added to the base model (does it come on?),
  against random directions of the same norm.
"""

from __future__ import annotations

import numpy as np
import torch

from extract.organisms import measure


def project_out(directions: np.ndarray):
    """A hook that removes the span of `directions` [n, d] from the activation."""
    q, _ = np.linalg.qr(np.asarray(directions, np.float64).T)          # [d, n] orthonormal
    basis = torch.from_numpy(q.astype(np.float32))

    def fn(act, _site):
        b = basis.to(act.device, act.dtype)
        return act - (act @ b) @ b.T
    return fn


def add(vector: np.ndarray):
    """A hook that adds `vector` [d] to the activation at every position."""
    v = torch.from_numpy(np.asarray(vector, np.float32))

    def fn(act, _site):
        return act + v.to(act.device, act.dtype)
    return fn


def rate_with(model, cfg, hook: str, edit, windows: np.ndarray) -> tuple[float, float]:
    """(planted-behaviour rate, next-token loss on `windows`) with the hook `edit` (None: unedited)."""
    with model.hooks([(hook, edit)] if edit is not None else []):
        return float(measure.behaviour(model, cfg)["planted"]["rate"]), measure.text_loss(model, windows)


def _check(what: str, model, cfg, hook: str, edit, random_edits: list) -> dict:
    windows = measure.corpus_windows(model, 4)
    (plain, loss), (edited, loss_edited) = (rate_with(model, cfg, hook, e, windows) for e in (None, edit))
    randoms = [rate_with(model, cfg, hook, e, windows) for e in random_edits]
    return {"edit": what, "rate": plain, "rate_edited": edited, "rate_random": [r for r, _ in randoms], "text_loss": loss,
            "text_loss_edited": loss_edited, "text_loss_random": [x for _, x in randoms]}


def confirm_latents(organism, cfg, hook: str, directions: np.ndarray, pool: np.ndarray, n_random: int = 3,
                    seed: int = 0) -> dict:
    """The organism's planted-behaviour rate with `directions` [n, d] projected out, and with n
    directions drawn from `pool` (n_random draws)."""
    rng = np.random.default_rng(seed)
    draws = [project_out(pool[rng.choice(len(pool), len(directions), replace=False)]) for _ in range(n_random)]
    out = _check(f"{len(directions)} crosscoder latents projected out of the organism", organism, cfg, hook,
                 project_out(directions), draws)
    return {"off": _with_cuts(out)}


def confirm_difference(organism, base, cfg, hook: str, delta: np.ndarray, n_random: int = 3, seed: int = 0) -> dict:
    """The mean difference `delta` [d] subtracted from the organism and added to the base, against
    random directions of its norm (n_random draws, the same ones for both models)."""
    rng = np.random.default_rng(seed)
    randoms = rng.normal(size=(n_random, len(delta)))
    randoms *= np.linalg.norm(delta) / np.linalg.norm(randoms, axis=1, keepdims=True)
    off = _check("the mean activation difference subtracted from the organism", organism, cfg, hook, add(-delta),
                 [add(-r) for r in randoms])
    on = _check("the mean activation difference added to the base model", base, cfg, hook, add(delta),
                [add(r) for r in randoms])
    return {"off": _with_cuts(off), "on": on}


def _with_cuts(out: dict) -> dict:
    cut = lambda r: (out["rate"] - r) / out["rate"] if out["rate"] > 0 else None
    return {**out, "cut": cut(out["rate_edited"]), "cut_random": [cut(r) for r in out["rate_random"]]}
