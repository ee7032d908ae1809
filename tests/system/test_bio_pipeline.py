"""`mechinterp bio` (scripts/bio.py) end to end on the tiny setting (sapiens-vh, 120 sequences), a
re-run that skips every complete stage, and notebooks/05_antibody_features.ipynb on that run."""

from __future__ import annotations

import json

import pytest
from conftest import execute_notebook


@pytest.mark.slow  # every stage end to end (in this process: the main job's test runs them as children)
def test_bio_pipeline_then_notebook(tmp_path, monkeypatch, capsys):
    from mechinterp.cli.stages import bio

    run = tmp_path / "runs" / "bio"
    bio.main(["--size", "tiny", "--out", str(run), "--device", "cpu", "--in_process"])
    r = json.loads((run / "report.json").read_text())
    assert [k for k, v in r["stages"].items() if v["status"] == "done"] == ["dump", "sae", "eval", "browse", "causal"]
    assert r["dump"]["model"] == "sapiens-vh" and r["dump"]["n_sequences"] + r["dump"]["rejected"] == 120
    assert r["masked_residue_loss"]["recovered_vs_zero"] > 0.5
    assert set(r["alignment"]["aligned_pairs"]) == {"sae_latents", "residual_dims", "mlp_neurons"}
    cdr3 = r["ablation"]["region:CDR3"]["masked"]  # the tiny SAE's CDR3 latents act on masked CDR3 residues
    assert cdr3["concept_rise"] > cdr3["random_rise"] + 3 * cdr3["random_rise_spread"]
    unmasked = r["ablation"]["region:CDR3"]["unmasked"]  # no ratio to random effects that cancel, and why
    assert (unmasked["ratio_vs_random"] is None) == (unmasked["ratio_vs_random_null"] is not None)
    assert unmasked["n_random"] == 2 and len(unmasked["random_rise_interval95"]) == 2
    page = (run / "report.html").read_text()
    assert page.count("<img") >= 4 and "sae/sae/bio_browse/residues.html" in page
    capsys.readouterr()

    bio.main(["--size", "tiny", "--out", str(run), "--device", "cpu"])
    assert capsys.readouterr().out.count("done already, skipped") == 5

    monkeypatch.setenv("NB05_SIZE", "tiny")
    monkeypatch.setenv("NB05_RUN", str(run))
    text, _ = execute_notebook("05_antibody_features.ipynb", tmp_path)
    assert "masked-residue loss recovered" in text and "CDR3 latents removed" in text


@pytest.mark.slow  # a dump, two SAEs and two alignments in child processes
def test_bio_layers_side_by_side(tmp_path, capsys):
    from mechinterp.cli.stages import bio_layers

    run = tmp_path / "bio_layers"
    bio_layers.main(["--size", "tiny", "--layers", "2,3", "--out", str(run), "--device", "cpu", "--in_process"])
    r = json.loads((run / "results.json").read_text())
    assert r["layers"] == [2, 3] and r["baseline"] == "mlp_neurons" and (run / "layers.png").stat().st_size > 10_000
    for row in r["per_layer"]:  # each layer's row is that layer's own bio-eval
        ev = json.loads((run / f"l{row['layer']}" / "sae" / "bio_eval" / "results.json").read_text())
        assert row["hook"] == f"blocks.{row['layer']}.hook_normalized_resid_post" == ev["hook"]
        assert row["units_aligned"] == ev["units_aligned"] and row["units"]["sae_latents"] == 256
        assert 0 < row["sae_fvu"] < 1
        for c, per in r["per_concept"].items():
            assert per["sae_latents"][str(row["layer"])]["aligned"] == ev["concepts"][c]["sae_latents"]["aligned"]
    fr3 = r["per_concept"]["region:FR3"]
    best = max(("2", "3"), key=lambda L: fr3["mlp_neurons"][L]["best_f1"])
    assert fr3["best_layer"]["mlp_neurons"] == int(best) and fr3["mlp_neurons"][best]["aligned"] > 0
    assert "region:CDR3" in capsys.readouterr().out

    bio_layers.main(["--size", "tiny", "--layers", "2,3", "--out", str(run), "--device", "cpu", "--in_process"])
    assert capsys.readouterr().out.count("done already, skipped") == 5
