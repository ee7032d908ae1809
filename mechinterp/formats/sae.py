"""SAE export in the SAELens layout (sae_weights.safetensors + cfg.json + metrics.json).

The trained SAE acts on normalised activations x_n = c * x (c = sqrt(d_in) / mean ||x||).
Export folds c into the weights so the exported SAE acts on raw x:

    W_enc' = c * W_enc     b_enc' = b_enc     W_dec' = W_dec / c     b_dec' = b_dec / c

so pre' (x) = (x - b_dec') @ W_enc' + b_enc' = pre(x_n): identical latents, and
recon'(x) = f @ W_dec' + b_dec' = recon(x_n) / c. threshold (jumprelu, batchtopk) is unchanged.

A transcoder is trained on x_n = c_in x predicting y_n = c_out y, so W_enc' = c_in W_enc,
W_dec' = W_dec / c_out, b_dec' = b_dec / c_out, W_skip' = W_skip * c_in / c_out (an SAE is the
case c_in = c_out = c).

Encode/decode contract of the exported weights (fp32, x raw [.., d_in]):
    pre   = (x - b_dec) @ W_enc + b_enc                    (x @ W_enc + b_enc when cfg
                                                            apply_b_dec_to_input is false: transcoders)
    f     = relu(pre)                                      architecture "standard"
          = relu(pre) on the k largest pre per token        architecture "topk" (cfg["k"])
          = relu(pre) * (pre > threshold)                   architecture "jumprelu" (also
                                                            trained batchtopk SAEs)
    recon = f @ W_dec + b_dec (+ x @ W_skip, transcoders with a skip path; the target's site)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from mechinterp.formats.atomic import atomic_path, atomic_write_text
from mechinterp.formats.errors import SAEError
from mechinterp.formats.reading import check_finite, read_json
from mechinterp.formats.store import META_FILE

WEIGHTS, CFG, METRICS = "sae_weights.safetensors", "cfg.json", "metrics.json"
ARCHITECTURES = ("standard", "topk", "jumprelu")
SAELENS_ARCH = {"relu": "standard", "topk": "topk", "batchtopk": "jumprelu", "jumprelu": "jumprelu"}
# transcoders, as SAELens names them (transcoder, skip_transcoder, jumprelu_transcoder,
# jumprelu_skip_transcoder); SAELens has no TopK transcoder, ours is topk_[skip_]transcoder
TRANSCODER_PREFIX = {"standard": "", "topk": "topk_", "jumprelu": "jumprelu_"}
# held-out metrics on both sides: a latent firing on more than DENSE_FREQ of tokens is dense; a token
# whose norm is over MASSIVE x the median norm is left out of explained_variance_typical
DENSE_FREQ, MASSIVE = 0.1, 10.0


def transcoder_arch(activation: str, skip: bool) -> str:
    return f"{TRANSCODER_PREFIX[activation]}{'skip_' if skip else ''}transcoder"


def kind(cfg: dict) -> tuple[str, bool]:
    """(activation: standard, topk or jumprelu; whether it is a transcoder) of cfg's architecture."""
    arch = cfg.get("architecture")
    if arch in ARCHITECTURES:
        return arch, False
    for act in ARCHITECTURES:
        if arch in (transcoder_arch(act, False), transcoder_arch(act, True)):
            return act, True
    raise SAEError(f"architecture {arch!r} is not one of {ARCHITECTURES} or a transcoder "
                   f"({', '.join(transcoder_arch(a, s) for a in ARCHITECTURES for s in (False, True))})")
CONTRACT = {
    "pre": "(x - b_dec) @ W_enc + b_enc",
    "standard": "f = relu(pre)",
    "topk": "f = relu(pre) at the k largest entries of pre per token, 0 elsewhere",
    "jumprelu": "f = relu(pre) * (pre > threshold)",
    "recon": "f @ W_dec + b_dec",
}
TRANSCODER_CONTRACT = {**CONTRACT, "pre": "x @ W_enc + b_enc",
                       "recon": "f @ W_dec + b_dec (+ x @ W_skip when present), predicting the hook_name_out activations"}


