"""The SAE evaluation suite: sparse probing and absorption give known answers on constructed data,
the torch core metrics equal the JAX side's on the same tokens, and the suite, its page and the
comparison page run end to end on SmolLM2 (small settings)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from interventions.evals.absorption import LETTERS, absorption_of_word, main_latents
from interventions.evals.labelled import LabelledSet
from interventions.evals.probing import one_vs_rest, probe_set, top_k_mean_diff
from mechinterp.views.sae_pages import pareto


def _set(n_per_class: int, n_classes: int, rng) -> LabelledSet:
    y = np.repeat(np.arange(n_classes), n_per_class)
    return LabelledSet("toy", [f"c{i}" for i in range(n_classes)], [""] * len(y), y, [""] * len(y), y.copy())


def test_one_vs_rest_is_balanced_and_draws_from_every_other_class():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(5), 40)
    idx = one_vs_rest(y, 2, rng)
    pos, neg = idx[y[idx] == 2], idx[y[idx] != 2]
    assert len(pos) == len(neg) == 40
    assert set(np.unique(y[neg])) == {0, 1, 3, 4}
    assert len(set(idx.tolist())) == len(idx)


def test_sparse_probe_finds_the_one_informative_latent():
    """Latent 7 is the class indicator (plus noise); every raw dimension is noise. The top-1 latent is
    latent 7 for each class of a 2-class set, its probe is perfect, the raw top-1 probe is at chance."""
    rng = np.random.default_rng(0)
    data = _set(100, 2, rng)
    def feats(y):
        z = rng.normal(0, 0.1, (len(y), 64)).astype(np.float32)
        z[:, 7] = y + rng.normal(0, 0.05, len(y))
        return z
    lat = (feats(data.train_y), feats(data.test_y))
    raw = (rng.normal(size=(200, 16)).astype(np.float32), rng.normal(size=(200, 16)).astype(np.float32))
    out = probe_set(data, raw, lat, ks=(1, 2), seed=0)
    assert out["sae_top_1"] == 1.0 and out["sae_top_2"] == 1.0
    assert all(r["sae_top_1_latent"] == 7 for r in out["per_class"].values())
    assert 0.35 < out["llm_top_1"] < 0.65 and 0.3 < out["llm_full"] < 0.7
    assert top_k_mean_diff(lat[0], data.train_y == 1, 1).tolist() == [7]


def test_sae_probes_protocol_ranks_by_normalised_difference_and_picks_c_on_the_last_rows():
    """Latent 3 fires on 5% of the positives with value 40 (raw mean difference 2.0); latent 7 fires
    at 1.0 on every positive (difference 1.0). Unnormalised, latent 3 ranks first; divided by their mean
    nonzero values (40 and 1), latent 7 does, and its one-latent probe is perfect."""
    from interventions.evals.probing_saep import _validation_splits, ranked_by_mean_diff
    from interventions.evals.probing_saep import probe_set as saep_probe_set

    rng = np.random.default_rng(0)
    data = _set(200, 2, rng)
    def feats(y):
        z = np.zeros((len(y), 16), np.float32)
        z[:, 7] = y
        z[np.flatnonzero(y == 1)[::20], 3] = 40.0
        z[:, 10] = np.abs(rng.normal(0, 0.1, len(y)))
        return z
    lat = (feats(data.train_y), feats(data.test_y))
    is_pos = data.train_y == 1
    assert np.argmax(np.abs(lat[0][is_pos].mean(0) - lat[0][~is_pos].mean(0))) == 3
    assert ranked_by_mean_diff(lat[0], is_pos)[0] == 7
    raw = (rng.normal(size=(400, 8)).astype(np.float32), rng.normal(size=(400, 8)).astype(np.float32))
    out = saep_probe_set(data, raw, lat, ks=(1, 2), seed=0)
    assert out["sae_top_1_auc"] == 1.0 and out["sae_top_1"] == 1.0
    assert all(r["sae_top_1_latent"] == 7 for r in out["per_class"].values())
    assert 0.35 < out["llm_full_auc"] < 0.65
    (tr, va), = _validation_splits(np.repeat([0, 1], 200), 0)  # >= 128 rows: the last 20% ...
    assert tr.tolist() == list(range(320)) and va.tolist() == list(range(320, 400))
    (tr, va), = _validation_splits(np.repeat([0, 1], 300), 0)  # ... at most 100
    assert len(tr) == 500 and va.tolist() == list(range(500, 600))
    folds = _validation_splits(np.repeat([0, 1], 30), 0)  # fewer: 6 stratified folds
    assert len(folds) == 6 and all(len(va) == 10 for _, va in folds)


def test_absorption_of_word_known_cases():
    probe = np.eye(8)[0]
    cos = np.array([1.0, 0.9, 0.0, 0.5, 0.05, 0.0])
    x = 2.0 * probe
    # the main latent (0) carries the whole projection: no absorption
    assert absorption_of_word(x, np.array([2.0, 0, 0, 0, 0, 0]), probe, cos, [0]) == (0.0, False)
    # main silent, latent 1 (cos 0.9) carries 0.9 x 2 / 2 = 90% of it: full absorption, fraction 1
    assert absorption_of_word(x, np.array([0, 2.0, 0, 0, 0, 0]), probe, cos, [0]) == (1.0, True)
    # main carries 1.0 of 2.0, latent 3 (cos 0.5) carries 1.0 (>= 40%): fraction 1 / (1 + 1)
    frac, full = absorption_of_word(x, np.array([1.0, 0, 0, 2.0, 0, 0]), probe, cos, [0])
    assert frac == pytest.approx(0.5) and not full
    # the other latent is barely aligned (cos 0.05 < 0.1): not absorption by the fraction's rule,
    # and it carries 0.05 x 2 / 2 = 5% < 40%: not full absorption either
    assert absorption_of_word(x, np.array([0, 0, 0, 0, 2.0, 0]), probe, cos, [0]) == (0.0, False)


def test_main_latents_find_the_letter_latent_and_its_split():
    """Letter a is latent 3; letter b is split across latents 5 (words of one kind) and 9 (the
    rest): k = 2 beats k = 1 by more than the jump threshold, so both are b's main latents."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 200)
    def latents(y):
        z = np.abs(rng.normal(0, 0.05, (len(y), 16)))
        z[y == 0, 3] += 1.0
        half = (y == 1) & (np.arange(len(y)) % 2 == 0)
        z[half, 5] += 1.0
        z[(y == 1) & ~half, 9] += 1.0
        z[y == 2, 12] += 1.0
        return z.astype(np.float32)
    out = main_latents(latents(y), y, latents(y), y, max_k=4)
    assert out[0]["latents"] == [3] and out[0]["f1"] == pytest.approx(1.0)
    assert sorted(out[1]["latents"]) == [5, 9] and out[1]["f1"] == pytest.approx(1.0)


