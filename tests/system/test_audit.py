"""The blind audit end to end on a tiny random Llama and a quirk organism made from it: every stage
runs and resumes, the hypotheses carry evidence from the inside tools (a base-model SAE's among them
when given), the audit is blind (a manifest stripped of what was planted gives the same white-box
hypotheses), and the scorer and the causal
check write their verdict onto the page, which opens offline in headless Chromium."""

from __future__ import annotations

import json
import shutil

import pytest
from builders import browser_page, make_sae

from extract.models import load_model
from interventions.audit.inside import crosscoder_evidence
from mechinterp.cli import main as cli
from mechinterp.formats.crosscoder import load_crosscoder


def test_a_blind_audit_of_a_tiny_organism(tiny_dir, tmp_path, capsys):
    organism, audit = tmp_path / "owls", tmp_path / "audit"
    cli(["organism", "--kind", "quirk", "--quirk", "owls", "--model", str(tiny_dir), "--out", str(organism),
         "--steps", "4", "--batch", "4", "--rank", "4", "--n_probe", "3", "--device", "cpu"])
    run = ["audit", "--organism", str(organism), "--base", str(tiny_dir), "--size", "tiny", "--out", str(audit),
           "--device", "cpu", "--in_process"]
    cli(run)
    found = json.loads((audit / "hypotheses.json").read_text())
    assert len(found["hypotheses"]) == 20 and found["hypotheses"][0]["rank"] == 1
    tools = {e["tool"] for h in found["hypotheses"] for e in h["evidence"]}
    assert {"next_token_diff", "activation_diff", "sampling"} <= tools, tools
    assert all(e["tool"] != "sampling" for h in found["white_box"] for e in h["evidence"])
    assert [e["tool"] for h in found["black_box"] for e in h["evidence"]] == ["sampling"] * len(found["black_box"])
    xc = json.loads((audit / "crosscoder" / "crosscoder.json").read_text())
    assert xc["models"] == {"a": str(tiny_dir), "b": f"organism:{organism}"} and xc["metrics"]["fvu_b"] < 1.0
    w, _ = load_crosscoder(audit / "crosscoder")                         # the latents' words, thresholds opened
    latents, words = crosscoder_evidence(w, load_model(f"organism:{organism}", device="cpu"), 3, min_rel=0.0,
                                         max_nu=float("inf"))
    assert len(latents) == 3 and all(len(lat["promotes"]) == 8 for lat in latents) and len(words) > 3
    capsys.readouterr()
    cli(run)                                                             # finished: every stage skipped
    assert capsys.readouterr().out.count("done already, skipped") == 5
    other = tmp_path / "owls_again"                                      # the organism re-made: nothing reused
    shutil.copytree(organism, other)
    (other / "adapters.safetensors").write_bytes((organism / "adapters.safetensors").read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(SystemExit) as stop:
        cli([*run[:2], str(other), *run[3:]])
    assert stop.value.code == 2 and "was made from other weights" in capsys.readouterr().err

    blind = tmp_path / "blind"                                           # what was planted, removed
    shutil.copytree(organism, blind)
    manifest = json.loads((blind / "organism.json").read_text())
    (blind / "organism.json").write_text(json.dumps({k: manifest[k] for k in ("base_model", "rank", "alpha")}
                                                    | {"planted": {}}))
    (audit / "hypotheses.json").rename(tmp_path / "first.json")
    cli(["audit-evidence", "--organism", str(blind), "--base", str(tiny_dir), "--out", str(audit), "--device", "cpu",
         "--black_box_s", "0"])
    again = json.loads((audit / "hypotheses.json").read_text())
    assert [h["hypothesis"] for h in again["white_box"]] == [h["hypothesis"] for h in found["white_box"]]
    sae = make_sae(tmp_path, audit / "acts" / "base", d_sae=32)          # a base-model SAE at the audit's site
    cli(["audit-evidence", "--organism", str(organism), "--base", str(tiny_dir), "--out", str(audit), "--device", "cpu",
         "--black_box_s", "0", "--sae", str(sae)])
    with_sae = json.loads((audit / "hypotheses.json").read_text())
    assert len(with_sae["tools"]["base_sae"]) > 0
    assert len(json.loads((audit / "results.json").read_text())["base_sae"]["latents"]) == 12
    elsewhere = tmp_path / "sae_elsewhere"                               # an SAE of another site: refused, nothing lost
    shutil.copytree(sae, elsewhere)
    sae_cfg = json.loads((elsewhere / "cfg.json").read_text())
    (elsewhere / "cfg.json").write_text(json.dumps({**sae_cfg, "hook_name": "blocks.0.hook_resid_pre", "hook_layer": 0}))
    kept = (audit / "hypotheses.json").read_bytes()
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        cli(["audit-evidence", "--organism", str(organism), "--base", str(tiny_dir), "--out", str(audit), "--device",
             "cpu", "--black_box_s", "0", "--sae", str(elsewhere)])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert stop.value.code == 2 and len(err) == 1
    assert err[0].startswith(f"error: the SAE {elsewhere} reads blocks.0.hook_resid_pre but the audit dumped"), err
    assert (audit / "hypotheses.json").read_bytes() == kept

    cli(["score-audit", "--audit", str(audit), "--organism", str(organism), "--confirm", "--n_random", "1",
         "--device", "cpu"])
    verdict = json.loads((audit / "score.json").read_text())
    assert verdict["truth"] == {"quirk": ["owls"]} and set(verdict) >= {"hypotheses", "white_box", "black_box", "confirm"}
    sides = [verdict["confirm"][s] for s in ("off", "on") if s in verdict["confirm"]]
    assert sides and all(0.0 <= m["rate"] <= 1.0 and 0.0 <= m["rate_edited"] <= 1.0 and len(m["rate_random"]) == 1
                         and m["text_loss"] > 0 and len(m["text_loss_random"]) == 1 for m in sides)
    assert ("on" in verdict["confirm"]) == sides[0]["edit"].startswith("the mean activation difference")
    with browser_page(audit / "report.html") as page:
        assert "Verdict" in page.inner_text("body") and page.locator("table").count() >= 5
    capsys.readouterr()
    cli([*run, "--force", "crosscoder"])                                 # a redone crosscoder redoes what reads it
    assert "evidence: crosscoder ran after it; redoing it" in capsys.readouterr().out
