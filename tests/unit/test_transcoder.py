"""Transcoders: one dump writes a layer's MLP input and output (hook_mlp_in, hook_mlp_out) side by
side; sae_jax trains latents that read the one and predict the other (TopK, ReLU, JumpReLU, with and
without a skip path); the SAELens-transcoder-layout export reproduces the trained model on raw
activations, in numpy and in torch, and replaces the real MLP output."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pytest
import torch

from extract.dump import DumpConfig, dump_activations
from interventions.sae import load_sae
from mechinterp.formats.errors import SAEError
from mechinterp.formats.paired import open_pair
from mechinterp.formats.sae import decode_np, encode_np, load_export
from mechinterp.formats.store import StoreError
from sae_jax.config import SAEConfig, TrainConfig
from sae_jax.modules import encode
from sae_jax.pipeline import load_store, train_sae
from sae_jax.train import in_out_factors, normalisation_factor

IN, OUT = "blocks.1.hook_mlp_in", "blocks.1.hook_mlp_out"


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    from extract.models import load_model

    return load_model(str(tiny_dir), device="cpu")


@pytest.fixture(scope="module")
def pair_dir(tiny, docs_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("pair")
    dump_activations(DumpConfig(model=tiny.name, hooks=("blocks.{L}.hook_mlp_in", "blocks.{L}.hook_mlp_out"),
                                layers="1", ctx=16, n_tokens=15 * 150, batch=8, dtype="float32",
                                corpus=f"dir:{docs_dir}", out=str(root), progress=False), model=tiny)
    return root


def _tcfg(**kw):
    return TrainConfig(**{**dict(steps=300, batch=256, lr=3e-3, progress=False, ckpt_every=300, eval_tokens=4000,
                                 log_every=10), **kw})


def test_paired_store_reads_both_sites_row_by_row(pair_dir, tiny):
    pair = open_pair(pair_dir / IN, pair_dir / OUT)
    assert (pair.d_in, pair.d_out, pair.d_model) == (64, 64, 128)
    xy = next(pair.batches(64, seed=3, skip_bos=True))
    x, y = next(pair.inp.batches(64, seed=3, skip_bos=True)), next(pair.out.batches(64, seed=3, skip_bos=True))
    np.testing.assert_array_equal(xy, np.concatenate([x, y], 1))
    # the pairing is real: the layer's MLP maps the input rows onto the output rows
    mlp = tiny.model.model.layers[1].mlp
    with torch.no_grad():
        np.testing.assert_allclose(mlp(torch.from_numpy(x)).numpy(), y, rtol=1e-4, atol=1e-5)
    factor = normalisation_factor(pair)
    assert factor.shape == (128,) and in_out_factors(factor) == (pytest.approx(8 / pair.inp.mean_norm),
                                                               pytest.approx(8 / pair.out.mean_norm))
    with pytest.raises(StoreError, match="not from one dump"):
        open_pair(pair_dir / IN, _other_store(pair_dir, tiny))


def _other_store(pair_dir, tiny) -> str:
    path = pair_dir.parent / "other"
    if not path.exists():
        dump_activations(DumpConfig(model=tiny.name, hooks=(OUT,), ctx=16, n_tokens=15 * 20, corpus="bbc",
                                    out=str(path), progress=False), model=tiny)
    return str(path)


@pytest.mark.parametrize("arch,skip", [("topk", False), ("topk", True), ("relu", True), ("jumprelu", False)])
def test_transcoder_learns_the_mlp_and_its_export_reproduces_it(pair_dir, tmp_path, arch, skip):
    out = tmp_path / "tc"
    l1 = {"relu": 0.3, "jumprelu": 0.05}.get(arch, 0.0)
    m = train_sae(pair_dir / IN, out, dict(arch=arch, d_sae=256, k=16, skip=skip), _tcfg(l1=l1),
                  acts_out=pair_dir / OUT)
    # of mlp_out on held-out documents; the random tiny MLP is near-quadratic in its input, a hard target
    # (measured 0.17 jumprelu .. 0.55 relu + skip); a constant prediction scores 0
    assert m["explained_variance"] > 0.12, m
    w, cfg = load_export(out / "sae")
    name = {"topk": "topk_", "relu": "", "jumprelu": "jumprelu_"}[arch] + ("skip_" if skip else "") + "transcoder"
    assert cfg["architecture"] == name and cfg["apply_b_dec_to_input"] is False
    assert (cfg["hook_name"], cfg["metadata"]["hook_name_out"], cfg["d_out"]) == (IN, OUT, 64)
    assert ("W_skip" in w) == skip and (not skip or w["W_skip"].shape == (64, 64))

    # the raw-space export equals the trained model on normalised rows, divided by the target's factor
    pair = load_store(pair_dir / IN, pair_dir / OUT)
    rows = pair.read_windows(np.arange(3), skip_bos=True)
    x, y = rows[:, :64], rows[:, 64:]
    f_np = encode_np(w, cfg, x)
    y_np = decode_np(w, f_np, x)
    sae = load_sae(out / "sae")
    with torch.no_grad():
        y_torch = sae(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(y_torch, y_np, rtol=1e-4, atol=1e-4 * np.abs(y_np).max())
    fvu = ((y_np - y) ** 2).sum() / ((y - y.mean(0)) ** 2).sum()
    assert fvu < 0.9, fvu
    from sae_jax.checkpoint import Checkpointer
    from sae_jax.train import inference_threshold, init_state

    scfg = SAEConfig(arch=arch, d_in=64, d_out=64, d_sae=256, k=16, skip=skip)
    ck = Checkpointer(out / "checkpoints")
    state = ck.restore(ck.latest_step(), init_state(scfg, _tcfg(), jax_key(), jnp.zeros(64)))
    ck.close()
    c_in, c_out = in_out_factors(normalisation_factor(pair))
    thr = jnp.asarray(w["threshold"]) if "threshold" in w else inference_threshold(state, scfg)
    f_jax = np.asarray(encode(state.sae, jnp.asarray(x * c_in), k=16, threshold=thr))
    np.testing.assert_array_equal(f_np > 0, f_jax > 0)
    y_jax = np.asarray(state.sae.decode(jnp.asarray(f_jax)) + state.sae.skip_path(jnp.asarray(x * c_in))) / c_out
    np.testing.assert_allclose(y_np, y_jax, rtol=1e-3, atol=1e-3 * np.abs(y_np).max())


def jax_key():
    import jax

    return jax.random.PRNGKey(0)


def test_transcoder_replaces_the_mlp_of_the_real_model(pair_dir, tmp_path, tiny):
    """mlp_out replaced by the transcoder's prediction from mlp_in: with the error term added back the
    logits are the model's own; without it, close (held-out next-token loss within 0.5 nats here)."""
    out = tmp_path / "tc"
    train_sae(pair_dir / IN, out, dict(arch="topk", d_sae=256, k=16), _tcfg(), acts_out=pair_dir / OUT)
    tc = load_sae(out / "sae")
    toks = tiny.to_tokens("When Mary and John went to the store, John gave a drink to")
    seen = {}

    def read_in(x, hook):
        seen["x"] = x

    def replace(keep_error):
        def fn(y, hook):
            y_hat = tc(seen["x"].float()).to(y.dtype)
            return y_hat + (y - y_hat).detach() if keep_error else y_hat
        return fn
    with torch.no_grad():
        clean = tiny.run_with_hooks(toks, hooks=[])
        kept = tiny.run_with_hooks(toks, hooks=[(IN, read_in), (OUT, replace(True))])
        alone = tiny.run_with_hooks(toks, hooks=[(IN, read_in), (OUT, replace(False))])
    assert torch.allclose(kept, clean, atol=1e-4)
    assert not torch.allclose(alone, clean, atol=1e-4)
    ce = [torch.nn.functional.cross_entropy(lg[0, :-1], toks[0, 1:]).item() for lg in (clean, alone)]
    assert abs(ce[1] - ce[0]) < 0.5, ce


