"""Labels on the real model: `mechinterp browse` labels the session's SmolLM2 SAE offline, `mechinterp
label --score` measures them on held-out biographies against the baselines, and the embedded
SmolLM2-135M-Instruct explains and simulates a few latents end to end (its scores are whatever they
are; the test checks they are measured)."""

from __future__ import annotations

import json
import shutil

from mechinterp.cli import main as cli
from mechinterp.formats.labels import labels_path, load_labels


def test_offline_labels_beat_their_baselines_and_an_llm_runs_end_to_end(smollm2_sae, tmp_path):
    sae = tmp_path / "sae"
    shutil.copytree(smollm2_sae[0], sae)                 # labels are written beside the export
    cli(["browse", "--sae", str(sae), "--out", str(tmp_path / "b"), "--top_n", "5", "--per_band", "2"])
    offline = load_labels(sae)
    assert offline["d_sae"] == 2048 and len(offline["labels"]) == 2048 and offline["explainer"] == "offline"
    cli(["label", "--sae", str(sae), "--stats", str(tmp_path / "b"), "--out", str(tmp_path / "l"), "--heldout_tokens", "1024",
         "--explainer", "smollm2-135m-q4", "--llm_latents", "2", "--n_examples", "6", "--min_active", "3"])
    r = json.loads((tmp_path / "l" / "results.json").read_text())
    t = r["table"]
    assert t["offline labels"]["n"] > 100
    assert t["offline labels"]["detection"] > t["same labels, shuffled"]["detection"] + 0.1
    assert t["offline labels"]["detection"] > t["top token only"]["detection"]
    assert abs(t["same labels, shuffled"]["detection"] - 0.5) < 0.05
    llm = [k for k in t if k.startswith("LLM labels, LLM simulator")]
    assert len(llm) == 1 and t[llm[0]]["n"] + r["per_latent"][llm[0]].__len__() >= 2
    theirs = load_labels(labels_path(sae, "smollm2-135m-q4"))["labels"]
    assert len(theirs) == 2 and all(lab["label"] or lab["error"] for lab in theirs)
    assert (tmp_path / "l" / "scores.png").stat().st_size > 5000
