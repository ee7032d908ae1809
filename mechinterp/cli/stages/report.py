"""One self-contained report of a `mechinterp demo` run: report.html (figures inlined) + report.json.

Reads only what the stages wrote under the run directory; imports neither torch nor jax.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from mechinterp.formats.results import RESULTS
from mechinterp.formats.sae import METRICS
from mechinterp.formats.store import META_FILE
from mechinterp.formats.transcoder_set import SUMMARY
from mechinterp.views.html import img, load_json, page, table


def headline(run: Path) -> dict:
    """Every headline number of the run, read from the stages' own outputs."""
    out: dict = {"run": str(run)}
    ioi = load_json(run / "ioi" / RESULTS)
    if ioi:
        out["ioi"] = {"logit_diff_clean": ioi["logit_diff"]["clean"]["mean"],
                      "logit_diff_s2_swap": ioi["logit_diff"]["s2_swap"]["mean"],
                      "top_dla_heads": [h["head"] for h in ioi["direct_logit_attribution"]["top_positive"][:5]],
                      "name_movers": ioi["path_patching"]["name_movers"],
                      "s_inhibition_candidates": ioi["path_patching"]["s_inhibition_candidates"],
                      "faithfulness": ioi["circuit"]["faithfulness"]}
    meta = load_json(run / "acts" / META_FILE)
    if meta:
        out["dump"] = {"hook": meta["hook"], "rows": meta["stats"].get("n_rows"), "d_model": meta["d_model"],
                       "mean_norm": meta["stats"].get("mean_norm"), "complete": meta["complete"]}
    sae = load_json(run / "sae" / "sae" / METRICS)
    if sae:
        out["sae"] = {k: sae.get(k) for k in ("fvu", "explained_variance", "l0", "dead", "dense", "train_tokens")}
        if "ce_loss" in sae:
            out["sae"].update({k: sae["ce_loss"][k] for k in ("ce_loss_recovered", "kl_sae", "delta_loss",
                                                              "ce_clean", "ce_sae")})
    labels = load_json(run / "labels" / RESULTS)
    if labels:
        out["labels"] = {name: {k: row[k] for k in ("n", "detection", "fuzzing", "acc14")} for name, row in labels["table"].items()}
    shift = load_json(run / "shift" / RESULTS)
    if shift:
        out["shift"] = {r["row"]: {k: r[k] for k in ("profession_acc", "gender_acc", "worst_group_acc")}
                        for r in shift["rows"]}
    steer = next(iter(sorted((run / "steer").glob("steer_*.json"))), None) if (run / "steer").exists() else None
    if steer:
        s = load_json(steer)
        out["steer"] = {k: s[k] for k in ("feature", "alpha", "mean_p_top_tokens_clean", "mean_p_top_tokens_steered")}
    ablate = load_json(run / "ablate" / "ablation.json")
    if ablate:
        out["ablate"] = {k: ablate[k] for k in ("features", "metric_clean", "metric_ablated", "random_metric_mean",
                                                "random_fraction_as_extreme")}
    tcs = load_json(run / "transcoders" / SUMMARY)
    if tcs:
        out["transcoders"] = {"layers": len(tcs["layers"]), "mean_fvu": tcs["mean_fvu"], "worst_fvu": tcs["worst_fvu"]}
    circuit = load_json(run / "circuit" / RESULTS)
    if circuit:
        out["circuit"] = {m: {"cpr": round(c["cpr"], 3), "cmd": round(c["cmd"], 3), "score_seconds": c["score_seconds"]}
                          for m, c in circuit["methods"].items()}
        out["circuit"]["chosen"] = {k: circuit["chosen"][k] for k in ("method", "edges", "edge_fraction", "faithfulness",
                                                                      "heldout") if k in circuit["chosen"]}
    trace = load_json(run / "trace" / RESULTS)
    if trace:
        out["trace"] = {"prompt": trace["prompt"], "top_logit": trace["top_logits"][0], "answered": trace["answered"],
                        **trace["scores"], "pruned_features": trace["pruned"]["features"],
                        "max_abs_residual": trace["exactness"]["max_abs_residual"], "graph_seconds": trace["graph_seconds"]}
    return out