def test_pareto_front():
    pts = [(10, 0.5), (20, 0.7), (30, 0.6), (40, 0.9), (20, 0.4)]
    assert pareto(pts, higher=True) == [0, 1, 3]
    assert pareto(pts, higher=False) == [0, 4]


def test_core_metrics_in_torch_equal_the_jax_side(smollm2, smollm2_sae, smollm2_store):
    """The torch recomputation of the held-out metrics matches sae_jax.metrics.evaluate on the same
    windows (the JAX side reads the fp16 store, torch recomputes fp32 activations live)."""
    from interventions.ce_loss import heldout_tokens
    from interventions.evals.core import reconstruction_metrics
    from interventions.sae import load_sae
    from mechinterp.formats.sae import load_export
    from mechinterp.formats.store import open_store
    from sae_jax.config import SAEConfig
    from sae_jax.metrics import evaluate
    from sae_jax.modules import SAE as JaxSAE

    sae_dir, _ = smollm2_sae
    sae = load_sae(sae_dir)
    windows, first_pos = heldout_tokens(sae, 8)
    torch_m = reconstruction_metrics(smollm2, sae, windows, first_pos, batch=4)

    store = open_store(smollm2_store)
    _, eval_windows = store.split()
    weights, cfg = load_export(sae_dir)
    import jax.numpy as jnp

    scfg = SAEConfig(arch="topk", d_in=cfg["d_in"], d_sae=cfg["d_sae"], k=cfg["k"])
    jsae = JaxSAE(W_enc=jnp.asarray(weights["W_enc"]), b_enc=jnp.asarray(weights["b_enc"]),
                  W_dec=jnp.asarray(weights["W_dec"]), b_dec=jnp.asarray(weights["b_dec"]),
                  log_threshold=jnp.zeros(cfg["d_sae"]), arch="topk")
    (jax_m,), _ = evaluate(jsae, cfg["k"], None, store, eval_windows[:8], 1.0, scfg,
                           max_tokens=torch_m["eval_tokens"], rows=torch_m["eval_tokens"])
    bos_rows = int((~store.not_bos(eval_windows[:8])).sum())
    assert torch_m["eval_tokens"] == jax_m["eval_tokens"] == 8 * (store.meta.ctx - 1) - bos_rows
    for key in ("fvu", "explained_variance_typical", "shrinkage", "rel_error_p50", "rel_error_p90"):
        assert torch_m[key] == pytest.approx(jax_m[key], rel=0.02, abs=2e-3), key
    assert torch_m["l0"] == pytest.approx(jax_m["l0"], abs=0.2)
    assert torch_m["massive_tokens"] == jax_m["massive_tokens"]


