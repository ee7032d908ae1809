"""Gradients of every architecture's loss against float64 central differences, and the sparse
TopK encode/decode against the dense computation."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sae_jax.topk import dense_decode, dense_topk_encode, sparse_decode, topk_encode


def _check(sae, f, skip_b_dec=False) -> float:
    """Max relative error of <grad f, v> vs (f(p + eps v) - f(p - eps v)) / 2 eps over random
    directions v in (W_enc, b_enc, W_dec, b_dec); log_threshold has pseudo-gradients only."""
    import equinox as eqx
    grads = eqx.filter_jit(eqx.filter_grad(f))(sae)
    f = eqx.filter_jit(f)
    errs = []
    for i in range(6):
        ks = jax.random.split(jax.random.PRNGKey(10 + i), 4)
        dirs = [jax.random.normal(k, a.shape, jnp.float64)
                for k, a in zip(ks, (sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec))]
        if skip_b_dec:
            dirs[3] = jnp.zeros_like(dirs[3])
        v = eqx.tree_at(lambda s: (s.W_enc, s.b_enc, s.W_dec, s.b_dec, s.log_threshold), sae,
                        tuple(dirs) + (jnp.zeros_like(sae.log_threshold),))
        eps = 1e-6
        fd = (f(jax.tree.map(lambda a, b: a + eps * b, sae, v)) - f(jax.tree.map(lambda a, b: a - eps * b, sae, v))) / (2 * eps)
        an = sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(grads), jax.tree.leaves(v)))
        errs.append(float(abs(fd - an) / max(abs(fd), 1e-8)))
    return max(errs)


def _fd_report() -> dict:
    """Runs in a float64 subprocess: relative error of <grad, v> vs central differences."""
    from dataclasses import replace

    import equinox as eqx

    from sae_jax.architectures.jumprelu import heaviside, jumprelu
    from sae_jax.config import SAEConfig
    from sae_jax.losses import _aux_k_loss, loss_fn, make_hyper
    from sae_jax.modules import init_sae

    out = {}
    for name in ("relu", "topk", "batchtopk", "jumprelu", "matryoshka"):
        arch, nested = ("batchtopk", (8, 20)) if name == "matryoshka" else (name, ())
        cfg = SAEConfig(arch=arch, d_in=12, d_sae=40, k=3, aux_k=6, threshold_init=0.3, bandwidth=0.2, matryoshka=nested)
        key = jax.random.PRNGKey(1)
        sae = jax.tree.map(lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a,
                           init_sae(cfg, key, jnp.zeros(12)))
        sae = eqx.tree_at(lambda s: s.b_enc, sae, 0.1 * jax.random.normal(jax.random.PRNGKey(2), (40,)))
        x = jax.random.normal(jax.random.PRNGKey(3), (16, 12), jnp.float64) * 2
        hyper = make_hyper(1e-3, 0.7, 3)
        f = lambda s: loss_fn(s, x, hyper, jnp.float64(1.0), jnp.zeros(40, bool), cfg)[0]
        if arch == "topk":  # separately: the aux-k term, whose target (the residual) is held fixed
            resid = jax.random.normal(jax.random.PRNGKey(5), x.shape, jnp.float64)
            dead = jnp.arange(40) % 3 == 0
            out["aux_k"] = _check(sae, lambda s: _aux_k_loss(s, x, resid, dead, cfg))
        out[name] = _check(sae, f)
        if name == "matryoshka":  # the loss is batchtopk's plus each prefix's error, computed here densely
            plain = loss_fn(sae, x, hyper, jnp.float64(1.0), jnp.zeros(40, bool), replace(cfg, matryoshka=()))[0]
            pre = jax.nn.relu((x - sae.b_dec) @ sae.W_enc + sae.b_enc)
            cand = jax.lax.top_k(pre, cfg.kmax)[0]                 # each token's k_max candidates
            kept = jnp.sort(cand.reshape(-1))[-16 * 3]               # the batch keeps its 16 x k largest
            f_all = jnp.where((pre >= cand[:, -1:]) & (pre >= kept) & (pre > 0), pre, 0.0)
            prefix = sum((((f_all[:, :w] @ sae.W_dec[:w] + sae.b_dec) - x) ** 2).sum(-1).mean() for w in nested)
            out["matryoshka_value"] = float(abs(f(sae) - plain - prefix) / prefix)
    # JumpReLU threshold: the pseudo-gradient formula of Rajamanoharan et al. (the true one is 0)
    z = jax.random.normal(jax.random.PRNGKey(4), (32, 5), jnp.float64)
    th, bw = jnp.full((5,), 0.2, jnp.float64), 0.5
    g_j = jax.grad(lambda t: jumprelu(z, t, bw).sum())(th)
    g_h = jax.grad(lambda t: heaviside(z, t, bw).sum())(th)
    rect = (jnp.abs((z - th) / bw) < 0.5).astype(jnp.float64)
    out["jumprelu_theta"] = float(jnp.abs(g_j - (-(th / bw) * rect).sum(0)).max())
    out["heaviside_theta"] = float(jnp.abs(g_h - (-(1 / bw) * rect).sum(0)).max())
    out["theta_grad_nonzero"] = float(jnp.abs(g_h).max())
    return out


@pytest.mark.slow  # float64 central differences of every architecture's loss (about 17 s)
def test_losses_match_float64_finite_differences():
    env = dict(os.environ, JAX_ENABLE_X64="1", JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads(r.stdout.strip().splitlines()[-1])
    for arch in ("relu", "topk", "batchtopk", "jumprelu", "matryoshka", "aux_k"):
        assert rep[arch] < 1e-6, (arch, rep[arch])
    assert rep["matryoshka_value"] < 1e-12
    assert rep["jumprelu_theta"] < 1e-12 and rep["heaviside_theta"] < 1e-12
    assert rep["theta_grad_nonzero"] > 0.1  # some pre-activations sit inside the kernel


@pytest.mark.parametrize("kernels", ["1", "0"])  # the C++ CPU kernels, and the pure-XLA path
@pytest.mark.parametrize("b,d,s,k", [(64, 24, 96, 8), (33, 16, 40, 40)])
def test_sparse_topk_equals_dense(b, d, s, k, kernels, monkeypatch):
    monkeypatch.setenv("MECHINTERP_CPU_KERNELS", kernels)
    ks = jax.random.split(jax.random.PRNGKey(0), 5)
    xc = jax.random.normal(ks[0], (b, d))
    W_enc = jax.random.normal(ks[1], (d, s)) / np.sqrt(d)
    b_enc = 0.1 * jax.random.normal(ks[2], (s,))
    W_dec = jax.random.normal(ks[3], (s, d))
    target = jax.random.normal(ks[4], (b, d))
    b_dec = 0.3 * target[0]

    def loss(enc, dec):
        def f(b_dec, W_enc, b_enc, W_dec):
            vals, idx = enc(xc, b_dec, W_enc, b_enc, k)
            return ((dec(vals, idx, W_dec) - target) ** 2).sum(), (vals, idx)
        return f

    (ls, (vs, i_s)), gs = jax.value_and_grad(loss(topk_encode, sparse_decode), argnums=(0, 1, 2, 3), has_aux=True)(
        b_dec, W_enc, b_enc, W_dec)
    (ld, (vd, i_d)), gd = jax.value_and_grad(loss(dense_topk_encode, dense_decode), argnums=(0, 1, 2, 3),
                                             has_aux=True)(b_dec, W_enc, b_enc, W_dec)
    np.testing.assert_array_equal(np.asarray(i_s), np.asarray(i_d))
    np.testing.assert_allclose(vs, vd, rtol=1e-6)
    np.testing.assert_allclose(ls, ld, rtol=1e-5)
    for a, bb in zip(gs, gd):
        np.testing.assert_allclose(np.asarray(a), np.asarray(bb), rtol=2e-4, atol=2e-4 * float(jnp.abs(bb).max()))


@pytest.mark.parametrize("every", [4, 8])  # 16 dead latents (more than n_aux = 12), 8 (fewer)
def test_sparse_aux_k_equals_dense(every, monkeypatch):
    """With the C++ kernels the aux-k term takes the sparse encode/decode; without, the dense
    one: the same loss and gradients."""
    import equinox as eqx

    from sae_jax.config import SAEConfig
    from sae_jax.losses import _aux_k_loss
    from sae_jax.modules import init_sae
    cfg = SAEConfig(arch="topk", d_in=16, d_sae=64, k=4, aux_k=12)
    sae = init_sae(cfg, jax.random.PRNGKey(0), jnp.zeros(16))
    sae = eqx.tree_at(lambda s: s.b_enc, sae, 0.1 * jax.random.normal(jax.random.PRNGKey(1), (64,)))
    x, resid = (jax.random.normal(k, (40, 16)) for k in jax.random.split(jax.random.PRNGKey(2)))
    dead = jnp.arange(64) % every == 0
    out = {}
    for kernels in ("1", "0"):
        monkeypatch.setenv("MECHINTERP_CPU_KERNELS", kernels)
        out[kernels] = eqx.filter_value_and_grad(lambda s: _aux_k_loss(s, x, resid, dead, cfg))(sae)
    (l1, g1), (l0, g0) = out["1"], out["0"]
    assert float(l1) > 0
    np.testing.assert_allclose(float(l1), float(l0), rtol=1e-5)
    for a, b in zip(jax.tree.leaves(eqx.filter(g1, eqx.is_inexact_array)), jax.tree.leaves(eqx.filter(g0, eqx.is_inexact_array))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5 * float(jnp.abs(b).max() + 1e-12))


def test_cpu_kernels_match_xla():
    """The C++ kernels (built here, or the test fails) against the XLA ops they replace, on
    rows with ties (relu zeros) and under vmap, as sweeps call them."""
    from sae_jax import cpu_kernels as C
    assert C.enabled(), "the C++ CPU kernels did not build (see the warning above)"
    ks = jax.random.split(jax.random.PRNGKey(0), 4)
    b, n, d, k = 70, 300, 24, 9
    z = jax.nn.relu(jax.random.normal(ks[0], (b, n))).at[0].set(0.0).at[1, : n // 2].set(1.0)
    for got, want in zip(jax.jit(lambda z: C.topk(z, k))(z), jax.lax.top_k(z, k)):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    _, idx = jax.lax.top_k(z, k)
    W, x, c = (jax.random.normal(kk, shape) for kk, shape in zip(ks[1:], [(n, d), (b, d), (b, k)]))
    pairs = [(C.gather_sum(c, idx, W), jnp.einsum("bk,bkd->bd", c, W[idx])),
             (C.gather_dot(x, idx, W), jnp.einsum("bd,bkd->bk", x, W[idx])),
             (C.scatter_rows(idx, c, x, n), jnp.zeros((n, d)).at[idx.reshape(-1)].add(
                 (c[:, :, None] * x[:, None, :]).reshape(-1, d)))]
    for got, want in pairs:
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)
    stacked = jax.vmap(lambda c: C.gather_sum(c, idx, W))(jnp.stack([c, 2 * c]))
    np.testing.assert_allclose(np.asarray(stacked[1]), 2 * np.asarray(pairs[0][1]), rtol=1e-5, atol=1e-5)


if __name__ == "__main__":
    print(json.dumps(_fd_report()))
