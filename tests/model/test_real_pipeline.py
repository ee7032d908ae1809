"""The real default model end to end: dump -> JAX SAE -> torch hook, and the numbers agree
across frameworks. Uses the session fixtures smollm2_store / smollm2_sae (tests/conftest.py)."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import torch
from conftest import REAL_HOOK

from interventions.ce_loss import ce_loss_recovered, heldout_tokens
from interventions.sae import load_sae
from interventions.splice import FeatureEdit, splice_hook
from mechinterp.formats.sae import load_export
from mechinterp.formats.store import open_store


def test_sae_learns_real_activations(smollm2_sae):
    sae_dir, metrics = smollm2_sae
    assert metrics["eval_tokens"] > 0
    assert metrics["fvu"] < 0.35, metrics  # 300 steps on 48k tokens: far below 1
    assert 20 <= metrics["l0"] <= 32, metrics  # topk, k = 32: at most k live per token
    cfg = json.loads((sae_dir / "cfg.json").read_text())
    assert (cfg["architecture"], cfg["d_in"], cfg["d_sae"], cfg["k"]) == ("topk", 576, 2048, 32)
    assert cfg["hook_name"] == REAL_HOOK and cfg["model_name"] == "smollm2-135m-q4"


def test_jax_features_from_the_store_equal_torch_features_live(smollm2, smollm2_store, smollm2_sae):
    """The JAX side reads fp16 rows from disk; the torch side reruns the model on the same tokens."""
    sae_dir, _ = smollm2_sae
    store = open_store(smollm2_store)
    _, eval_windows = store.split()
    windows = eval_windows[:4]
    weights, cfg = load_export(sae_dir)
    w = {k: jnp.asarray(v) for k, v in weights.items()}
    rows = jnp.asarray(store.read_windows(windows))  # [4 * 127, 576] from float16
    pre = (rows - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
    kth = jnp.sort(pre, axis=-1)[:, -cfg["k"]][:, None]
    f_jax = np.asarray(jnp.where(pre >= kth, jnp.maximum(pre, 0), 0.0))

    tsae = load_sae(sae_dir)
    tokens = torch.as_tensor(np.stack([store.window_tokens(int(i)) for i in windows]), dtype=torch.long)
    _, cache = smollm2.run_with_cache(tokens, names=[tsae.hook_name], stop_at_layer=smollm2.min_stop_layer([REAL_HOOK]))
    with torch.no_grad():
        f_torch = tsae.encode(cache[tsae.hook_name][:, store.meta.first_pos:].flatten(0, 1)).numpy()
    assert f_jax.shape == f_torch.shape
    same_support = np.mean((f_jax > 0) == (f_torch > 0))
    assert same_support > 0.999  # only near-ties at the k-th latent may swap under fp16 rounding
    both = (f_jax > 0) & (f_torch > 0)
    assert np.abs(f_jax[both] - f_torch[both]).max() <= 2e-3 * np.abs(f_torch).max()


def test_splice_through_the_sae_with_error_term_leaves_logits_unchanged(smollm2, smollm2_sae):
    sae = load_sae(smollm2_sae[0])
    tokens = smollm2.to_tokens("The Bank of England raised interest rates again on Thursday")
    with torch.no_grad():
        clean = smollm2(tokens)
        # a scale of 1 edits nothing but runs the whole path: x_hat' + (x - x_hat)
        kept = smollm2.run_with_hooks(tokens, hooks=[splice_hook(sae, FeatureEdit(scale={0: 1.0}), keep_error=True)])
        bare = smollm2.run_with_hooks(tokens, hooks=[splice_hook(sae, keep_error=False)])
    assert float((kept - clean).abs().max()) <= 1e-5 * float(clean.abs().max())
    assert float((bare - clean).abs().max()) > 0.1


def test_ce_loss_recovered_of_the_trained_sae(smollm2, smollm2_sae):
    sae = load_sae(smollm2_sae[0])
    windows, first_pos = heldout_tokens(sae, max_windows=4)
    r = ce_loss_recovered(smollm2, sae, windows, first_pos, batch=4)
    assert r["ce_sae"] < r["ce_mean_ablation"] < r["ce_zero_ablation"], r
    # this early-layer SAE is near lossless: on 4 windows its CE may land a hair below clean
    assert r["ce_sae"] > r["ce_clean"] - 0.01 * (r["ce_mean_ablation"] - r["ce_clean"]), r
    assert 0.5 < r["ce_loss_recovered"] < 1.01, r
    assert r["kl_sae"] > 0
