"""interventions/: the exported SAE as a torch hook: loading, checks, splice, edits, steering, ablation, CE."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from interventions.ablate import ablation_study
from interventions.ce_loss import ce_loss_recovered, merge_metrics
from interventions.sae import SAEError, load_sae
from interventions.splice import FeatureEdit, splice_hook, spliced
from interventions.steer import feature_logit_effects, steer

HOOK = "blocks.6.hook_resid_pre"
PROMPT = "When Mary and John went to the store, John gave a drink to"


def write_sae(path, d_in=576, d_sae=256, arch="standard", k=8, model_name="smollm2-135m-q4", hook=HOOK, seed=0):
    g = torch.Generator().manual_seed(seed)
    W_dec = torch.randn(d_sae, d_in, generator=g)
    W_dec /= W_dec.norm(dim=1, keepdim=True)
    w = {"W_enc": W_dec.T.contiguous() * 0.5, "b_enc": torch.randn(d_sae, generator=g) * 0.1,
         "W_dec": W_dec, "b_dec": torch.randn(d_in, generator=g) * 0.1}
    if arch == "jumprelu":
        w["threshold"] = torch.rand(d_sae, generator=g)
    path.mkdir(parents=True, exist_ok=True)
    save_file(w, str(path / "sae_weights.safetensors"))
    cfg = {"architecture": arch, "d_in": d_in, "d_sae": d_sae, "hook_name": hook, "model_name": model_name,
           "apply_b_dec_to_input": True, **({"k": k} if arch == "topk" else {})}
    (path / "cfg.json").write_text(json.dumps(cfg))
    return path


@pytest.mark.parametrize("arch", ["standard", "topk", "jumprelu"])
def test_encode_follows_the_contract(tmp_path, arch):
    sae = load_sae(write_sae(tmp_path / arch, arch=arch))
    x = torch.randn(32, 576)
    pre = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
    f = sae.encode(x)
    if arch == "standard":
        expected = torch.relu(pre)
    elif arch == "topk":
        kth = pre.topk(8, dim=-1).values[:, -1:]
        expected = torch.where(pre >= kth, torch.relu(pre), 0.0)
        assert int((f > 0).sum(-1).max()) <= 8
    else:
        expected = torch.relu(pre) * (pre > sae.threshold)
    assert torch.allclose(f, expected, atol=1e-6)
    assert torch.allclose(sae(x), f @ sae.W_dec + sae.b_dec, atol=1e-5)


def test_bad_exports_are_refused(tmp_path, smollm2):
    with pytest.raises(SAEError, match="not an SAE export"):
        load_sae(tmp_path / "nothing")
    d = write_sae(tmp_path / "wrong_width", d_in=64)
    with pytest.raises(SAEError, match="d_in=64 but blocks.6.hook_resid_pre of smollm2-135m-q4 has width 576"):
        load_sae(d).check_fits(smollm2)
    d = write_sae(tmp_path / "other_model", model_name="gpt2")
    with pytest.raises(SAEError, match="trained on 'gpt2'"):
        load_sae(d).check_fits(smollm2)
    d = write_sae(tmp_path / "bad_hook", hook="blocks.6.hook_resid_middle")
    with pytest.raises(KeyError, match="unknown hook"):
        load_sae(d).check_fits(smollm2)
    d = write_sae(tmp_path / "damaged")
    (d / "sae_weights.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(SAEError, match="cannot read the export"):
        load_sae(d)
    d = write_sae(tmp_path / "cfg_lies")
    cfg = json.loads((d / "cfg.json").read_text())
    (d / "cfg.json").write_text(json.dumps({**cfg, "d_sae": 999}))
    with pytest.raises(SAEError, match="disagree with cfg"):
        load_sae(d)


def test_splice_with_error_term_and_no_edit_leaves_logits_unchanged(tmp_path, smollm2):
    sae = load_sae(write_sae(tmp_path / "s"))
    toks = smollm2.to_tokens(PROMPT)
    with torch.no_grad():
        clean = smollm2(toks)
        kept = smollm2.run_with_hooks(toks, hooks=[splice_hook(sae, keep_error=True)])
        replaced = smollm2.run_with_hooks(toks, hooks=[splice_hook(sae, keep_error=False)])
    assert float((kept - clean).abs().max()) <= 1e-5
    assert float((replaced - clean).abs().max()) > 1e-2  # a random SAE is a bad reconstruction


def test_edits_change_only_what_they_name(tmp_path):
    sae = load_sae(write_sae(tmp_path / "s"))
    x = torch.randn(2, 5, 576)
    f = sae.encode(x)
    live = int(f[0, 1].argmax())
    base = spliced(sae, x, keep_error=True)
    assert torch.equal(base, x)
    zeroed = spliced(sae, x, FeatureEdit(zero=[live]), keep_error=True)
    assert torch.allclose(zeroed - x, -f[..., live, None] * sae.W_dec[live], atol=1e-5)
    scaled = spliced(sae, x, FeatureEdit(scale={live: 3.0}), keep_error=True)
    assert torch.allclose(scaled - x, 2 * f[..., live, None] * sae.W_dec[live], atol=1e-5)
    clamped = spliced(sae, x, FeatureEdit(clamp={live: 10.0}), keep_error=True)
    assert torch.allclose(clamped - x, (10.0 - f[..., live, None]) * sae.W_dec[live], atol=1e-4)
    steered = spliced(sae, x, FeatureEdit(steer={live: 4.0}, positions=slice(2, None)), keep_error=True)
    assert torch.equal(steered[:, :2], x[:, :2])
    assert torch.allclose(steered[:, 2:] - x[:, 2:], 4.0 * sae.W_dec[live].expand(2, 3, -1), atol=1e-5)
    z = torch.randn(2, 5, 9, 64)  # per-head sites are flattened for the SAE and shaped back
    assert spliced(sae, z, FeatureEdit(zero=[live]), keep_error=True).shape == z.shape


def test_steering_moves_the_features_top_tokens(tmp_path, smollm2):
    sae = load_sae(write_sae(tmp_path / "s", hook="blocks.20.hook_resid_post"))
    effects = feature_logit_effects(smollm2, sae, [3], top=5)[0]
    with torch.no_grad():
        logits = smollm2.unembed_directions(sae.W_dec[3:4])[0]
    assert effects["promoted"][0]["logit"] == pytest.approx(float(logits.max()), rel=1e-5)
    r = steer(smollm2, sae, feature=3, alpha=None, prompt="I think that", max_new_tokens=4)
    assert r["alpha"] == pytest.approx(2 * r["site_mean_norm"]) and r["site_mean_norm"] > 50
    assert r["mean_p_top_tokens_steered"] > 5 * r["mean_p_top_tokens_clean"]
    assert r["clean"] != r["steered"]
    with pytest.raises(ValueError, match="feature 300 out of range"):
        steer(smollm2, sae, feature=300, alpha=1.0, prompt="hi", max_new_tokens=4)


def test_ablation_study_against_random_baselines(tmp_path, smollm2):
    sae = load_sae(write_sae(tmp_path / "s"))
    toks = smollm2.to_tokens(PROMPT)
    mary, john = smollm2.to_single_token(" Mary"), smollm2.to_single_token(" John")

    def metric(hooks):
        with torch.no_grad():
            logits = smollm2.run_with_hooks(toks, hooks=hooks)[0, -1]
        return float(logits[mary] - logits[john])
    with torch.no_grad():
        _, cache = smollm2.run_with_cache(toks, names=[HOOK])
    f = sae.encode(cache[HOOK][0, 1:])
    strongest = f.sum(0).topk(20).indices.tolist()
    r = ablation_study(sae, strongest, metric, alive=(f > 0).any(0), n_random=5, first_pos=1)
    assert r["metric_spliced_no_edit"] == pytest.approx(r["metric_clean"], abs=1e-4)
    assert r["metric_ablated"] != pytest.approx(r["metric_clean"], abs=1e-3)
    assert len(r["random_metrics"]) == 5 and not set(strongest) & set(r["features"]) - set(strongest)
    with pytest.raises(ValueError, match="out of range"):
        ablation_study(sae, [999], metric)


def test_ce_loss_recovered_bounds_and_metrics_merge(tmp_path, smollm2):
    sae = load_sae(write_sae(tmp_path / "s"))
    windows = smollm2.to_tokens([PROMPT, PROMPT.replace("Mary", "Anna")]).numpy()
    r = ce_loss_recovered(smollm2, sae, windows, first_pos=1, batch=2)
    assert r["ce_zero_ablation"] > r["ce_clean"] and r["ce_mean_ablation"] > r["ce_clean"]
    assert r["kl_sae"] > 0 and r["delta_loss"] == pytest.approx(r["ce_sae"] - r["ce_clean"])
    expected = (r["ce_zero_ablation"] - r["ce_sae"]) / (r["ce_zero_ablation"] - r["ce_clean"])
    assert r["ce_loss_recovered"] == pytest.approx(expected)
    (tmp_path / "s" / "metrics.json").write_text(json.dumps({"fvu": 0.2}))
    merge_metrics(tmp_path / "s", "ce_loss", r)
    merged = json.loads((tmp_path / "s" / "metrics.json").read_text())
    assert merged["fvu"] == 0.2 and merged["ce_loss"]["ce_sae"] == pytest.approx(r["ce_sae"])
    with pytest.raises(ValueError, match="no evaluation windows"):
        ce_loss_recovered(smollm2, sae, np.zeros((0, 8), np.int64))
