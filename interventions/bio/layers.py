"""Concept alignment layer by layer: bio-eval's results for one SAE per layer, side by side, with the
best layer per concept. Writes OUT/results.json and OUT/layers.png."""

from __future__ import annotations

import json
from pathlib import Path

from mechinterp.formats.reading import read_json
from mechinterp.formats.results import RESULTS
from mechinterp.formats.sae import METRICS


def compare_layers(evals: dict[int, Path], out: Path) -> dict:
    """evals: layer -> that layer's bio_eval/results.json (bio-eval's output)."""
    from mechinterp.views.figures import alignment_by_layer

    runs = {layer: read_json(p, "re-run mechinterp bio-eval on that layer") for layer, p in sorted(evals.items())}
    saes = {layer: read_json(Path(p).parents[1] / METRICS, "re-train that layer's SAE") for layer, p in evals.items()}
    first = next(iter(runs.values()))
    kinds, concepts = list(first["aligned_pairs"]), list(first["concepts"])
    per_layer = [dict(layer=layer, hook=r["hook"], units=r["units"], units_aligned=r["units_aligned"],
                      aligned_pairs=r["aligned_pairs"], concepts_covered=r["concepts_covered"],
                      units_aligned_residue=r["units_aligned_residue"],
                      masked_residue_loss_recovered=r["masked_residue_loss"]["recovered_vs_zero"],
                      sae_fvu=saes[layer]["fvu"])
                 for layer, r in runs.items()]
    per_concept = {}
    for c in concepts:
        row = {kind: {str(layer): {k: r["concepts"][c][kind][k] for k in ("aligned", "best_f1", "aligned_residue")}
                      for layer, r in runs.items()} for kind in kinds}
        # the best layer for a concept: the one whose best unit of that kind has the highest held-out F1
        row["best_layer"] = {kind: int(max(row[kind], key=lambda L: row[kind][L]["best_f1"])) for kind in kinds}
        per_concept[c] = row
    baseline = "mlp_neurons" if "mlp_neurons" in kinds else kinds[-1]
    results = dict(model=first["model"], layers=list(runs), kinds=kinds, baseline=baseline, min_f1=first["min_f1"],
                   per_layer=per_layer, per_concept=per_concept)
    out.mkdir(parents=True, exist_ok=True)
    (out / RESULTS).write_text(json.dumps(results, indent=1))
    alignment_by_layer(results, out / "layers.png")
    return results


def layer_table(results: dict) -> list[str]:
    """Printable lines: per layer, units aligned of each kind and the loss recovered; then per concept,
    SAE latents / MLP neurons aligned per layer and the best layer."""
    kinds = results["kinds"]
    lines = ["layer  " + "  ".join(f"{k:>14}" for k in kinds) + "  loss recovered  SAE FVU"]
    for row in results["per_layer"]:
        lines.append(f"{row['layer']:>5}  " + "  ".join(f"{row['units_aligned'][k]:>7} of {row['units'][k]:<5}"
                                                       for k in kinds)
                     + f"  {row['masked_residue_loss_recovered']:14.3f}  {row['sae_fvu']:7.3f}")
    base = results["baseline"]
    lines.append("concept: aligned SAE latents / " + base.replace("_", " ") + " per layer (best layer by best F1)")
    for c, row in results["per_concept"].items():
        cells = [f"{row['sae_latents'][str(L)]['aligned']}/{row[base][str(L)]['aligned']}" for L in results["layers"]]
        lines.append(f"  {c:<22} " + " ".join(f"{x:>9}" for x in cells) + f"   best {row['best_layer']['sae_latents']}")
    return lines
