"""A crosscoder (Lindsey et al. 2024) between two models of one width, trained as a BatchTopK SAE on
their activations side by side (the paired rows [x_a, x_b] of two dumps of the same tokens):

    info = train_crosscoder("runs/audit/acts/base", "runs/audit/acts/organism", "runs/audit/crosscoder",
                            CrosscoderConfig(d_sae=4096, k=32), TrainConfig(steps=1500))

One encoder over both halves, each half scaled to mean norm sqrt(d) by its own factor; the decoder
rows have unit norm over both halves together, so how a latent's norm splits between the two models
is learnt, not imposed. BatchTopK rather than an L1 penalty because L1 invents model-specific
latents (complete shrinkage, latent decoupling: Minder et al. 2025). After training, one pass over
the dump (numpy, chunked, mechinterp.formats.crosscoder's contract) measures per latent its decoder
norms, firing rate, latent scaling and strongest tokens, and each model's held-out FVU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import jax
import numpy as np

from mechinterp.formats.bounds import bounds, check_bounds
from mechinterp.formats.crosscoder import decode, decoder, encode, fold, save_crosscoder
from mechinterp.formats.errors import SAEError
from mechinterp.formats.paired import open_pair
from mechinterp.formats.sae import MASSIVE
from mechinterp.formats.store import StoreError
from sae_jax.config import SAEConfig, TrainConfig, to_dict
from sae_jax.train import calibrate_threshold, export_weights, fit, in_out_factors


@dataclass(frozen=True)
class CrosscoderRun:
    """The two dumps a crosscoder reads and where it writes."""
    a: str = ""
    """Model A's store (the base model): `mechinterp dump --model A ...`."""
    b: str = ""
    """Model B's store (the fine-tune), a dump of the same tokens: the same --corpus, --n_tokens, --ctx, --seed."""
    out: str | None = None
    """Output folder: checkpoints/, crosscoder.safetensors, crosscoder.json (None: runs/crosscoder)."""
    device: str = "auto"
    """JAX platform: auto, cpu, gpu."""

    def __post_init__(self):
        if not self.a or not self.b:
            raise ValueError("give both dumps: --a STORE (the base model) --b STORE (the fine-tune)")


@dataclass(frozen=True)
class CrosscoderConfig:
    arch: str = field(default="batchtopk", metadata={"choices": ("batchtopk", "topk")})
    """batchtopk (k active latents per token on average over the batch) or topk; not an L1 penalty,
    which invents model-specific latents."""
    d_sae: int = field(default=2048, metadata=bounds(1))
    """Latents."""
    k: int = field(default=32, metadata=bounds(1))
    """Active latents per token."""
    massive: float = field(default=MASSIVE, metadata=bounds(1))
    """Leave out of training and measurement the tokens whose norm in either model is over this many
    times that model's mean norm (1e9 keeps them). A few attention-sink tokens after a BOS carry most
    of the variance, and a fine-tune may move them: kept, they take the dictionary's capacity."""

    def __post_init__(self):
        check_bounds(self)

    def sae_config(self, d_in: int) -> SAEConfig:
        return SAEConfig(arch=self.arch, d_in=d_in, d_sae=self.d_sae, k=self.k)


def train_crosscoder(acts_a: str | Path, acts_b: str | Path, out: str | Path, xcfg: CrosscoderConfig, tcfg: TrainConfig,
                     devices=None, n_top: int = 8, stop_at: int | None = None) -> dict:
    """Train (resuming from out/checkpoints), measure, save to `out`; returns crosscoder.json's dict
    ({"stopped_at": step} when stopped early)."""
    try:
        store = open_pair(acts_a, acts_b, two_models=True, massive=xcfg.massive)
    except StoreError as e:
        raise SAEError(str(e)) from None
    scfg = xcfg.sae_config(store.d_model)
    out = Path(out)
    t0 = time.perf_counter()
    res = fit(store, scfg, tcfg, out / "checkpoints", devices=devices, stop_at=stop_at, desc="crosscoder")
    if res.steps < tcfg.steps:
        return {"stopped_at": res.steps}
    state = jax.device_get(res.state)
    threshold = calibrate_threshold(res, store, scfg, tcfg) if scfg.arch == "batchtopk" else None
    w = export_weights(state.sae, None, "topk")
    w["threshold"] = np.full(scfg.d_sae, 0.0 if threshold is None else float(threshold), np.float32)
    factors = in_out_factors(res.factor)                      # (model A's, model B's)
    w = fold(w, factors)
    latents, metrics = measure(w, store, set(res.eval_windows.tolist()), n_top)
    info = {"models": {"a": store.inp.meta.model, "b": store.out.meta.model}, "hook": store.inp.meta.hook,
            "stores": {"a": str(acts_a), "b": str(acts_b)}, "d_model": store.d_in, "d_sae": scfg.d_sae, "k": scfg.k,
            "arch": scfg.arch, "massive": xcfg.massive, "factors": factors, "steps": res.steps, "tokens_seen": res.tokens,
            "train_s": round(time.perf_counter() - t0, 1), "sae_config": to_dict(scfg), "train_config": to_dict(tcfg),
            "metrics": metrics}
    save_crosscoder(out, w, latents, info)
    return info


