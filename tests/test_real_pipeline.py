"""The real default model end to end: dump -> JAX SAE -> torch hook, and the numbers agree
across frameworks. Uses the session fixtures smollm2_store / smollm2_sae (tests/conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from conftest import REAL_HOOK, REPO

from extract.store import open_store
from interventions.evaluate import ce_loss_recovered, heldout_tokens
from interventions.sae import load_sae
from interventions.splice import FeatureEdit, splice_hook
from mechinterp.sae_format import load_export


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


SAE_LENS_PYTHON = REPO / ".venv-bench-sae" / "bin" / "python"
SAE_LENS_PROBE = """
import json, sys
import numpy as np, torch
from sae_lens import SAE
sae = SAE.load_from_disk(sys.argv[1], device="cpu")
x = torch.from_numpy(np.load(sys.argv[2]))
with torch.no_grad():
    f = sae.encode(x)
    r = sae.decode(f)
np.save(sys.argv[3], f.numpy()); np.save(sys.argv[4], r.numpy())
print(json.dumps({"cls": type(sae).__name__, "hook": sae.cfg.metadata.hook_name}))
"""


def test_our_export_loads_in_sae_lens_with_the_same_reconstructions(smollm2_sae, tmp_path):
    """sae-lens lives in its own environment (.venv-bench-sae, made by `make peers`): it pins
    transformer-lens < 4 and never enters our runtime path."""
    if not SAE_LENS_PYTHON.exists():
        pytest.fail("sae-lens environment missing: run `make peers` (make test does it)")
    sae_dir, _ = smollm2_sae
    sae = load_sae(sae_dir)
    x = torch.randn(64, 576, generator=torch.Generator().manual_seed(0)) * 6
    np.save(tmp_path / "x.npy", x.numpy())
    proc = subprocess.run([str(SAE_LENS_PYTHON), "-c", SAE_LENS_PROBE, str(sae_dir), str(tmp_path / "x.npy"),
                           str(tmp_path / "f.npy"), str(tmp_path / "r.npy")], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": ""}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["hook"] == REAL_HOOK
    with torch.no_grad():
        f, r = sae.encode(x).numpy(), sae.decode(sae.encode(x)).numpy()
    assert np.allclose(np.load(tmp_path / "f.npy"), f, atol=1e-4, rtol=1e-4)
    assert np.allclose(np.load(tmp_path / "r.npy"), r, atol=1e-4, rtol=1e-4)
