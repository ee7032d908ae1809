"""Causal tests of antibody SAE latents (interventions/bio/): patching, ablation, steering, and the
bio-browse / bio-causal commands, on the tiny real sapiens-vh model."""

from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.fixture(scope="module")
def sapiens():
    from extract.models import load_model

    return load_model("sapiens-vh", device="cpu")


def test_patching_is_exact_where_it_must_be(residue_dump, sapiens):
    """The final output at the masked position decides its logits alone: patching it restores exactly
    1, patching the output anywhere else 0; the embeddings at the masked position are the same [MASK]
    in both runs, so patching them restores 0."""
    from interventions.bio.patching import pairs, patch_pair
    from mechinterp.formats.residues import load_residues

    res = load_residues(residue_dump[0])
    found = pairs(res, "CDR3", 6)
    checked = 0
    for clean, corrupted, p in found:
        assert len(clean) == len(corrupted) and clean[p] != corrupted[p]
        r = patch_pair(sapiens, clean, corrupted, p, batch=97)
        if abs(r["clean"] - r["corrupted"]) < 0.5:
            continue  # the tiny model barely tells them apart: the ratio would be noise
        checked += 1
        out = r["restored"][-1]
        assert out[1 + p] == pytest.approx(1.0, abs=1e-4)
        assert np.abs(np.delete(out, 1 + p)).max() < 1e-4
        assert r["restored"][0, 1 + p] == pytest.approx(0.0, abs=1e-4)
    assert checked >= 1
    with pytest.raises(ValueError, match="unknown patching target 'CDR9'"):
        pairs(res, "CDR9", 1)


def test_ablation_removes_exactly_the_latents_contribution(residue_dump, exact_sae, sapiens):
    """With latents = residual dimensions of either sign, removing the positive half leaves min(x, 0):
    the CE rise, over all masked residues, equals a run with the site clamped that way."""
    from interventions.bio import concept_effects as E
    from interventions.bio.alignment import concepts
    from interventions.bio.masked_loss import masked_residue_loss
    from interventions.sae import load_sae
    from mechinterp.formats.residues import load_residues

    sae_dir, _ = exact_sae
    sae, hook = load_sae(sae_dir), "blocks.3.hook_normalized_resid_post"
    res = load_residues(residue_dump[0])
    table = concepts(res, sapiens.tokenizer.get_vocab())
    seqs, index = E.held_out_sequences(res, 6)
    d = sae.W_dec.shape[1]
    r = E.ablation(sapiens, sae, hook, seqs, E.labeller(res, index, table.labels), {"region:CDR3": list(range(d))},
                   {"region:CDR3": 5}, np.arange(2 * d), n_random=2)["region:CDR3"]["masked"]
    clean = masked_residue_loss(sapiens, seqs)
    clamped = masked_residue_loss(sapiens, seqs, hook, lambda x: x.clamp(max=0))
    _, _, labels = E._runs(sapiens, seqs, hook, None, E.labeller(res, index, table.labels), 0.15, 0)
    n_on, n = r["measured_with_concept"], len(labels)
    assert n_on == labels[:, 5].sum() and 0 < n_on < n
    mean_rise = (r["concept_rise"] * n_on + r["elsewhere_rise"] * (n - n_on)) / n
    assert mean_rise == pytest.approx(clamped - clean, rel=1e-4, abs=1e-5)
    assert r["random_rise"] > 0
    # the two random draws are the same d latents (the only other live ones), so their rises agree exactly:
    # no spread, no z; the interval is the point itself and the ratio is to a mean that is not 0
    assert r["random_rise_spread"] == 0.0 and r["n_random"] == 2 and r["z_vs_random"] is None
    assert r["random_rise_interval95"] == [r["random_rise"], r["random_rise"]]
    assert r["outside_random_interval95"] is (r["concept_rise"] != r["random_rise"])
    assert r["ratio_vs_random"] == pytest.approx(r["concept_rise"] / r["random_rise"]) and r["ratio_vs_random_null"] is None


def test_bio_browse_and_bio_causal_commands(exact_sae, capsys):
    from mechinterp.cli.stages import bio_browse, bio_causal

    sae, _ = exact_sae
    bio_browse.main(["--sae", str(sae), "--per_concept", "1", "--n_examples", "3"])
    assert "latents over 20 concepts" in capsys.readouterr().out
    page = sae / "bio_browse" / "residues.html"
    assert page.stat().st_size > 5_000 and (sae / "bio_browse" / "residues.png").exists()
    from interventions.bio.evaluate import load_alignment
    from mechinterp.formats.labels import load_labels

    names, arrays = load_alignment(sae)                  # every latent is named by its best concept
    cdr3 = int(np.argmax(arrays["sae_latents_f1"][:, names.index("region:CDR3")]))
    label = load_labels(sae)["labels"][cdr3]
    best = names[int(np.argmax(arrays["sae_latents_f1"][cdr3]))]
    assert label["kind"] == "concept" and label["label"].startswith(f"{best} (F1 ") and label["concepts"][0][0] == best
    assert "region:CDR3" in [c for c, _ in label["concepts"]]
    assert label["label"] in page.read_text()
    bio_causal.main(["--sae", str(sae), "--target", "CDR3", "--n_pairs", "1", "--concept", "region:CDR3",
                     "--n_random", "1", "--n_sequences", "6", "--alphas", "0", "4", "--device", "cpu"])
    r = json.loads((sae / "bio_causal" / "results.json").read_text())
    assert [p["target"] for p in r["patching"]] == ["CDR3"] and len(r["patching"][0]["pairs"]) == 1
    s = r["steering"]
    assert s["region_latent"]["shift_score"][0] == pytest.approx(s["random_latent"]["shift_score"][0])
    assert s["region_latent"]["shift_score"][1] != pytest.approx(s["region_latent"]["shift_score"][0])
    assert s["region_latent"]["shift_fraction"][0] == 0.0
    assert set(r["ablation"]["region:CDR3"]) == {"latents", "masked", "unmasked"}
    for mode in ("masked", "unmasked"):  # one random draw: no spread, so no z, no interval and no ratio
        m = r["ablation"]["region:CDR3"][mode]
        assert m["n_random"] == 1 and m["z_vs_random"] is None and m["random_rise_interval95"] is None
        assert m["ratio_vs_random"] is None and m["ratio_vs_random_null"].startswith("one random draw has no spread")
    for png in ("patching.png", "effects.png"):
        assert (sae / "bio_causal" / png).stat().st_size > 10_000
    said = capsys.readouterr().out
    assert "ablating" in said and "no ratio: one random draw has no spread to judge it by" in said


def test_bio_causal_refuses_an_sae_not_yet_aligned(tmp_path, capsys):
    from mechinterp.cli.stages import bio_causal

    with pytest.raises(SystemExit) as exit_:
        bio_causal.main(["--sae", str(tmp_path)])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == (f"error: {tmp_path} has no bio_eval/alignment.npz; "
                                               f"run `mechinterp bio-eval --sae {tmp_path}` first")