def fold(weights: dict[str, np.ndarray], c_in: float, c_out: float | None = None) -> dict[str, np.ndarray]:
    """Normalised-space weights -> raw-space weights (see module docstring)."""
    c_in = np.float64(c_in)
    c_out = c_in if c_out is None else np.float64(c_out)
    out = {"W_enc": weights["W_enc"] * c_in, "b_enc": weights["b_enc"],
           "W_dec": weights["W_dec"] / c_out, "b_dec": weights["b_dec"] / c_out}
    if "W_skip" in weights:
        out["W_skip"] = weights["W_skip"] * (c_in / c_out)
    if "threshold" in weights:
        out["threshold"] = weights["threshold"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def export_sae(out: str | Path, weights: dict[str, np.ndarray], arch: str, k: int, factors: float | tuple[float, float],
               store_meta, store_path: str, extra: dict, metrics: dict, target: tuple | None = None) -> Path:
    """weights: normalised-space W_enc, b_enc, W_dec, b_dec (+ threshold, W_skip); writes raw-space
    ones. factors: the normalisation, or a transcoder's (input, target) pair; target: a transcoder's
    (target store meta, path)."""
    factors = (factors, factors) if np.isscalar(factors) else tuple(factors)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    w = fold(weights, *factors)
    transcoder = target is not None
    if "W_skip" in w:
        w["W_skip"] = np.ascontiguousarray(w["W_skip"].T)  # SAELens keeps W_skip as [d_out, d_in]
    with atomic_path(out / WEIGHTS) as tmp:
        save_file(w, str(tmp))
    meta = {"hook_name": store_meta.hook, **({"hook_name_out": target[0].hook} if transcoder else {}),
            "model_name": store_meta.model, "hook_layer": store_meta.layer,
            "context_size": store_meta.ctx, "prepend_bos": store_meta.prepend_bos,
            "dataset_path": store_meta.corpus.get("name", "") if isinstance(store_meta.corpus, dict) else ""}
    cfg = {
        "architecture": transcoder_arch(SAELENS_ARCH[arch], "W_skip" in w) if transcoder else SAELENS_ARCH[arch],
        "d_in": int(w["W_enc"].shape[0]), "d_sae": int(w["W_enc"].shape[1]),
        **({"d_out": int(w["W_dec"].shape[1])} if transcoder else {}),
        "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": not transcoder, "normalize_activations": "none",
        "reshape_activations": "none", **meta, "metadata": meta,
        "mechinterp": {
            "trained_architecture": arch, "normalisation_factor_folded": float(factors[0]),
            **({"target_normalisation_factor_folded": float(factors[1])} if transcoder else {}),
            "encode_decode": TRANSCODER_CONTRACT if transcoder else CONTRACT,
            "store": _store_record(store_meta, store_path),
            **({"target_store": _store_record(*target)} if transcoder else {}),
            **extra,
        },
    }
    if SAELENS_ARCH[arch] == "topk":
        cfg["k"] = int(k)
    atomic_write_text(out / METRICS, json.dumps(metrics, indent=2))
    atomic_write_text(out / CFG, json.dumps(cfg, indent=2))  # last: an export is complete once its cfg is there
    return out


def _store_record(meta, path) -> dict:
    """The store an export was trained on; its path absolute, so the export finds it from any folder."""
    return {"path": str(Path(path).resolve()), "model": meta.model, "weights": meta.weights, "hook": meta.hook,
            "d_model": meta.d_model, "ctx": meta.ctx, "keep_bos": meta.keep_bos,
            "mean_norm": meta.stats.get("mean_norm"), "corpus": meta.corpus}


def read_cfg(path: str | Path) -> dict:
    """cfg.json of an export, checked to be one: both files present, a JSON object."""
    path = Path(path)
    if not (path / CFG).is_file() or not (path / WEIGHTS).is_file():
        raise SAEError(f"{path} is not an SAE export (needs {CFG} and {WEIGHTS}); train one with "
                       "`mechinterp train-sae`")
    return read_json(path / CFG, "re-export the SAE", error=SAEError)


def read_sae_cfg(path: str | Path) -> dict:
    """cfg.json of an SAE export, refusing a transcoder (it predicts another site, so SAE metrics and
    pages would be wrong for it) with the command that evaluates one."""
    cfg = read_cfg(path)
    if kind(cfg)[1]:
        meta = cfg.get("metadata", {})
        raise SAEError(f"{path} is a transcoder ({meta.get('hook_name', '?')} -> {meta.get('hook_name_out', '?')}), "
                       "not an SAE; evaluate a transcoder set with `mechinterp eval-transcoders --set <its folder>`")
    return cfg


def validate(weights: dict, cfg: dict, path: str | Path = "") -> None:
    """Raise SAEError unless weights (numpy or torch: anything with .shape) and cfg form one export."""
    try:
        arch, transcoder = kind(cfg)
    except SAEError as e:
        raise SAEError(f"{path}: {e}") from None
    skip = transcoder and "skip" in cfg["architecture"]
    missing = [k for k in ("W_enc", "b_enc", "W_dec", "b_dec") + (("threshold",) if arch == "jumprelu" else ())
               + (("W_skip",) if skip else ()) if k not in weights]
    if missing:
        raise SAEError(f"{path}: {WEIGHTS} lacks {missing}; re-export the SAE")
    d_in, d_sae = tuple(weights["W_enc"].shape)
    d_out = cfg.get("d_out") if transcoder else d_in
    if tuple(weights["W_dec"].shape) != (d_sae, d_out) or (cfg.get("d_in"), cfg.get("d_sae")) != (d_in, d_sae) \
            or (skip and tuple(weights["W_skip"].shape) != (d_out, d_in)):
        raise SAEError(f"{path}: weights W_enc {tuple(weights['W_enc'].shape)} / W_dec "
                       f"{tuple(weights['W_dec'].shape)} disagree with cfg d_in={cfg.get('d_in')}, "
                       f"d_sae={cfg.get('d_sae')}{f', d_out={d_out}' if transcoder else ''}; the export is damaged")
    if arch == "topk" and not (isinstance(cfg.get("k"), int) and 0 < cfg["k"] <= d_sae):
        raise SAEError(f"{path}: topk SAE needs 0 < k <= d_sae, cfg has k={cfg.get('k')}")


def load_export(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """(weights, cfg) of an export, validated; SAEError with what to do otherwise."""
    cfg = read_cfg(path)
    try:
        weights = load_file(str(Path(path) / WEIGHTS))
    except Exception as e:  # safetensors raises its own error types
        raise SAEError(f"{path}: cannot read the export's {WEIGHTS} ({type(e).__name__}: {e}); re-export the SAE") from None
    validate(weights, cfg, path)
    check_finite(weights, Path(path) / WEIGHTS, "the training diverged or the file is damaged: retrain or re-export it",
                 SAEError)
    return weights, cfg


def check_store(cfg: dict, meta, sae_path, store_path, hook: bool = True) -> None:
    """Refuse to pair an SAE with a store of other activations (meta: the store's StoreMeta): the
    model and the hook it was trained at (where cfg.json records them; hook=False when only the
    store's tokens are used) and the width must agree."""
    pairs = [("model", cfg.get("model_name"), meta.model)] + ([("hook", cfg.get("hook_name"), meta.hook)] if hook else [])
    pairs.append(("width", cfg.get("d_in"), meta.d_model))
    for what, sae_has, store_has in pairs:
        if sae_has not in (None, "") and sae_has != store_has:
            raise SAEError(f"SAE {sae_path} was trained on {what} {sae_has} but store {store_path} holds {what} "
                           f"{store_has}; pass the store it was trained on (--acts), or omit --acts")


def store_path(cfg: dict) -> str | None:
    """The activation store the SAE was trained on, as recorded at export."""
    return cfg.get("mechinterp", {}).get("store", {}).get("path")


def open_sae_store(sae_dir, cfg: dict, acts=None, hook: bool = True):
    """The activation store an SAE is used with: `acts`, or the one it was trained on; refused
    (check_store) when it holds other activations than the SAE reads."""
    from mechinterp.formats.store import open_store

    path = acts or store_path(cfg)
    if not path:
        raise SAEError(f"{sae_dir}/cfg.json does not say which activation store it was trained on; pass --acts DIR")
    if not acts and not (Path(path) / META_FILE).exists():
        raise SAEError(f"{sae_dir} was trained on the activation store {path}, which is gone; its held-out "
                       "windows are read from it: pass --acts DIR (a store of the same model and hook) or "
                       "dump it again with `mechinterp dump`")
    store = open_store(path)
    check_store(cfg, store.meta, sae_dir, path, hook)
    return store


def encode_np(w: dict[str, np.ndarray], cfg: dict, x: np.ndarray) -> np.ndarray:
    """Reference implementation of the contract, numpy only (what a torch hook re-implements)."""
    pre = (x - w["b_dec"] if cfg.get("apply_b_dec_to_input", True) else x) @ w["W_enc"] + w["b_enc"]
    arch, _ = kind(cfg)
    if arch == "standard":
        return np.maximum(pre, 0)
    if arch == "topk":
        k = cfg["k"]
        idx = np.argpartition(-pre, k - 1, axis=-1)[..., :k]
        f = np.zeros_like(pre)
        np.put_along_axis(f, idx, np.maximum(np.take_along_axis(pre, idx, -1), 0), -1)
        return f
    return np.maximum(pre, 0) * (pre > w["threshold"])


def decode_np(w: dict[str, np.ndarray], f: np.ndarray, x: np.ndarray | None = None) -> np.ndarray:
    """recon (the target's site for a transcoder; x, its input, feeds the skip path when there is one)."""
    out = f @ w["W_dec"] + w["b_dec"]
    return out + x @ w["W_skip"].T if "W_skip" in w else out