def test_full_suite_and_pages_on_smollm2(smollm2, smollm2_sae, tmp_path):
    """--suite full on small settings: every section lands in metrics.json with real numbers, a second
    run keeps them (resume), eval.html and the comparison page are written."""
    import shutil

    from interventions.evals.suite import SuiteConfig, run_suite
    from interventions.sae import load_sae
    from mechinterp.views.sae_pages import write_comparison, write_sae_page

    sae_dir = tmp_path / "sae"
    shutil.copytree(smollm2_sae[0], sae_dir)
    cfg = SuiteConfig(sae=str(sae_dir), suite="full", n_windows=4, n_probe_train=120, n_probe_test=80,
                      absorption_words=600, probe_sets="bios_gender,bios_profession")
    sae = load_sae(sae_dir)
    m = run_suite(cfg, smollm2, sae)
    assert {"core", "ce_loss", "probing", "absorption"} <= set(m)
    assert 0.5 < m["core"]["explained_variance_typical"] <= 1.0 and m["core"]["l0"] == pytest.approx(32, abs=0.5)
    gender = m["probing"]["bios_gender"]
    assert gender["llm_full"] >= 0.9                     # pronouns and names: easy for the raw activations
    assert gender["sae_top_20"] >= 0.8                    # and a few latents carry it
    assert set(m["absorption"]["letters"]) <= set(LETTERS) and m["absorption"]["words"] == 600
    assert 0 < m["absorption"]["probe_f1_mean"] <= 1
    before = json.loads((sae_dir / "metrics.json").read_text())
    run_suite(cfg, smollm2, sae)                          # everything is there: nothing recomputed
    assert json.loads((sae_dir / "metrics.json").read_text()) == before
    from dataclasses import replace
    saep = run_suite(replace(cfg, metrics="probing_saep"), smollm2, sae)["probing_saep"]  # the texts read once
    assert saep["bios_gender"]["llm_full_auc"] >= 0.85 and 0.5 < saep["mean"]["sae_top_16_auc"] <= 1.0  # 0.893 measured
    page = write_sae_page(sae_dir)
    assert "Sparse probing" in page.read_text() and (sae_dir / "probing.png").stat().st_size > 1000
    paths = write_comparison([sae_dir], tmp_path / "compare")
    rows = json.loads(paths["json"].read_text())["saes"]
    assert rows[0]["sparse_probing_top1"] == pytest.approx(m["probing"]["mean"]["sae_top_1"])
    assert torch.isfinite(torch.tensor(rows[0]["explained_variance_typical"]))


