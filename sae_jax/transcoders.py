"""Transcoders for many layers, one after another, from one multi-layer dump:

    mechinterp dump --hook 'blocks.{L}.hook_mlp_in' --hook 'blocks.{L}.hook_mlp_out' --out runs/acts/pairs
    mechinterp train-transcoders --acts runs/acts/pairs --arch topk --k 32 --d_sae 4096

Each layer trains in OUT/layer_{L}/ (checkpoints, export, figures): an interrupted run resumes in
the layer it stopped in, and finished layers only re-export. At the end: OUT/transcoders.json
(per-layer metrics; which layers of the dump have a complete export, which are unfinished or
missing), OUT/fvu_by_layer.png, and OUT/circuit_tracer/ (the set in circuit-tracer's format, when
every layer of the dump is complete; otherwise a warning names the layers it lacks).

With --stream every layer trains at once from a live stream of the model's forward instead
(sae_jax/stream_fit.py): no dump beyond a small held-out one, and OUT/fvu_curve.png with the
held-out FVU curve and its power law in transcoders.json.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from mechinterp.formats.atomic import atomic_write_text
from mechinterp.formats.bounds import bounds, check_bounds
from mechinterp.formats.layers import parse_layers
from mechinterp.formats.sae import SAEError
from mechinterp.formats.store import META_FILE
from mechinterp.formats.transcoder_set import SUMMARY, layer_export, set_layers, write_transcoder_set
from mechinterp.views.figures import by_layer, fvu_curves
from sae_jax.config import SAEConfig, TrainConfig
from sae_jax.pipeline import export_fit, load_store, train_sae
from sae_jax.scaling import power_law, tokens_to
from sae_jax.stream_fit import StreamConfig, Unit, fit_stream, heldout_dump

SITES = ("hook_mlp_in", "hook_mlp_out")


@dataclass(frozen=True)
class TranscoderRun:
    """Where a set of transcoders reads and writes, and what sets transcoders apart from SAEs."""
    acts: str | None = None
    """Folder of a dump with --hook 'blocks.{L}.hook_mlp_in' --hook 'blocks.{L}.hook_mlp_out', one store per
    hook (None: runs/acts/pairs; with --stream: the held-out dump it writes, None: OUT/heldout)."""
    layers: str = "all"
    """Layers to train: all (every layer with both stores), or e.g. 0,4,8-11."""
    out: str | None = None
    """Output folder (None: runs/transcoders): layer_{L}/ per layer, transcoders.json, fvu_by_layer.png, circuit_tracer/."""
    device: str = "auto"
    """JAX platform to shard the step over: auto, cpu, gpu (or cuda)."""
    stream: bool = False
    """Train every layer at once from a live stream of the model's forward over a corpus (--model,
    --corpus, ...) instead of a dump: no activations on disk beyond a small held-out dump in --acts."""
    skip: bool = True
    """A linear skip path from mlp_in to mlp_out beside the latents, started at the least-squares map
    (--skip_init): skip transcoders reach a lower FVU on the same tokens (docs/transcoders.md)."""
    lr_factor: float = field(default=4.0, metadata=bounds(0, open_low=True))
    """Without --lr: this many times the SAE rule's learning rate (transcoders started at least squares
    learn fastest at about 4x it: docs/transcoders.md)."""

    def __post_init__(self):
        check_bounds(self)


def find_pairs(acts: str | Path) -> dict[int, tuple[Path, Path]]:
    """layer -> (mlp_in store, mlp_out store) found in a dump's folder."""
    acts = Path(acts)
    found: dict[int, dict[str, Path]] = {}
    for meta in acts.glob(f"blocks.*.hook_mlp_*/{META_FILE}"):
        m = re.fullmatch(r"blocks\.(\d+)\.(hook_mlp_in|hook_mlp_out)", meta.parent.name)
        if m:
            found.setdefault(int(m.group(1)), {})[m.group(2)] = meta.parent
    pairs = {L: (d["hook_mlp_in"], d["hook_mlp_out"]) for L, d in sorted(found.items()) if len(d) == 2}
    if not pairs:
        raise SAEError(f"no blocks.{{L}}.hook_mlp_in / hook_mlp_out store pairs in {acts}; dump them with "
                       "`mechinterp dump --hook 'blocks.{L}.hook_mlp_in' --hook 'blocks.{L}.hook_mlp_out' --out DIR`")
    return pairs


def _listed(layers: list[int]) -> str:
    return ", ".join(map(str, layers)) if len(layers) <= 8 else f"{', '.join(map(str, layers[:8]))} ... ({len(layers)})"


