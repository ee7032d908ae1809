"""SHIFT on the real default model with an SAE trained by the tests' fixture (one per session).

The SAE is the session fixture of conftest.py (a store at the probe's hook, blocks.4.hook_resid_pre,
from synthetic training-split biographies, and a topk SAE trained on it). Everything is seeded;
the margins asserted below are well inside what these seeds give.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import execute_notebook, run_script

HOOK = "blocks.4.hook_resid_pre"


@pytest.fixture(scope="session")
def shift_sae(smollm2_sae) -> Path:
    """The session SAE of conftest.py: topk, k 32, 2048 latents at blocks.4.hook_resid_pre of
    smollm2-135m-q4, trained on ~48k tokens of synthetic biographies."""
    return smollm2_sae[0]


@pytest.fixture(scope="module")
def shift_result(smollm2, shift_sae):
    from interventions.sae import load_sae
    from interventions.shift.config import ShiftConfig
    from interventions.shift.experiment import run_shift

    cfg = ShiftConfig(layer=4, sae=str(shift_sae), n_ambiguous=256, n_balanced=256, n_gender_only=128, n_random=10,
                      seed=0)
    return run_shift(cfg, model=smollm2, sae=load_sae(shift_sae))


def test_probe_leans_on_gender(shift_result):
    orig = shift_result.row("original probe")
    oracle = shift_result.row("oracle probe (balanced training set)")
    assert orig["gender_acc"] >= 0.7, orig  # far above chance (0.5)
    assert orig["worst_group_acc"] <= 0.6, orig
    assert oracle["profession_acc"] >= 0.85 and abs(oracle["gender_acc"] - 0.5) < 0.1, oracle
    assert shift_result.data["probe_train_acc"] >= 0.95


def test_selected_latents_are_gender_features(shift_result):
    sel = shift_result.selection
    assert sel.method == "auto" and len(sel.features) >= 3
    chosen = [c for c in sel.candidates if c["chosen"]]
    assert all(max(c["gender_auc"], 1 - c["gender_auc"]) >= 0.8 for c in chosen)
    tokens = {t.strip() for c in chosen for t in c["top_tokens"]}
    assert tokens & {"he", "He", "she", "She", "her", "Her", "his", "His"}, tokens


def test_shift_removes_gender_reliance_better_than_random(shift_result):
    orig = shift_result.row("original probe")
    k = len(shift_result.selection.features)
    rand = shift_result.row(f"random latents x{k} (zero, mean of 10)")
    for name in ("SHIFT (zero ablation)", "SHIFT (mean ablation)"):
        shift = shift_result.row(name)
        assert shift["gender_acc"] <= orig["gender_acc"] - 0.06, (name, shift, orig)
        assert shift["worst_group_acc"] >= orig["worst_group_acc"] + 0.1, (name, shift, orig)
        assert shift["gender_acc"] <= rand["gender_acc"] - 0.06, (name, shift, rand)
        assert shift["worst_group_acc"] >= rand["worst_group_acc"] + 0.1, (name, shift, rand)
    # random ablations of the same size leave the probe about where it was
    assert abs(rand["gender_acc"] - orig["gender_acc"]) < 0.05


def test_pooled_shortcut_equals_the_splice_hook(shift_result, smollm2, shift_sae):
    """The exact pooled-ablation shortcut agrees with splicing the edit into the forward pass."""
    from extract.biographies import BiosConfig, make_splits
    from interventions.sae import load_sae
    from interventions.shift.featurizer import Edit, Featurizer
    from interventions.shift.probe import pool, site_activations
    from interventions.splice import FeatureEdit, splice_hook

    sae = load_sae(shift_sae)
    sets = {k: v.subset(range(6)) for k, v in make_splits(BiosConfig(n_ambiguous=8, n_balanced=8,
                                                                      n_gender_only=8)).items()}
    feat = Featurizer(smollm2, sae, HOOK, sets)
    latents = shift_result.selection.features[:4]
    fast = feat.pooled("balanced", Edit(latents, mode="mean"))
    feat.same_site = False  # force the re-run path: the model runs with the splice hook
    feat._cache.clear()
    slow = feat.pooled("balanced", Edit(latents, mode="mean"))
    assert torch.allclose(fast, slow, atol=2e-3, rtol=1e-3), (fast - slow).abs().max()
    # and the re-run path is the existing splice hook
    acts = site_activations(smollm2, sets["balanced"].texts, HOOK)
    edit = FeatureEdit(zero=latents, positions=slice(1, None))
    _, cache = smollm2.run_with_cache(acts.tokens[:1, :int(acts.mask[0].sum()) + 1], names=[HOOK],
                                      stop_at_layer=5, hooks=[splice_hook(sae, edit, keep_error=True)])
    x = pool(cache[HOOK].float(), acts.mask[:1, :cache[HOOK].shape[1]])
    feat.same_site = True
    feat._cache.clear()
    assert torch.allclose(feat.pooled("balanced", Edit(latents))[:1], x, atol=2e-3, rtol=1e-3)


def test_closed_form_attribution_equals_autograd(smollm2, shift_sae):
    from extract.biographies import BiosConfig, make_splits
    from interventions.sae import load_sae
    from interventions.shift.attribution import attribution_autograd, attribution_same_site
    from interventions.shift.latents import latent_stats
    from interventions.shift.probe import site_activations, train_probe

    sae = load_sae(shift_sae)
    amb = make_splits(BiosConfig(n_ambiguous=8, n_balanced=4, n_gender_only=4))["ambiguous"]
    acts = site_activations(smollm2, amb.texts, HOOK)
    probe = train_probe(acts.pooled(), amb.prof, steps=50)
    a = attribution_same_site(sae, probe, acts, latent_stats(sae, acts), amb.prof)
    b = attribution_autograd(smollm2, sae, probe, HOOK, amb.texts, amb.prof, batch=4)
    assert torch.allclose(a.latents, b.latents, atol=1e-3, rtol=1e-3)
    assert abs(a.error - b.error) < 1e-3 * max(1.0, abs(a.error))
    assert torch.allclose(a.neurons, b.neurons, atol=1e-3, rtol=1e-3)


def test_outputs_and_script(shift_result, tmp_path, shift_sae):
    from interventions.shift.outputs import write_outputs

    paths = write_outputs(shift_result, tmp_path / "out")
    table = paths["table"].read_text()
    for row in ("original probe", "SHIFT (zero ablation)", "SHIFT + retrain (zero)", "random latents",
                "neuron skyline", "oracle probe"):
        assert row in table
    res = json.loads(paths["json"].read_text())
    assert {"rows", "selection", "attribution"} <= set(res) and res["attribution"]["error_node"] is not None
    assert paths["plot"].stat().st_size > 5000
    latents = json.loads(paths["latents"].read_text())
    assert latents[0]["top_examples"] and "[[" in latents[0]["top_examples"][0]["context"]
    # a feature beyond the SAE's width: one line, exit 2 (the other bad inputs: tests/system/test_bad_inputs.py)
    r = run_script("scripts/shift.py", "--sae", str(shift_sae), "--features", "99999", "--out", str(tmp_path / "s"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "out of range" in r.stderr, r.stderr


def test_markdown_table_holds_every_row(shift_result):
    from interventions.shift.outputs import markdown_table

    table = markdown_table(shift_result)
    body = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| row")]
    assert len(body) == len(shift_result.rows)
    for line, r in zip(body, shift_result.rows):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == r["row"] and int(cells[1]) == r["n_ablated"]
        half_unit = 5e-4 + 1e-9  # the table shows 3 decimals
        assert float(cells[2].split(" ")[0]) == pytest.approx(r["profession_acc"], abs=half_unit)
        assert float(cells[4].split(" ")[0]) == pytest.approx(r["worst_group_acc"], abs=half_unit)


def test_notebook_03_shift_executes(shift_sae, monkeypatch, tmp_path):
    """notebooks/03_shift.ipynb runs top to bottom, on this session's SAE (passed as $SHIFT_SAE)."""
    monkeypatch.setenv("SHIFT_SAE", str(shift_sae))
    outputs, _ = execute_notebook("03_shift.ipynb", tmp_path)
    assert "SHIFT done:" in outputs and "worst group" in outputs