def test_pooled_features_equal_pooling_the_token_activations(tiny_model_factory):
    """The chunked, cached pooling (texts split across chunks, read once) equals encoding and pooling
    the site's TokenActs directly."""
    from interventions.evals.probing import pooled_features
    from interventions.sae import TorchSAE
    from interventions.shift.probe import site_activations

    model = tiny_model_factory("llama")
    hook = "blocks.1.hook_resid_pre"
    g = torch.Generator().manual_seed(0)
    w = {"W_enc": torch.randn(64, 96, generator=g), "b_enc": torch.randn(96, generator=g) * 0.1,
         "W_dec": torch.randn(96, 64, generator=g), "b_dec": torch.randn(64, generator=g) * 0.1}
    sae = TorchSAE(w, {"architecture": "topk", "k": 8, "d_in": 64, "d_sae": 96, "hook_name": hook})
    texts = ["a short one", "The committee met on Tuesday to discuss the budget.", "x",
             "Shares rose sharply after the announcement of record profits in the third quarter."] * 3
    raw, lat = pooled_features(model, sae, texts, hook, ctx=12, chunk=20)
    acts = site_activations(model, [model.tokenizer.decode(model.tokenizer(t)["input_ids"][:11]) for t in texts], hook)
    assert np.allclose(raw, acts.pooled().numpy(), atol=2e-2)   # the cache holds fp16 rows
    assert np.allclose(lat, acts.pooled(sae.encode(acts.acts)).numpy(), atol=5e-2)
    raw2, _ = pooled_features(model, sae, texts, hook, ctx=12, chunk=10_000)   # read from the cache
    assert np.array_equal(raw, raw2)


def _evaluated_export(root, name: str, arch: str, l0: float, ev: float, top1: float, absorption: float):
    """An SAE export directory (tiny random weights) with a metrics.json as eval-sae writes it."""
    from safetensors.numpy import save_file

    d = root / name
    d.mkdir(parents=True)
    rng = np.random.default_rng(len(name))
    save_file({"W_enc": rng.normal(size=(8, 16)).astype(np.float32), "b_enc": np.zeros(16, np.float32),
               "W_dec": rng.normal(size=(16, 8)).astype(np.float32), "b_dec": np.zeros(8, np.float32)},
              str(d / "sae_weights.safetensors"))
    (d / "cfg.json").write_text(json.dumps({"architecture": "topk", "k": 4, "d_in": 8, "d_sae": 16,
                                            "mechinterp": {"trained_architecture": arch}}))
    probing = {"bbc_topic": {"sae_top_1": top1, "llm_top_1": 0.6}, "mean": {"sae_top_1": top1, "sae_top_5": top1 + 0.05}}
    (d / "metrics.json").write_text(json.dumps({
        "core": {"l0": l0, "explained_variance_typical": ev, "fvu": 1 - ev, "shrinkage": 0.9},
        "ce_loss": {"ce_loss_recovered": ev + 0.1, "kl_sae": 0.5 - ev / 2}, "probing": probing,
        "absorption": {"mean_absorption_fraction": absorption, "mean_full_absorption_rate": absorption / 3}}))
    return d


def test_comparison_page_in_headless_chromium(tmp_path):
    from builders import browser_page

    from mechinterp.cli import main as cli

    saes = [_evaluated_export(tmp_path, "a", "topk", 32, 0.80, 0.70, 0.10),
            _evaluated_export(tmp_path, "b", "batchtopk", 20, 0.75, 0.72, 0.05),
            _evaluated_export(tmp_path, "c", "jumprelu", 64, 0.78, 0.65, 0.20)]
    cli(["compare-saes", "--saes", *map(str, saes), "--out", str(tmp_path / "cmp")])
    res = json.loads((tmp_path / "cmp" / "results.json").read_text())
    assert [r["architecture"] for r in res["saes"]] == ["topk", "batchtopk", "jumprelu"]
    assert (tmp_path / "cmp" / "pareto.png").stat().st_size > 5000
    with browser_page(tmp_path / "cmp" / "compare.html", 1200, 900) as page:
        plots = page.locator("svg.pareto")
        assert plots.count() == len(res["metrics"]) == 9          # every scalar but ground truth
        for i in range(plots.count()):
            assert plots.nth(i).locator("circle").count() == 3
        # explained variance: a (L0 32, 0.80) beats b (L0 20, 0.75); c (L0 64, 0.78) is dominated
        ev = page.locator("svg[data-metric='explained_variance_typical'] circle")
        fills = {ev.nth(i).locator("title").text_content().split(" (")[0]: ev.nth(i).get_attribute("fill")
                 for i in range(3)}
        assert {Path(k).name: v == "#d62728" for k, v in fills.items()} == {"a": True, "b": True, "c": False}
        # absorption (lower is better): b at the lowest L0 is also the lowest: the front is b alone
        ab = page.locator("svg[data-metric='absorption'] circle[fill='#d62728'] title")
        assert ab.count() == 1 and "/b (batchtopk" in ab.text_content()
        assert page.locator("table tr").count() == 4