def train_transcoders(run: TranscoderRun, scfg_kwargs: dict, tcfg: TrainConfig, devices=None, say=print,
                      stream: StreamConfig | None = None, stop_at: int | None = None) -> dict:
    """Train the set from the dump run.acts, or with `stream` from a live stream (run.acts is then the
    held-out dump it writes first). stop_at: stop a stream there as a crash would (tests)."""
    if stream is not None:
        heldout_dump(stream, tcfg, [f"blocks.{{L}}.{site}" for site in SITES], run.layers, Path(run.acts))
    pairs = find_pairs(run.acts)
    n_layers = max(pairs) + 1
    from mechinterp.formats.store import read_meta

    model = read_meta(pairs[max(pairs)][0]).model
    wanted = parse_layers(run.layers, n_layers)
    missing = [L for L in wanted if L not in pairs]
    if missing:
        raise SAEError(f"--layers {run.layers}: no store pair for layers {missing} in {run.acts}")
    out = Path(run.out)
    t0 = time.perf_counter()
    extra: dict = {}
    if stream is None:
        rows = _one_by_one(pairs, wanted, out, scfg_kwargs, tcfg, devices, say)
    else:
        rows, extra = _streamed(pairs, wanted, out, scfg_kwargs, tcfg, stream, devices, stop_at, say)
        if rows is None:
            return {"stopped_at": stop_at}
        fvu_curves(extra["curve"], out / "fvu_curve.png", f"transcoders, {model}, held-out FVU while training",
                   extra["power_law"])
    summary = dict(model=model, layers=rows, mean_fvu=sum(r["fvu"] for r in rows) / len(rows),
                   worst_fvu=max(r["fvu"] for r in rows), wall_s=time.perf_counter() - t0,
                   trained_from="stream" if stream else "dump", train_tokens=rows[0]["train_tokens"], **extra)
    by_layer([r["layer"] for r in rows], {"FVU": [r["fvu"] for r in rows]}, out / "fvu_by_layer.png",
             "held-out FVU of mlp_out", f"transcoders, {model}")
    status = set_layers(out, n_layers)
    summary.update(n_layers=n_layers, layers_complete=status["complete"], layers_unfinished=status["unfinished"],
                   layers_missing=status["missing"], set_complete=len(status["complete"]) == n_layers)
    if summary["set_complete"]:
        exports = {L: layer_export(out, L) for L in status["complete"]}
        summary["circuit_tracer"] = str(write_transcoder_set(out / "circuit_tracer", exports, scan=f"{model}-{out.name}"))
        if scfg_kwargs.get("arch") == "topk":
            say("warning: circuit-tracer 0.5.0 (PyPI) has no TopK transcoders and reads this set as ReLU; "
                "train with --arch batchtopk (exported as JumpReLU, which it loads exactly) to trace with it")
    else:
        lacking = [L for L in sorted(pairs) if L not in status["complete"]]
        absent = [L for L in range(n_layers) if L not in pairs]
        todo = (f"train layer(s) {_listed(lacking)} with `mechinterp train-transcoders --layers {','.join(map(str, lacking))}` "
                "(same --acts and --out)") if lacking else ""
        dump = f"the dump has no pairs for layer(s) {_listed(absent)}" if absent else ""
        say(f"warning: {out} is a partial set of {model}'s {n_layers} layers, so no circuit_tracer set is written: "
            + "; ".join(x for x in (todo, dump) if x))
    atomic_write_text(out / SUMMARY, json.dumps(summary, indent=2))
    return summary


def _row(layer: int, m: dict) -> dict:
    return dict(layer=layer, **{k: m[k] for k in ("fvu", "explained_variance", "l0", "dead", "dense", "train_tokens")})


def _one_by_one(pairs, wanted, out: Path, scfg_kwargs, tcfg, devices, say) -> list[dict]:
    rows, t0 = [], time.perf_counter()
    for i, layer in enumerate(wanted):
        t_layer = time.perf_counter()
        inp, target = pairs[layer]
        m = train_sae(inp, out / f"layer_{layer}", scfg_kwargs, tcfg, devices=devices, acts_out=target)
        rows.append(_row(layer, m))
        eta = (time.perf_counter() - t0) / (i + 1) * (len(wanted) - i - 1)
        say(f"layer {layer} ({i + 1}/{len(wanted)}): FVU {m['fvu']:.3f}, L0 {m['l0']:.1f} in "
            f"{time.perf_counter() - t_layer:.0f}s; about {eta / 60:.1f} min to go", flush=True)
    return rows


def _streamed(pairs, wanted, out: Path, scfg_kwargs, tcfg, stream, devices, stop_at, say) -> tuple[list | None, dict]:
    """(per-layer rows, the stream's record: curves, power law, throughput), or (None, {}) when stopped."""
    units = [Unit(f"layer {L}", load_store(*pairs[L]), out / f"layer_{L}", [p.name for p in pairs[L]])
             for L in wanted]
    scfg = SAEConfig(d_in=units[0].store.d_in, d_out=units[0].store.d_out, **scfg_kwargs)
    results, tcfg = fit_stream(units, scfg, tcfg, stream, devices, stop_at, say)
    if results[0].steps < tcfg.steps:
        return None, {}
    rows = []
    for layer, unit, res in zip(wanted, units, results):
        m = export_fit(unit.out, unit.store, pairs[layer][0], pairs[layer][1], scfg, tcfg, res)
        rows.append(_row(layer, m))
        say(f"layer {layer}: held-out FVU {m['fvu']:.3f}, L0 {m['l0']:.1f}", flush=True)
    curve = {layer: res.extra["curve"] for layer, res in zip(wanted, results)}  # every layer at the same tokens
    tokens = [t for t, _ in curve[wanted[0]]]
    mean = [sum(c[j][1] for c in curve.values()) / len(curve) for j in range(len(tokens))]
    fit = power_law(tokens, mean, from_tokens=0.2 * max(tokens))
    return rows, dict(curve=curve, power_law=fit, tokens_to_fvu_015=tokens_to(fit, 0.15),
                      stream_tokens_per_s=results[0].extra["stream_tokens_per_s"])
