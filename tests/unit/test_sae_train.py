"""Training on synthetic stores: FVU drops, export round-trips, resume == uninterrupted,
sweep of N == N single runs, multi-device == one device, bad inputs fail cleanly."""

import json
import os
import subprocess
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mechinterp.formats.sae import decode_np, encode_np, load_export
from sae_jax.architectures import NAMES, get
from sae_jax.config import TrainConfig
from sae_jax.modules import encode
from sae_jax.pipeline import load_store, train_sae
from sae_jax.sweep import run_sweep
from sae_jax.synthetic import write_synthetic_store
from sae_jax.train import fit

D_IN, D_SAE = 32, 128


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    return write_synthetic_store(tmp_path_factory.mktemp("acts") / "store", d_in=D_IN, n_features=96,
                                 n_windows=256, active=4)


def _tcfg(**kw):
    base = dict(steps=120, batch=256, lr=3e-3, l1=1.0, progress=False, ckpt_every=50, eval_tokens=4000,
                log_every=5)
    return TrainConfig(**{**base, **kw})


TEST_L1 = {"relu": 1.0, "jumprelu": 0.3}  # lighter than the defaults on this small store


@pytest.mark.parametrize("arch", NAMES)  # every registered architecture
def test_train_lowers_fvu_and_export_round_trips(store_dir, tmp_path, arch):
    l1 = TEST_L1.get(arch, get(arch).default_l1)
    out = tmp_path / arch
    m = train_sae(store_dir, out, dict(arch=arch, d_sae=D_SAE, k=4, dead_tokens=20_000), _tcfg(l1=l1))
    assert m["fvu"] < 0.5, m            # b_dec alone leaves FVU ~ 1
    assert 0 < m["l0"] < 60, m
    if get(arch).uses_k:
        assert abs(m["l0"] - 4) < (1e-9 if arch == "topk" else 1.5), m
    for f in ("sae/cfg.json", "sae/sae_weights.safetensors", "sae/metrics.json", "curves.png", "frequencies.png"):
        assert (out / f).stat().st_size > 0, f

    # the export acts on raw x exactly as the trained SAE on normalised x
    w, cfg = load_export(out / "sae")
    assert cfg["d_in"] == D_IN and cfg["d_sae"] == D_SAE and cfg["apply_b_dec_to_input"] is True
    assert cfg["architecture"] == get(arch).export
    assert w["W_enc"].shape == (D_IN, D_SAE) and w["W_dec"].shape == (D_SAE, D_IN) and w["W_enc"].dtype == np.float32
    from sae_jax.checkpoint import Checkpointer
    from sae_jax.config import SAEConfig
    from sae_jax.train import inference_threshold, init_state
    store = load_store(store_dir)
    scfg = SAEConfig(arch=arch, d_in=D_IN, d_sae=D_SAE, k=4, dead_tokens=20_000)
    ck = Checkpointer(out / "checkpoints")
    state = ck.restore(ck.latest_step(), init_state(scfg, _tcfg(), jax.random.PRNGKey(0), jnp.zeros(D_IN)))
    ck.close()
    c = cfg["mechinterp"]["normalisation_factor_folded"]
    assert c == pytest.approx(np.sqrt(D_IN) / store.mean_norm)
    x = store.read_windows(np.arange(4))
    thr = jnp.asarray(w["threshold"]) if "threshold" in w else inference_threshold(state, scfg)
    f_trained = np.asarray(encode(state.sae, jnp.asarray(x * c), k=4, threshold=thr))
    f_export = encode_np(w, cfg, x)
    np.testing.assert_allclose(f_export, f_trained, rtol=2e-4, atol=2e-4 * np.abs(f_trained).max())
    np.testing.assert_array_equal(f_export > 0, f_trained > 0)
    recon = decode_np(w, f_export)
    np.testing.assert_allclose(recon, np.asarray(state.sae.decode(jnp.asarray(f_trained))) / c, rtol=1e-3, atol=1e-3)
    assert ((recon - x) ** 2).sum() < 0.6 * ((x - x.mean(0)) ** 2).sum()


@pytest.mark.parametrize("arch", ["relu", "topk"])
def test_resume_equals_uninterrupted(store_dir, tmp_path, arch):
    # relu: the resampling pass at step 20 draws from the PRNG key; the crash at 25 loses steps 20..24
    scfg = dict(arch=arch, d_sae=D_SAE, k=4, dead_tokens=2000)
    tc = _tcfg(steps=40, ckpt_every=10, resample_every=20, l1=8.0)
    store = load_store(store_dir)
    from sae_jax.config import SAEConfig
    sc = SAEConfig(d_in=D_IN, **scfg)
    full = fit(store, sc, tc, tmp_path / "a")
    part = fit(store, sc, tc, tmp_path / "b", stop_at=25)
    assert part.steps == 25
    resumed = fit(store, sc, tc, tmp_path / "b")
    assert resumed.resumed_from == 20  # the last checkpoint before the interruption
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(resumed.state)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)
    assert [h["loss"] for h in full.history] == pytest.approx([h["loss"] for h in resumed.history], rel=1e-5)