def test_transcoder_bad_inputs(pair_dir, tmp_path, tiny):
    with pytest.raises(SAEError, match="--skip is for transcoders"):
        train_sae(pair_dir / IN, tmp_path / "a", dict(arch="topk", d_sae=64, k=4, skip=True), _tcfg(steps=5))
    with pytest.raises(SAEError, match="not from one dump"):
        train_sae(pair_dir / IN, tmp_path / "b", dict(arch="topk", d_sae=64, k=4), _tcfg(steps=5),
                  acts_out=_other_store(pair_dir, tiny))
    train_sae(pair_dir / IN, tmp_path / "c", dict(arch="topk", d_sae=64, k=4), _tcfg(steps=100, ckpt_every=50),
              acts_out=pair_dir / OUT)
    with pytest.raises(SAEError, match=r"the checkpoint in .* was made with store mean_norm=\[.*\], this run asks "
                                       r"for store mean_norm=[\d.]+ \(also store target hook, d_out"):
        train_sae(pair_dir / IN, tmp_path / "c", dict(arch="topk", d_sae=64, k=4), _tcfg(steps=100, ckpt_every=50))
    from interventions.splice import splice_hook
    from mechinterp.formats.sae import SAEError as ExportError

    with pytest.raises(ExportError, match="is a transcoder"):
        splice_hook(load_sae(tmp_path / "c" / "sae"))
    assert json.loads((tmp_path / "c" / "sae" / "cfg.json").read_text())["mechinterp"]["target_store"]["hook"] == OUT


