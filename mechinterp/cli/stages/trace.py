"""Trace one prompt through a transcoder set: its attribution graph (features, errors, tokens,
logits; exact direct effects), pruned, checked by ablations in the real model, drawn and browsable.

    mechinterp trace --set runs/transcoders --prompt "When Mary and John went to the store, John gave a drink to" --answer " Mary"
Writes OUT/graph.html (open it from disk), graph.png, interventions.png, results.json and the full graph
(graph.npz, graph.json). A finished graph of the same prompt, set and settings is reused.
"""

from __future__ import annotations

import json

from mechinterp.cli.flags import build
from mechinterp.cli.runs import claimed, stage_dir, text_dir_name, under_runs
from mechinterp.cli.stages import config_parser, user_errors


def parser(prog=None):
    from interventions.attribution.trace import TraceConfig

    return config_parser(__doc__, prog, TraceConfig)


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from interventions.attribution.trace import TraceConfig, trace

        set_dir = a.set or under_runs("transcoders")
        cfg = build(TraceConfig, a, out=a.out or str(stage_dir("trace", text_dir_name(a.prompt, set_dir))), set=set_dir)
        with claimed(cfg.out, "trace", set=cfg.set, prompt=cfg.prompt):
            r = trace(cfg)
        print(json.dumps({"top_logits": r["top_logits"][:3], **r["scores"], "pruned_features": r["pruned"]["features"],
                          "max_abs_residual": r["exactness"]["max_abs_residual"], "graph_seconds": r["graph_seconds"],
                          "ablation_pearson_linear_vs_frozen": r["interventions"]["linear_vs_measured_frozen"]["pearson"],
                          "ablation_pearson_linear_vs_live": r["interventions"]["linear_vs_measured"]["pearson"]}))
        print(f"wrote {cfg.out_dir()}/graph.html")