def test_resample_resets_only_dead_latents():
    from sae_jax.config import SAEConfig
    from sae_jax.losses import make_hyper
    from sae_jax.train import TrainState, init_state, make_resample, make_step
    sc = SAEConfig(arch="relu", d_in=8, d_sae=16, dead_tokens=100)
    tc = _tcfg(steps=10)
    x = jax.random.normal(jax.random.PRNGKey(0), (64, 8))
    st = init_state(sc, tc, jax.random.PRNGKey(1), jnp.zeros(8))
    st, _ = eqx.filter_jit(make_step(sc, tc))(st, make_hyper(1e-2, 1.0, 4), x, 1.0)  # non-zero Adam moments
    dead = jnp.arange(16) < 5
    st = TrainState(st.sae, st.opt_state, st.step, st.key, jnp.where(dead, 1000, 0), st.threshold)
    new = eqx.filter_jit(make_resample(sc))(st, x)
    d, a = np.asarray(dead), ~np.asarray(dead)
    np.testing.assert_array_equal(np.asarray(new.sae.W_enc)[:, a], np.asarray(st.sae.W_enc)[:, a])
    np.testing.assert_array_equal(np.asarray(new.sae.W_dec)[a], np.asarray(st.sae.W_dec)[a])
    assert not np.allclose(np.asarray(new.sae.W_dec)[d], np.asarray(st.sae.W_dec)[d])
    assert np.all(np.asarray(new.sae.b_enc)[d] == 0) and np.all(np.asarray(new.since_fired) == 0)
    assert np.all(np.asarray(new.opt_state.mu.W_dec)[d] == 0) and np.all(np.asarray(new.opt_state.nu.W_enc)[:, d] == 0)
    assert np.abs(np.asarray(new.opt_state.mu.W_dec)[a]).max() > 0
    dec_norms = np.linalg.norm(np.asarray(new.sae.W_dec), axis=1)
    np.testing.assert_allclose(dec_norms[d], np.linalg.norm(np.asarray(st.sae.W_dec)[a], axis=1).mean(), rtol=1e-5)


@pytest.mark.slow  # five SAEs trained twice over (about 45 s)
@pytest.mark.parametrize("arch,members,chunk", [
    # a vmapped chunk of 2 members, then 1: both the vmap and the loop over chunks
    ("relu", [dict(l1=0.5, lr=3e-3), dict(l1=2.0, lr=1e-3), dict(l1=1.0, lr=3e-3)], 2),
    ("topk", [dict(k=2), dict(k=6)], None),  # None: the platform default (1 on CPU)
])
def test_sweep_equals_single_runs(store_dir, tmp_path, arch, members, chunk):
    tc = _tcfg(steps=30, sweep_chunk=chunk)
    members = [dict(dict(l1=1.0, lr=3e-3, k=4, seed=0), **m) for m in members]
    s = run_sweep(store_dir, tmp_path / "sweep", dict(arch=arch, d_sae=D_SAE), tc, members)
    assert (tmp_path / "sweep" / "pareto.png").stat().st_size > 0
    assert json.loads((tmp_path / "sweep" / "sweep.json").read_text())["members"][0]["metrics"]["fvu"] > 0
    for m, row in zip(members, s["members"]):
        single = train_sae(store_dir, tmp_path / f"single_{row['name']}", dict(arch=arch, d_sae=D_SAE, k=m["k"]),
                           _tcfg(steps=30, l1=m["l1"], lr=m["lr"], seed=m["seed"]))
        for key in ("fvu", "l0", "mse"):
            assert row["metrics"][key] == pytest.approx(single[key], rel=2e-3, abs=1e-4), (row["name"], key)
        ws, _ = load_export(tmp_path / "sweep" / row["name"] / "sae")
        w1, _ = load_export(tmp_path / f"single_{row['name']}" / "sae")
        for k in w1:
            np.testing.assert_allclose(ws[k], w1[k], rtol=1e-3, atol=1e-4 * np.abs(w1[k]).max())
    l0s = [r["metrics"]["l0"] for r in s["members"]]
    assert len(set(np.round(l0s, 3))) == len(l0s)  # the members really differ