def measure(w: dict[str, np.ndarray], store, heldout: set[int], n_top: int = 8, chunk: int = 16) -> tuple[dict, dict]:
    """Per-latent statistics over every window of the paired dump (see mechinterp.formats.crosscoder),
    and each model's FVU and the L0 over the held-out windows."""
    d, n_lat = store.d_in, w["W_enc"].shape[1]
    dec_a, dec_b = decoder(w, "a"), decoder(w, "b")
    bb, ba = (dec_b * dec_b).sum(1), (dec_b * dec_a).sum(1)
    s, fires, mass = np.zeros(n_lat), np.zeros(n_lat), np.zeros(n_lat)
    fit_err, fit_rec = {m: np.zeros(n_lat) for m in "ab"}, {m: np.zeros(n_lat) for m in "ab"}
    top_acts, top_rows = np.full((n_lat, n_top), -np.inf, np.float32), np.full((n_lat, n_top), -1, np.int64)
    held = {m: np.zeros(2) for m in "ab"}                      # held out: sum |err|^2, sum |x|^2 (and sum x below)
    held_sum, n_rows, n_held, n_massive, l0 = {m: np.zeros(d) for m in "ab"}, 0, 0, 0, 0.0
    rpw = store.rows_per_window
    for lo in range(0, store.n_windows, chunk):
        ws = np.arange(lo, min(lo + chunk, store.n_windows))
        x = store.read_windows(ws)
        not_bos, ordinary = store.not_bos(ws), store.ordinary(x)
        keep = not_bos & ordinary
        n_massive += int((not_bos & ~ordinary).sum())
        rows = (ws[:, None] * rpw + np.arange(rpw)[None, :]).reshape(-1)[keep]
        x = x[keep]
        xs = {"a": x[:, :d], "b": x[:, d:]}
        f = encode(w, xs["a"], xs["b"])
        recon = dict(zip("ab", decode(w, f)))
        s += (f * f).sum(0)
        fires += (f > 0).sum(0)
        mass += f.sum(0)
        for m in "ab":
            fit_err[m] += (f * ((xs[m] - recon[m]) @ dec_b.T)).sum(0)
            fit_rec[m] += (f * (recon[m] @ dec_b.T)).sum(0)
        _merge_top(top_acts, top_rows, f, rows)
        is_held = np.isin(np.repeat(ws, rpw)[keep], list(heldout))
        for m in "ab":
            e, xm = xs[m][is_held] - recon[m][is_held], xs[m][is_held]
            held[m] += [(e * e).sum(), (xm * xm).sum()]
            held_sum[m] += xm.sum(0)
        l0 += float((f[is_held] > 0).sum())
        n_rows += len(x)
        n_held += int(is_held.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = {(kind, m): (acc[m] + sign * s * (ba if m == "a" else bb)) / (s * bb)
                for kind, acc, sign in (("eps", fit_err, 1.0), ("r", fit_rec, -1.0)) for m in "ab"}
        norm_a, norm_b = np.linalg.norm(dec_a, axis=1), np.linalg.norm(dec_b, axis=1)
        latents = {"norm_a": norm_a, "norm_b": norm_b, "rel_norm": norm_b / (norm_a + norm_b),
                   "freq": fires / max(n_rows, 1), "mean_act": mass / np.maximum(fires, 1),
                   "nu_eps": beta["eps", "a"] / beta["eps", "b"], "nu_r": beta["r", "a"] / beta["r", "b"]}
    top_tokens = np.full(top_rows.shape, -1, np.int64)
    for (i, j), r in np.ndenumerate(top_rows):
        if r >= 0:
            win, pos = store.inp.row_location(int(r))
            top_tokens[i, j] = int(store.window_tokens(win)[pos])
    latents = {k: v.astype(np.float32) for k, v in latents.items()}
    latents.update(top_tokens=top_tokens, top_acts=np.where(np.isfinite(top_acts), top_acts, 0).astype(np.float32),
                   top_rows=top_rows)
    fvu = {m: float(held[m][0] / max(held[m][1] - (held_sum[m] ** 2).sum() / max(n_held, 1), 1e-12)) for m in "ab"}
    metrics = {"fvu_a": fvu["a"], "fvu_b": fvu["b"], "l0": l0 / max(n_held, 1), "heldout_tokens": n_held,
               "tokens": n_rows, "massive_tokens": n_massive, "dead": int((fires == 0).sum())}
    return latents, metrics


def _merge_top(top_acts: np.ndarray, top_rows: np.ndarray, f: np.ndarray, rows: np.ndarray) -> None:
    """Keep, per latent, the n largest activations seen so far (in place)."""
    n = top_acts.shape[1]
    k = min(n, len(f))
    idx = np.argpartition(-f, k - 1, axis=0)[:k].T                # [F, k] rows of this chunk
    acts = np.take_along_axis(f.T, idx, 1)
    acts = np.where(acts > 0, acts, -np.inf)
    all_acts, all_rows = np.concatenate([top_acts, acts], 1), np.concatenate([top_rows, rows[idx]], 1)
    best = np.argsort(-all_acts, 1)[:, :n]
    top_acts[:] = np.take_along_axis(all_acts, best, 1)
    top_rows[:] = np.where(np.isfinite(top_acts), np.take_along_axis(all_rows, best, 1), -1)
