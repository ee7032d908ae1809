"""A crosscoder between two models of one width (a model and its fine-tune), numpy only; the owner
of its layout:

    DIR/crosscoder.safetensors   W_enc [2d, F]  b_enc [F]  W_dec [F, 2d]  b_dec [2d]  threshold [F]
                                 (raw space: model A's half first, then model B's), and per latent:
                                 norm_a, norm_b (decoder norm in each model), rel_norm = norm_b /
                                 (norm_a + norm_b), freq, mean_act (held out), nu_eps, nu_r (latent
                                 scaling), top_tokens, top_acts, top_rows [F, n] (its strongest tokens: id,
                                 activation, row of the dump)
    DIR/crosscoder.json          models {a, b}, hook, d_model, d_sae, k, factors, held-out metrics

One encoder reads both models' activations at one site, one latent code, one decoder per model:

    pre   = ([x_a, x_b] - b_dec) @ W_enc + b_enc
    f     = relu(pre) * (pre > threshold)               (trained as BatchTopK)
    x_a^  = f @ W_dec[:, :d] + b_dec[:d]      x_b^ = f @ W_dec[:, d:] + b_dec[d:]

Latent scaling (after Minder et al. 2025) asks whether a latent that looks B-only (rel_norm near 1)
is really absent from A: with d the latent's B decoder vector and f its activation, beta is the
least-squares scale of f d against a target over held-out tokens, and
    nu_eps = beta(A's error without the latent) / beta(B's error without the latent)
    nu_r   = beta(A's reconstruction without the latent) / beta(B's reconstruction without it);
near 0 both: B-specific; a large nu_eps: A holds the direction but its decoder shrank to zero; a
large nu_r: other latents rebuild it in A.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from mechinterp.formats.atomic import atomic_path, atomic_write_text
from mechinterp.formats.errors import LabError
from mechinterp.formats.reading import read_json

WEIGHTS, INFO = "crosscoder.safetensors", "crosscoder.json"
PER_LATENT = ("norm_a", "norm_b", "rel_norm", "freq", "mean_act", "nu_eps", "nu_r", "top_tokens", "top_acts", "top_rows")


def fold(w: dict[str, np.ndarray], factors: tuple[float, float]) -> dict[str, np.ndarray]:
    """Normalised-space weights (each model's half scaled by its factor) -> raw-space weights."""
    d = w["W_enc"].shape[0] // 2
    c = np.repeat(np.float64(factors), d)
    out = {"W_enc": w["W_enc"] * c[:, None], "b_enc": w["b_enc"], "W_dec": w["W_dec"] / c[None, :],
           "b_dec": w["b_dec"] / c, "threshold": w["threshold"]}
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def save_crosscoder(folder: str | Path, weights: dict[str, np.ndarray], latents: dict[str, np.ndarray],
                    info: dict) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / WEIGHTS) as tmp:
        save_file({**weights, **{k: np.ascontiguousarray(latents[k]) for k in PER_LATENT}}, str(tmp))
    atomic_write_text(folder / INFO, json.dumps(info, indent=1))        # last: the crosscoder is complete
    return folder


def load_crosscoder(folder: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    folder = Path(folder)
    if not (folder / INFO).exists():
        raise LabError(f"{folder} holds no crosscoder ({INFO} missing); train one with `mechinterp train-crosscoder`")
    return load_file(str(folder / WEIGHTS)), read_json(folder / INFO, "re-train the crosscoder")


def encode(w: dict[str, np.ndarray], x_a: np.ndarray, x_b: np.ndarray) -> np.ndarray:
    pre = (np.concatenate([x_a, x_b], -1) - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
    return np.maximum(pre, 0) * (pre > w["threshold"])


def decode(w: dict[str, np.ndarray], f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x_a^, x_b^)."""
    out = f @ w["W_dec"] + w["b_dec"]
    d = out.shape[-1] // 2
    return out[..., :d], out[..., d:]


def decoder(w: dict[str, np.ndarray], model: str) -> np.ndarray:
    """One model's decoder vectors [F, d] ("a" or "b")."""
    d = w["W_dec"].shape[1] // 2
    return w["W_dec"][:, :d] if model == "a" else w["W_dec"][:, d:]
