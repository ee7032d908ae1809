"""Jitted sweeps: a population of SAEs of one width, differing in l1 / k / lr / seed, trained
at once with eqx.filter_vmap over stacked modules, every member reading the same batches.

Writes out/<member>/sae (export), out/pareto.png (held-out L0 vs FVU) and out/sweep.json.
"""

from __future__ import annotations

import itertools
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import jax
import numpy as np

from mechinterp.formats.bounds import bounds, check_bounds
from mechinterp.formats.errors import SAEError
from sae_jax import plots
from sae_jax.architectures import get
from sae_jax.config import SAEConfig, TrainConfig
from sae_jax.guards import Diverged
from sae_jax.pipeline import finish, load_store
from sae_jax.train import calibrate_threshold, fit, inference_threshold


@dataclass(frozen=True)
class SweepGrid:
    """The axes of a sweep; the cartesian product is trained. None: the single-run value."""
    l1: tuple[float, ...] | None = field(default=None, metadata=bounds(0))
    """Sparsity coefficients (relu, jumprelu)."""
    k: tuple[int, ...] | None = field(default=None, metadata=bounds(1))
    """Active latents per token (topk, batchtopk)."""
    lr: tuple[float, ...] | None = field(default=None, metadata=bounds(0, open_low=True))
    """Peak learning rates."""
    seeds: tuple[int, ...] | None = field(default=None, metadata=bounds(0))
    """Init seeds (the data order follows --seed)."""

    def __post_init__(self):
        check_bounds(self)


def grid(tcfg: TrainConfig, arch: str, d_sae: int, l1s=None, ks=None, lrs=None, seeds=None) -> list[dict]:
    """Cartesian product of the given values; missing axes take the single-run defaults."""
    l1s = l1s or [tcfg.l1_for(arch)]
    ks = ks or [SAEConfig.k]
    lrs = lrs or [tcfg.lr_for(d_sae)]
    seeds = seeds or [tcfg.seed]
    return [dict(l1=l1, k=k, lr=lr, seed=s) for l1, k, lr, s in itertools.product(l1s, ks, lrs, seeds)]


def member_name(m: dict, arch: str) -> str:
    knob = f"k{m['k']}" if get(arch).uses_k else f"l1_{m['l1']:g}"
    return f"{arch}_{knob}_lr{m['lr']:.2g}_s{m['seed']}"


def run_sweep(acts: str | Path, out: str | Path, scfg_kwargs: dict, tcfg: TrainConfig, members: list[dict],
              devices=None, stop_at: int | None = None) -> dict:
    if not members:
        raise SAEError("the sweep has no members")
    store = load_store(acts)
    ks = [m["k"] for m in members]
    scfg = SAEConfig(d_in=store.d_model, **{**scfg_kwargs, "k": max(ks)})
    for k in ks:
        if scfg.topk_family and not 1 <= k <= scfg.d_sae:
            raise SAEError(f"--k {k} must be between 1 and --d_sae {scfg.d_sae}")
    out = Path(out)
    res = fit(store, scfg, tcfg, out / "checkpoints", members=members, devices=devices, stop_at=stop_at,
              desc=f"sweep x{len(members)}")
    if res.steps < tcfg.steps:
        return {"stopped_at": res.steps}
    st = jax.device_get(res.state)
    thr = np.asarray(inference_threshold(st, scfg))
    if get(scfg.arch).tracks_threshold:
        thr = np.broadcast_to(calibrate_threshold(res, store, scfg, tcfg, population=True)[:, None], thr.shape)
    rows = []
    for i, m in enumerate(members):
        name = member_name(m, scfg.arch)
        sae_i = jax.tree.map(lambda a: a[i], st.sae)
        hist = [{k: (v[i] if isinstance(v, list) else v) for k, v in h.items()} for h in res.history]
        try:
            metrics = finish(out / name, store, acts, scfg, tcfg, sae_i, thr[i], m["k"], res, hist,
                             dict(sweep_member=m, sweep_size=len(members), wall_s=res.wall_s), name)
        except Diverged as e:  # a sweep explores: one member going wrong does not stop the others
            print(f"warning: sweep member {name} not exported: {str(e).split(';')[0]}", file=sys.stderr)
            rows.append(dict(name=name, **m, diverged=str(e).split(";")[0]))
            continue
        rows.append(dict(name=name, **m, metrics=metrics))
    healthy = [r for r in rows if "metrics" in r]
    if not healthy:
        raise Diverged(f"every sweep member diverged ({rows[0]['diverged']}); nothing exported; lower --lr")
    plots.pareto([dict(l0=r["metrics"]["l0"], fvu=r["metrics"]["fvu"], label=r["name"]) for r in healthy],
                 out / "pareto.png", f"{scfg.arch}, d_sae={scfg.d_sae}, {res.tokens:,} tokens")
    summary = dict(arch=scfg.arch, d_sae=scfg.d_sae, d_in=scfg.d_in, steps=res.steps, tokens=res.tokens,
                   wall_s=res.wall_s, members=rows)
    (out / "sweep.json").write_text(json.dumps(summary, indent=2))
    return summary
