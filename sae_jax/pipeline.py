"""What scripts/train_sae.py runs: store -> fit -> held-out metrics -> export + plots."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np

from mechinterp.formats.atomic import atomic_write_text
from mechinterp.formats.errors import SAEError
from mechinterp.formats.paired import open_pair
from mechinterp.formats.sae import export_sae
from mechinterp.formats.store import StoreError, open_store
from sae_jax import plots
from sae_jax.architectures import get
from sae_jax.config import SAEConfig, TrainConfig, to_dict
from sae_jax.guards import Diverged, heldout_problem
from sae_jax.metrics import evaluate
from sae_jax.stream_fit import StreamConfig, Unit, fit_stream, heldout_dump
from sae_jax.train import FitResult, calibrate_threshold, export_weights, fit, in_out_factors, inference_threshold


def load_store(acts: str | Path, acts_out: str | Path | None = None):
    """The store, or (transcoders) the input and target stores paired row by row."""
    try:
        return open_pair(acts, acts_out) if acts_out else open_store(acts)
    except StoreError as e:
        raise SAEError(str(e)) from None


def finish(out: Path, store, acts, scfg: SAEConfig, tcfg: TrainConfig, sae, threshold, k: int, res: FitResult,
           history: list[dict], extra: dict, label: str) -> dict:
    """Evaluate one (unstacked) SAE on the held-out split, export it, draw its figures; Diverged
    (nothing written) when the held-out metrics show it unusable."""
    (metrics,), freq = evaluate(sae, k, threshold, store, res.eval_windows, res.factor, scfg, tcfg.eval_tokens)
    problem = heldout_problem(metrics, scfg.d_sae)
    if problem:
        raise Diverged(f"training diverged: {problem}; nothing exported to {out / 'sae'} (the checkpoints are kept in "
                       f"{out / 'checkpoints'}); delete {out} (or use another --out) and re-run with a lower --lr, "
                       "other sparsity settings or more --steps")
    metrics = dict(metrics, train_steps=res.steps, train_tokens=res.tokens,
                   final_train=history[-1] if history else {})
    out.mkdir(parents=True, exist_ok=True)
    weights = export_weights(sae, threshold, scfg.arch)
    block = dict(sae_config=to_dict(scfg), train_config=to_dict(tcfg), steps=res.steps, tokens_seen=res.tokens,
                 **extra)
    target = (store.out.meta, block["acts_out"]) if scfg.transcoder else None
    export_sae(out / "sae", weights, scfg.arch, k, in_out_factors(res.factor), store.meta, str(acts), block, metrics,
               target)
    np.save(out / "frequencies.npy", freq[0])
    plots.frequency_histogram(freq[0], out / "frequencies.png", label)
    if history:
        plots.training_curves(history, out / "curves.png", label)
    return metrics


def train_sae(acts: str | Path, out: str | Path, scfg_kwargs: dict, tcfg: TrainConfig, devices=None,
              stop_at: int | None = None, acts_out: str | Path | None = None) -> dict:
    """Train (resuming from out/checkpoints), evaluate, export to out/sae. Returns the metrics.
    acts_out: a transcoder's target store (another hook of the dump that wrote `acts`)."""
    store = load_store(acts, acts_out)
    widths = dict(d_in=store.d_in, d_out=store.d_out) if acts_out else dict(d_in=store.d_model)
    scfg = SAEConfig(**widths, **scfg_kwargs)
    out = Path(out)
    res = fit(store, scfg, tcfg, out / "checkpoints", devices=devices, stop_at=stop_at, desc=scfg.arch)
    if res.steps < tcfg.steps:
        return {"stopped_at": res.steps}
    return export_fit(out, store, acts, acts_out, scfg, tcfg, res)


def train_sae_streamed(out: str | Path, hook: str | None, scfg_kwargs: dict, tcfg: TrainConfig, stream: StreamConfig,
                       devices=None, stop_at: int | None = None) -> dict:
    """train_sae from a live stream at one site (the held-out dump goes to out/heldout); its curve and
    throughput go to out/stream.json."""
    out = Path(out)
    heldout_dump(stream, tcfg, [hook] if hook else [], None, out / "heldout")
    store = load_store(out / "heldout")
    scfg = SAEConfig(d_in=store.d_model, **scfg_kwargs)
    (res,), tcfg = fit_stream([Unit(store.meta.hook, store, out, [store.meta.hook])], scfg, tcfg, stream, devices,
                              stop_at)
    if res.steps < tcfg.steps:
        return {"stopped_at": res.steps}
    metrics = export_fit(out, store, out / "heldout", None, scfg, tcfg, res)
    atomic_write_text(out / "stream.json", json.dumps(dict(hook=store.meta.hook, **res.extra), indent=1))
    return metrics


def export_fit(out: Path, store, acts, acts_out, scfg: SAEConfig, tcfg: TrainConfig, res: FitResult) -> dict:
    """A finished fit's held-out metrics, export and figures (finish), and its history.json."""
    st = jax.device_get(res.state)
    thr = np.asarray(inference_threshold(st, scfg))
    if get(scfg.arch).tracks_threshold:
        thr = np.full_like(thr, calibrate_threshold(res, store, scfg, tcfg))
    metrics = finish(out, store, acts, scfg, tcfg, st.sae, thr, scfg.k, res,
                     res.history, dict(lr=tcfg.lr_for(scfg.d_sae), l1=tcfg.l1_for(scfg.arch), wall_s=res.wall_s,
                                       resumed_from=res.resumed_from, **({"acts_out": str(acts_out)} if acts_out else {})),
                     scfg.arch)
    (out / "history.json").write_text(json.dumps(res.history))
    return metrics


def jax_devices(flag: str):
    """--device -> the devices the step is sharded over (None: JAX's default backend, all of it)."""
    if flag == "auto":
        return None
    platform = {"cuda": "gpu", "gpu": "gpu", "cpu": "cpu", "mps": "METAL"}.get(flag.split(":")[0])
    if platform is None:
        raise SAEError(f"unknown --device {flag!r}; use auto, cpu or gpu")
    try:
        return jax.devices(platform)
    except RuntimeError:
        raise SAEError(f"--device {flag}: JAX sees no {platform} device here ({jax.default_backend()} only); "
                       "use --device auto or cpu") from None
