"""One self-contained report of a `mechinterp bio` run: report.html (figures inlined) + report.json.
Reads only what the stages wrote; imports neither torch nor jax."""

from __future__ import annotations

import html
import json
from pathlib import Path

from mechinterp.formats.residues import JSON
from mechinterp.formats.results import RESULTS
from mechinterp.formats.sae import METRICS
from mechinterp.views.html import img, load_json, page, table

ABLATION_KEYS = ("concept_rise", "elsewhere_rise", "random_rise", "random_rise_spread", "n_random",
                 "random_rise_interval95", "z_vs_random", "ratio_vs_random", "ratio_vs_random_null")
"""Per concept and mode, from bio-causal's results.json: ratio_vs_random is null (and
ratio_vs_random_null says why) where the random draws' mean cannot be told from 0."""


def bio_headline(run: Path) -> dict:
    sae_dir = run / "sae" / "sae"
    out: dict = {"run": str(run)}
    dump = load_json(run / "acts" / JSON)
    if dump:
        out["dump"] = {k: dump[k] for k in ("model", "sequences", "n_sequences", "rejected", "heldout", "rows")}
    sae = load_json(sae_dir / METRICS)
    if sae:
        out["sae"] = {k: sae.get(k) for k in ("fvu", "l0", "dead", "dense", "train_tokens")}
    ev = load_json(sae_dir / "bio_eval" / RESULTS)
    if ev:
        out["alignment"] = {"aligned_pairs": ev["aligned_pairs"], "concepts_covered": ev["concepts_covered"],
                            "aligned_pairs_residue": ev["aligned_pairs_residue"],
                            "concepts_covered_residue": ev["concepts_covered_residue"],
                            "units_aligned": ev["units_aligned"], "units_aligned_residue": ev["units_aligned_residue"]}
        out["masked_residue_loss"] = ev["masked_residue_loss"]
    causal = load_json(sae_dir / "bio_causal" / RESULTS)
    if causal:
        out["ablation"] = {c: {mode: {k: e[mode].get(k) for k in ABLATION_KEYS} for mode in ("masked", "unmasked")
                               if mode in e} for c, e in causal["ablation"].items()}
        out["steering"] = causal["steering"]
    return out


def write_bio_report(run: str | Path, stages: dict) -> tuple[Path, Path]:
    run = Path(run)
    sae_dir = run / "sae" / "sae"
    numbers = bio_headline(run)
    numbers["stages"] = stages
    (run / "report.json").write_text(json.dumps(numbers, indent=2))
    parts = [f"<h1>Antibody language model: {html.escape(run.name)}</h1>",
             table([{"stage": k, "seconds": v.get("seconds"), "status": v.get("status")} for k, v in stages.items()])]
    if "dump" in numbers:
        parts += ["<h2>1. Residue dump</h2>", table([numbers["dump"]])]
    if "sae" in numbers:
        parts += ["<h2>2. Sparse autoencoder (JAX)</h2>", table([numbers["sae"]]),
                  img(run / "sae" / "curves.png", "training curves")]
    ev = load_json(sae_dir / "bio_eval" / RESULTS)
    if ev:
        loss = ev["masked_residue_loss"]
        rows = [{"concept": c, "held-out positives": r["heldout_positives"],
                 **{f"{k} aligned": r[k]["aligned"] for k in ev["aligned_pairs"]},
                 **{f"{k} best F1": r[k]["best_f1"] for k in ev["aligned_pairs"]}} for c, r in ev["concepts"].items()]
        parts += ["<h2>3. Concept alignment and masked-residue loss recovered</h2>",
                  f"<p>Masked-residue loss recovered {loss['recovered_vs_zero']:.3f} vs zeroing "
                  f"({loss['recovered_vs_mean']:.3f} vs mean ablation): clean {loss['loss_clean']:.3f}, "
                  f"SAE {loss['loss_sae']:.3f}, zeroed {loss['loss_zero']:.3f}.</p>",
                  "<p>Units aligned (held-out F1 &ge; " + f"{ev['min_f1']}" + ", InterPLM's recall: a region or chain "
                  "instance is found when the unit fires on any of its residues):</p>",
                  table([{"units": k, "aligned pairs": v, "concepts covered": ev["concepts_covered"][k],
                           "units aligned": ev["units_aligned"][k],
                           "aligned pairs, per-residue F1": ev["aligned_pairs_residue"][k],
                           "units aligned, per-residue F1": ev["units_aligned_residue"][k]}
                          for k, v in ev["aligned_pairs"].items()]),
                  table(rows), img(sae_dir / "bio_eval" / "alignment.png", "units aligned per concept")]
    if (sae_dir / "bio_browse" / "residues.html").exists():
        parts += ["<h2>4. Residue browser</h2>",
                  '<p><a href="sae/sae/bio_browse/residues.html">open the residue browser</a></p>',
                  img(sae_dir / "bio_browse" / "residues.png", "concept latents on their top sequences")]
    causal = load_json(sae_dir / "bio_causal" / RESULTS)
    if causal:
        parts += ["<h2>5. Causal tests</h2>",
                  table([{"concept": c, "residues": mode, "latents": len(e["latents"]),
                           **{k: e[mode].get(k) for k in ABLATION_KEYS}}
                          for c, e in causal["ablation"].items() for mode in ("masked", "unmasked") if mode in e]),
                  img(sae_dir / "bio_causal" / "effects.png", "ablation against random latents; steering"),
                  img(sae_dir / "bio_causal" / "patching.png", "activation patching of masked residues")]
    (run / "report.html").write_text(page(parts, f"mechinterp bio: {run.name}"))
    return run / "report.html", run / "report.json"