@pytest.mark.slow  # the stages end to end
def test_every_layer_trained_exported_for_circuit_tracer_and_replacing_the_mlps(tiny_dir, docs_dir, tmp_path, capfd):
    """The commands end to end on the tiny 2-layer model: one dump of both layers' pairs, a transcoder per
    layer, the circuit-tracer set, and the replacement model (exact with error terms; CE-loss recovered)."""
    from interventions.replacement import load_transcoders, replacement_hooks
    from mechinterp.cli import main as cli
    from mechinterp.formats.transcoder_set import read_transcoder_set

    acts, out = tmp_path / "pairs", tmp_path / "tcs"
    cli(["dump", "--model", str(tiny_dir), "--corpus", f"dir:{docs_dir}", "--ctx", "16", "--n_tokens", str(15 * 150),
         "--hook", "blocks.{L}.hook_mlp_in", "--hook", "blocks.{L}.hook_mlp_out", "--out", str(acts), "--no_progress"])
    assert "4 new stores: 0.5 KB per token" in capfd.readouterr().out        # 2 layers x 2 sites x 64 x fp16
    cli(["train-transcoders", "--acts", str(acts), "--out", str(out), "--arch", "topk", "--k", "16", "--d_sae", "256",
         "--steps", "150", "--batch", "256", "--lr", "3e-3", "--eval_tokens", "2000", "--no_progress"])
    summary = json.loads((out / "transcoders.json").read_text())
    assert [r["layer"] for r in summary["layers"]] == [0, 1] and summary["worst_fvu"] < 0.9, summary
    assert (out / "fvu_by_layer.png").stat().st_size > 0

    config, layers = read_transcoder_set(out / "circuit_tracer")
    assert config["model_kind"] == "transcoder_set" and (config["activation"], config["k"]) == ("topk", 16)
    assert (config["feature_input_hook"], config["feature_output_hook"]) == ("mlp.hook_in", "hook_mlp_out")
    for L, t in layers.items():
        w, _ = load_export(out / f"layer_{L}" / "sae")
        np.testing.assert_array_equal(t["W_enc"], w["W_enc"].T)
        assert set(t) == {"W_enc", "W_dec", "b_enc", "b_dec", "W_skip"}  # skip transcoders by default
        np.testing.assert_array_equal(t["W_skip"], w["W_skip"])

    cli(["eval-transcoders", "--set", str(out), "--n_windows", "4", "--device", "cpu"])
    rep = json.loads((out / "replacement.json").read_text())
    # a random model barely uses its MLPs (zeroing them moves the loss by ~3e-3 nats), so only the bookkeeping
    # is checked here; the SmolLM2 numbers are the benchmark's
    z, r, c = rep["ce_all_zeroed"], rep["ce_all_replaced"], rep["ce_clean"]
    assert rep["ce_loss_recovered"] == pytest.approx((z - r) / (z - c)) and abs(r - c) < 0.05, rep
    assert [r["layer"] for r in rep["per_layer"]] == [0, 1]

    from extract.models import load_model

    model = load_model(str(tiny_dir), device="cpu")
    tcs = load_transcoders(out)
    toks = model.to_tokens("When Mary and John went to the store, John gave a drink to")
    record: dict = {}
    with torch.no_grad():
        clean = model.run_with_hooks(toks, hooks=[])
        kept = model.run_with_hooks(toks, hooks=replacement_hooks(tcs, keep_error=True, record=record))
    assert torch.allclose(kept, clean, atol=1e-4) and sorted(record) == [0, 1]
    assert all((f > 0).sum(-1).max() <= 16 for f in record.values())
    # BOS keeps the real MLP outputs (the transcoders never saw it): position 0, which sees only itself, is exact
    from interventions.replacement import bos_positions

    with torch.no_grad():
        alone = model.run_with_hooks(toks, hooks=replacement_hooks(tcs, keep_error=False, real=bos_positions(model, toks)))
    assert torch.allclose(alone[0, 0], clean[0, 0], atol=1e-5) and not torch.allclose(alone[0, 1:], clean[0, 1:], atol=1e-4)