MULTI = r"""
import sys, json, numpy as np, jax
from sae_jax.config import SAEConfig, TrainConfig
from sae_jax.pipeline import load_store
from sae_jax.train import fit
assert len(jax.devices()) == 2
store = load_store(sys.argv[1])
out = {}
for arch in ("relu", "batchtopk"):
    sc = SAEConfig(arch=arch, d_in=store.d_model, d_sae=64, k=4)
    tc = TrainConfig(steps=15, batch=256, lr=3e-3, l1=1.0, progress=False)
    one = fit(store, sc, tc, sys.argv[2] + "/one_" + arch, devices=jax.devices()[:1])
    two = fit(store, sc, tc, sys.argv[2] + "/two_" + arch, devices=jax.devices())
    out[arch] = max(float(np.abs(np.asarray(a) - np.asarray(b)).max() / (np.abs(np.asarray(a)).max() + 1e-12))
                    for a, b in zip(jax.tree.leaves(one.state.sae), jax.tree.leaves(two.state.sae)))
    out[arch + "_sharded"] = len(two.state.sae.W_enc.sharding.device_set)
print(json.dumps(out))
"""


@pytest.mark.slow  # fresh interpreters in subprocesses
def test_two_devices_match_one(store_dir, tmp_path):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", MULTI, str(store_dir), str(tmp_path)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads(r.stdout.strip().splitlines()[-1])
    for arch in ("relu", "batchtopk"):
        assert rep[arch] < 1e-4, rep
        assert rep[arch + "_sharded"] == 2



def test_heldout_metrics_leave_out_massive_tokens_and_measure_shrinkage(tmp_path):
    """An SAE that reconstructs y / 2 exactly, on a store where 3 tokens have 100x the usual norm:
    shrinkage 0.5, relative error 0.5 at every token, and the typical-token explained variance
    computed over the other tokens only."""
    from mechinterp.formats.store import StoreMeta, open_store
    from mechinterp.formats.store_writer import StoreWriter
    from sae_jax.config import SAEConfig
    from sae_jax.metrics import evaluate
    from sae_jax.modules import init_sae

    d, rows = 8, 16
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 1.5, (4, rows, d)).astype(np.float32)
    x[1, 3] *= 100
    x[2, 5] *= 100
    x[3, 0] *= 100
    meta = StoreMeta(model="synthetic", weights="-", hook="blocks.0.hook_resid_pre", layer=0, d_model=d, ctx=rows + 1,
                     keep_bos=False, n_windows=4, dtype="float32", corpus={"name": "synthetic"})
    w = StoreWriter.create_or_resume(tmp_path / "store", meta)
    tokens = np.ones((4, rows + 1), np.int32)
    tokens[:, 0] = 0
    w.write(x, tokens)
    w.finish()
    cfg = SAEConfig(arch="relu", d_in=d, d_sae=d)
    sae = init_sae(cfg, jax.random.PRNGKey(0))
    sae = eqx.tree_at(lambda s: (s.W_enc, s.W_dec, s.b_dec), sae, (jnp.eye(d), 0.5 * jnp.eye(d), jnp.zeros(d)))
    (m,), _ = evaluate(sae, None, None, open_store(tmp_path / "store"), np.arange(4), 1.0, cfg, 10_000, rows=32)
    flat = x.reshape(-1, d).astype(np.float64)
    keep = np.linalg.norm(flat, axis=1) < 50
    typical = flat[keep]
    ev = 1 - 0.25 * (typical ** 2).sum() / ((typical - typical.mean(0)) ** 2).sum()
    assert m["massive_tokens"] == 3 and m["eval_tokens"] == 64
    assert m["shrinkage"] == pytest.approx(0.5, rel=1e-5)
    assert m["rel_error_p50"] == pytest.approx(0.5, rel=1e-5) and m["rel_error_p90"] == pytest.approx(0.5, rel=1e-5)
    assert m["explained_variance_typical"] == pytest.approx(ev, rel=1e-5)
    assert m["explained_variance"] > m["explained_variance_typical"]   # the massive tokens flatter the global ratio


def test_an_export_finds_its_store_from_any_folder(store_dir, tmp_path, monkeypatch):
    """Trained from a path relative to the working directory, the export records it absolute: another
    folder's commands (eval-sae, browse, trace's cards) still open the store."""
    from mechinterp.formats.sae import load_export, open_sae_store, store_path

    monkeypatch.chdir(store_dir.parent)
    train_sae("store", tmp_path / "run", dict(arch="topk", d_sae=D_SAE, k=4), _tcfg(steps=10, ckpt_every=10))
    monkeypatch.chdir(tmp_path)
    _, cfg = load_export(tmp_path / "run" / "sae")
    assert store_path(cfg) == str(store_dir.resolve())
    assert open_sae_store(tmp_path / "run" / "sae", cfg).n_rows > 0
