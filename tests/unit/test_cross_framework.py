"""The same numbers through JAX (sae_jax) and PyTorch (interventions), joined only by files."""

from __future__ import annotations

import subprocess
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from interventions.sae import load_sae
from mechinterp.formats.sae import encode_np, export_sae, load_export
from mechinterp.formats.store import StoreMeta
from sae_jax.architectures import NAMES, get
from sae_jax.config import SAEConfig
from sae_jax.losses import loss_fn, make_hyper
from sae_jax.modules import encode, init_sae
from sae_jax.train import export_weights

D_IN, D_SAE, K = 48, 192, 6


def _random_sae(arch: str, seed: int = 0):
    """A JAX SAE with every parameter perturbed away from its initialisation."""
    cfg = SAEConfig(arch=arch, d_in=D_IN, d_sae=D_SAE, k=K)
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(seed), 4)
    sae = init_sae(cfg, k1)
    sae = eqx.tree_at(lambda s: (s.W_enc, s.b_enc, s.b_dec, s.log_threshold), sae,
                      (sae.W_enc + 0.05 * jax.random.normal(k2, sae.W_enc.shape),
                       0.1 * jax.random.normal(k3, (D_SAE,)),
                       0.2 * jax.random.normal(k4, (D_IN,)),
                       jnp.log(jax.random.uniform(k4, (D_SAE,), minval=0.05, maxval=0.4))))
    return cfg, sae


def _meta() -> StoreMeta:
    return StoreMeta(model="tiny", weights="random", hook="blocks.0.hook_resid_pre", layer=0, d_model=D_IN,
                     ctx=16, keep_bos=False, n_windows=1, complete=True, stats={"mean_norm": 3.0})


def _rel_err(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


@pytest.mark.parametrize("arch", NAMES)  # every registered architecture
def test_exported_sae_gives_the_jax_latents_and_reconstructions(tmp_path, arch):
    cfg, sae = _random_sae(arch)
    factor = 1.7  # the normalisation the export folds into the weights
    tracked = get(arch).tracks_threshold  # the trainer's estimate stands in for a learned threshold
    threshold = jnp.full((D_SAE,), 0.15) if tracked else sae.threshold
    export_sae(tmp_path, export_weights(sae, threshold, arch), arch, K, factor, _meta(), "store", {}, {})
    tsae = load_sae(tmp_path)
    x = np.random.default_rng(1).normal(size=(64, D_IN)).astype(np.float32) * 2

    f_jax = encode(sae, jnp.asarray(x) * factor, K, threshold if tracked else None)
    recon_jax = sae.decode(f_jax) / factor
    with torch.no_grad():
        f_torch = tsae.encode(torch.from_numpy(x))
        recon_torch = tsae.decode(f_torch)
    assert (np.asarray(f_jax) > 0).sum() > 0
    assert np.array_equal(np.asarray(f_jax) > 0, f_torch.numpy() > 0)
    assert _rel_err(f_torch.numpy(), f_jax) < 1e-5
    assert _rel_err(recon_torch.numpy(), recon_jax) < 1e-5
    w, exported = load_export(tmp_path)  # the numpy reference of the contract agrees with both
    assert _rel_err(encode_np(w, exported, x), f_jax) < 1e-5


def _torch_loss(params: dict, x: torch.Tensor, arch: str, l1: float) -> torch.Tensor:
    """The training losses of sae_jax/losses.py written again in torch (no dead latents)."""
    pre = (x - params["b_dec"]) @ params["W_enc"] + params["b_enc"]
    if arch == "relu":
        f = torch.relu(pre)
        sparsity = (f * params["W_dec"].norm(dim=1)).sum(-1).mean()
    else:
        top = pre.topk(K, dim=-1)
        f = torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))
        sparsity = torch.zeros(())
    recon = f @ params["W_dec"] + params["b_dec"]
    return ((recon - x) ** 2).sum(-1).mean() + l1 * sparsity


@pytest.mark.parametrize("arch", ["relu", "topk"])
def test_loss_and_gradients_agree_with_a_torch_reimplementation(arch):
    cfg, sae = _random_sae(arch)
    x = np.random.default_rng(2).normal(size=(128, D_IN)).astype(np.float32)
    l1 = 0.3
    hyper, dead = make_hyper(1e-3, l1, K), jnp.zeros((D_SAE,), bool)
    (loss_j, _), grads_j = eqx.filter_value_and_grad(loss_fn, has_aux=True)(
        sae, jnp.asarray(x), hyper, jnp.float32(1.0), dead, cfg)

    names = ("W_enc", "b_enc", "W_dec", "b_dec")
    params = {n: torch.tensor(np.asarray(getattr(sae, n)), requires_grad=True) for n in names}
    loss_t = _torch_loss(params, torch.from_numpy(x), arch, l1)
    loss_t.backward()
    assert abs(float(loss_t.detach()) - float(loss_j)) / abs(float(loss_t.detach())) < 1e-5
    for n in names:
        assert _rel_err(np.asarray(getattr(grads_j, n)), params[n].grad.numpy()) < 1e-5, n


@pytest.mark.slow  # fresh interpreters in subprocesses
def test_sae_jax_never_imports_torch_and_extract_store_neither():
    code = ("import sys, sae_jax.train, sae_jax.pipeline, sae_jax.sweep, mechinterp.formats.store; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    code = "import sys, interventions.splice, interventions.ce_loss, extract.hooked; print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