def write_report(run: str | Path, stages: dict) -> tuple[Path, Path]:
    run = Path(run)
    numbers = headline(run)
    numbers["stages"] = stages
    (run / "report.json").write_text(json.dumps(numbers, indent=2))

    parts = [f"<h1>mechinterp-from-scratch: {html.escape(run.name)}</h1>",
             table([{"stage": k, "seconds": v.get("seconds"), "status": v.get("status")} for k, v in stages.items()])]
    smoke = run / "smoke.txt"
    if smoke.exists():
        parts += ["<h2>0. Smoke</h2>", f"<pre>{html.escape(smoke.read_text())}</pre>"]
    if "ioi" in numbers:
        n = numbers["ioi"]
        parts += ["<h2>1. IOI circuit</h2>",
                  f"<p>Logit difference IO - S: clean {n['logit_diff_clean']:+.3f}, S2-swap {n['logit_diff_s2_swap']:+.3f}. "
                  f"Name movers (top DLA) {', '.join(n['name_movers'])}; S-inhibition candidates "
                  f"{', '.join(n['s_inhibition_candidates'])}.</p>",
                  table([{"heads kept": k, "faithfulness": v} for k, v in n["faithfulness"].items()]),
                  img(run / "ioi" / "patch_resid_pre.png", "activation patching, residual stream"),
                  img(run / "ioi" / "patch_head_z.png", "activation patching, each head's output"),
                  img(run / "ioi" / "dla_heads.png", "direct logit attribution per head"),
                  '<p><a href="ioi/heatmaps.html">interactive heatmaps</a></p>']
    if "dump" in numbers:
        parts += ["<h2>2. Activation dump</h2>", table([numbers["dump"]])]
    if "sae" in numbers:
        parts += ["<h2>3. Sparse autoencoder (JAX)</h2>", table([numbers["sae"]]),
                  img(run / "sae" / "curves.png", "training curves"),
                  img(run / "sae" / "frequencies.png", "latent activation frequencies")]
    if (run / "browser" / "index.html").exists():
        parts += ["<h2>4. Feature browser</h2>", '<p><a href="browser/index.html">open the feature browser</a> '
                  "(every latent is labelled; search the labels)</p>"]
    if "labels" in numbers:
        parts += ["<h3>Labels, scored on held-out text</h3>",
                  "<p>Detection: balanced accuracy of telling excerpts where a latent fires from excerpts where it "
                  "does not, reading only its label; fuzzing: the same per token (docs/labels.md).</p>",
                  table([{"labels": k, **v} for k, v in numbers["labels"].items()]),
                  img(run / "labels" / "scores.png", "detection per latent")]
    if "shift" in numbers:
        parts += ["<h2>5. SHIFT: ablating spurious features</h2>",
                  table([{"row": k, **v} for k, v in numbers["shift"].items()]),
                  img(run / "shift" / "shift.png", "SHIFT accuracies")]
    if "steer" in numbers:
        s = load_json(next(iter(sorted((run / "steer").glob("steer_*.json")))))
        parts += ["<h2>6. Steering and ablation</h2>",
                  f"<p>Feature {s['feature']} at {html.escape(s['hook'])}, alpha {s['alpha']:.1f}.</p>",
                  f"<pre>clean:   {html.escape(s['prompt'] + '|' + s['clean'])}\n"
                  f"steered: {html.escape(s['prompt'] + '|' + s['steered'])}</pre>",
                  table([{k: t[k] for k in ("token", "logit", "p_clean", "p_steered")} for t in s["top_tokens"]])]
    if "ablate" in numbers:
        parts += [table([numbers["ablate"]])]
    if "circuit" in numbers:
        c = dict(numbers["circuit"])
        ch = c.pop("chosen")
        parts += ["<h2>6b. IOI circuit, edge by edge</h2>",
                  f"<p>The smallest {ch['method']} circuit reaching the goal: {ch['edges']} edges "
                  f"({ch['edge_fraction']:.2%}), faithfulness {ch['faithfulness']:.2f}"
                  + (f", {ch['heldout']:.2f} on held-out templates and names" if "heldout" in ch else "") + ".</p>",
                  table([{"method": m, **v} for m, v in c.items()]),
                  img(run / "circuit" / "faithfulness.png", "faithfulness curves"),
                  '<p><a href="circuit/circuit.html">the circuit, interactive</a></p>',
                  img(run / "circuit" / "circuit.png", "the circuit's strongest edges")]
    if "transcoders" in numbers:
        parts += ["<h2>7. Transcoders for every layer (JAX)</h2>", table([numbers["transcoders"]]),
                  img(run / "transcoders" / "fvu_by_layer.png", "held-out FVU of each layer's MLP output")]
    if "trace" in numbers:
        parts += ["<h2>8. Attribution graph</h2>", table([numbers["trace"]]),
                  '<p><a href="trace/graph.html">open the attribution graph</a></p>',
                  img(run / "trace" / "graph.png", "the pruned attribution graph"),
                  img(run / "trace" / "interventions.png", "the graph's predictions against interventions")]
    (run / "report.html").write_text(page(parts))
    return run / "report.html", run / "report.json"