def test_least_squares_map_recovers_a_linear_map():
    from sae_jax.data_init import least_squares_map

    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 32)).astype(np.float32)
    A = rng.normal(size=(32, 24)).astype(np.float32) / 6
    y = x @ A + 3.0 + 0.01 * rng.normal(size=(4000, 24)).astype(np.float32)
    np.testing.assert_allclose(least_squares_map(x, y), A, atol=2e-3)


def test_a_skip_path_started_at_least_squares_is_ahead_at_a_fixed_budget(pair_dir, tmp_path):
    """Same data, seed and 40 steps: a skip path started at the least-squares map explains more of the
    MLP's output than one started at 0 (measured 0.135 vs 0.097 here; the two meet by 300 steps on this
    random tiny MLP, which is near-quadratic; real MLPs: docs/transcoders.md)."""
    ev = {}
    for init in ("lstsq", "zeros"):
        m = train_sae(pair_dir / IN, tmp_path / init, dict(arch="topk", d_sae=256, k=16, skip=True),
                      _tcfg(skip_init=init, steps=40), acts_out=pair_dir / OUT)
        ev[init] = m["explained_variance"]
    assert ev["lstsq"] > ev["zeros"] + 0.02, ev


def test_train_transcoders_defaults_to_skip_paths_and_four_times_the_sae_learning_rate(pair_dir, tmp_path):
    from mechinterp.cli import main as cli
    from sae_jax.config import TrainConfig

    out = tmp_path / "tcs"
    cli(["train-transcoders", "--acts", str(pair_dir), "--layers", "1", "--out", str(out), "--arch", "topk", "--k", "16",
         "--d_sae", "256", "--steps", "30", "--batch", "256", "--eval_tokens", "2000", "--no_progress"])
    w, cfg = load_export(out / "layer_1" / "sae")
    assert "W_skip" in w and cfg["mechinterp"]["lr"] == pytest.approx(4 * TrainConfig().lr_for(256))
    cli(["train-transcoders", "--acts", str(pair_dir), "--layers", "1", "--out", str(tmp_path / "plain"), "--arch", "topk",
         "--k", "16", "--d_sae", "256", "--steps", "150", "--batch", "256", "--eval_tokens", "2000", "--no_progress",
         "--no_skip", "--lr", "3e-3"])
    w, cfg = load_export(tmp_path / "plain" / "layer_1" / "sae")
    assert "W_skip" not in w and cfg["mechinterp"]["lr"] == pytest.approx(3e-3)
