"""A set of per-layer transcoders in circuit-tracer's on-disk format (numpy only; the owner of
that format here). Written from our SAELens-layout transcoder exports (mechinterp.formats.sae):

    DIR/config.yaml          model_kind: transcoder_set, feature_input_hook: mlp.hook_in,
                             feature_output_hook: hook_mlp_out, model_name, scan[, activation, k]
    DIR/layer_{L}.safetensors  W_enc [d_sae, d_in]   (the transpose of SAELens's)
                             W_dec [d_sae, d_out]   b_enc [d_sae]   b_dec [d_out]
                             W_skip [d_out, d_in]                (skip transcoders)
                             activation_function.threshold [d_sae]  (JumpReLU)

circuit-tracer (0.5.0) computes pre = x @ W_enc.T + b_enc (no input centring), a JumpReLU as
pre * (pre > threshold) (ours is relu(pre) * (pre > threshold): the same, our thresholds being
positive), recon = f @ W_dec + b_dec + x @ W_skip.T. Every layer 0..n_layers-1 must be present.
Its loader takes only the keys above (any other key fails its strict load). A TopK set's k goes
into config.yaml (`activation: topk`, `k`) for circuit-tracer's later sources, whose
load_transcoder_set takes activation= and k=; the 0.5.0 on PyPI has neither and reads a TopK set
as ReLU (checked: about 147 latents fire per token instead of 32). Checked against that 0.5.0 in
its own environment (scripts/bench/peers/ct_transcoders.py): a JumpReLU set (our batchtopk or
jumprelu) loads and gives our latents to 5e-6 and our reconstruction to 1e-6. Hooks are
TransformerLens names: its `mlp.hook_in` is our hook_mlp_in (the MLP's input, after the norm's
gain), its hook_mlp_out ours.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from mechinterp.formats.atomic import atomic_path, atomic_write_text
from mechinterp.formats.sae import CFG, WEIGHTS, SAEError, kind, load_export

CONFIG = "config.yaml"
SUMMARY = "transcoders.json"
"""The lab's summary of a trained set (per-layer FVU, settings), beside the layers."""
INPUT_HOOK, OUTPUT_HOOK = "mlp.hook_in", "hook_mlp_out"


def layer_file(layer: int) -> str:
    return f"layer_{layer}.safetensors"


def layer_export(set_dir: str | Path, layer: int) -> Path:
    """Where `mechinterp train-transcoders` exports layer L of a set (SAELens layout, mechinterp.formats.sae)."""
    return Path(set_dir) / f"layer_{layer}" / "sae"


def set_layers(set_dir: str | Path, n_layers: int | None = None) -> dict:
    """Which layers 0..n_layers-1 of a trained set are complete (an export with its weights and its
    cfg, written after the weights), unfinished (training begun, no export yet, or one cut short
    before its cfg) or missing (never begun). n_layers None: up to the last layer begun."""
    begun = sorted(int(p.name[6:]) for p in Path(set_dir).glob("layer_*") if p.is_dir() and p.name[6:].isdigit())
    n = n_layers if n_layers is not None else (max(begun) + 1 if begun else 0)
    done = [L for L in range(n) if all((layer_export(set_dir, L) / f).is_file() for f in (WEIGHTS, CFG))]
    return {"n_layers": n, "complete": done, "unfinished": [L for L in begun if L < n and L not in done],
            "missing": [L for L in range(n) if L not in done and L not in begun]}


def write_transcoder_set(out: str | Path, exports: dict[int, str | Path], scan: str) -> Path:
    """exports: layer -> SAELens-layout transcoder export folder, for every layer 0..n-1."""
    out = Path(out)
    layers = sorted(exports)
    if layers != list(range(len(layers))):
        missing = sorted(set(range(max(layers) + 1)) - set(layers))
        raise SAEError(f"circuit-tracer needs a transcoder for every layer 0..{max(layers)}; missing {missing}")
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG).unlink(missing_ok=True)  # written last: a set cut short is not read as one
    acts, ks, models = set(), set(), set()
    for layer in layers:
        w, cfg = load_export(exports[layer])
        act, transcoder = kind(cfg)
        if not transcoder:
            raise SAEError(f"{exports[layer]} is an SAE, not a transcoder")
        acts.add(act)
        ks.add(cfg.get("k"))
        models.add(cfg.get("model_name") or cfg.get("metadata", {}).get("model_name"))
        tensors = {"W_enc": w["W_enc"].T, "W_dec": w["W_dec"], "b_enc": w["b_enc"], "b_dec": w["b_dec"]}
        if "W_skip" in w:
            tensors["W_skip"] = w["W_skip"]
        if act == "jumprelu":
            tensors["activation_function.threshold"] = w["threshold"]
        with atomic_path(out / layer_file(layer)) as tmp:
            save_file({k: np.ascontiguousarray(v, np.float32) for k, v in tensors.items()}, str(tmp))
    if len(acts) > 1 or len(ks) > 1 or len(models) > 1:
        raise SAEError(f"the layers' transcoders differ in activation {sorted(acts)}, k {sorted(ks, key=str)} or "
                       f"model {sorted(models, key=str)}; one set shares them")
    lines = {"model_kind": "transcoder_set", "model_name": models.pop(), "feature_input_hook": INPUT_HOOK,
             "feature_output_hook": OUTPUT_HOOK, "scan": scan}
    if acts == {"topk"}:
        lines.update(activation="topk", k=ks.pop())
    atomic_write_text(out / CONFIG, "".join(f"{k}: {json.dumps(v)}\n" for k, v in lines.items()))
    return out


def read_transcoder_set(path: str | Path) -> tuple[dict, dict[int, dict[str, np.ndarray]]]:
    """(config, layer -> tensors) of a set written by write_transcoder_set (its flat YAML is JSON values)."""
    path = Path(path)
    if not (path / CONFIG).is_file():
        raise SAEError(f"{path} is not a transcoder set (no {CONFIG}); write one with `mechinterp train-transcoders`")
    config = {k.strip(): json.loads(v) for k, v in
              (line.split(":", 1) for line in (path / CONFIG).read_text().splitlines() if line.strip())}
    files = sorted(path.glob("layer_*.safetensors"), key=lambda p: int(p.stem.split("_")[1]))
    return config, {int(p.stem.split("_")[1]): load_file(str(p)) for p in files}
