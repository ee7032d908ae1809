"""The replacement model: a transcoder set spliced into its model in place of the MLPs (torch);
CE-loss recovered with every layer replaced at once (no error terms) and with each layer alone.

    mechinterp eval-transcoders --set runs/transcoders [--n_windows 32]
Writes SET/replacement.json (with the layers replaced and those the set lacks) and
SET/ce_recovered_by_layer.png. A set that lacks layers of its model is measured with the layers it
has, after one warning line that names the others.
"""

from __future__ import annotations

import json
import sys

from mechinterp.cli.flags import build
from mechinterp.cli.runs import under_runs
from mechinterp.cli.stages import config_parser, user_errors


def parser(prog=None):
    from interventions.replacement import ReplacementEval

    return config_parser(__doc__, prog, ReplacementEval)


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from pathlib import Path

        from extract.models import load_model
        from interventions.ce_loss import heldout_tokens
        from interventions.replacement import ReplacementEval, load_transcoders, replacement_ce, write_replacement_metrics
        from mechinterp.formats.transcoder_set import set_layers
        from mechinterp.views.figures import by_layer

        cfg = build(ReplacementEval, a, set=a.set or under_runs("transcoders"))
        tcs = load_transcoders(cfg.set)
        first = tcs[min(tcs)]
        model = load_model(first.model_name, device=cfg.device)
        tcs = {L: tc.to(model.device) for L, tc in tcs.items()}
        status = set_layers(cfg.set, model.n_layers)
        lacking = [L for L in range(model.n_layers) if L not in tcs]
        if lacking:
            print(f"warning: {cfg.set} has no transcoder for layer(s) {', '.join(map(str, lacking))} of "
                  f"{model.name} ({model.n_layers} layers); 'all replaced' below replaces layer(s) "
                  f"{', '.join(map(str, sorted(tcs)))} only; train the others with "
                  f"`mechinterp train-transcoders --layers {','.join(map(str, lacking))}`", file=sys.stderr)
        windows, _ = heldout_tokens(first, cfg.n_windows)
        result = replacement_ce(model, tcs, windows, cfg.batch, cfg.per_layer, cfg.progress)
        result["layers"] = dict(replaced=sorted(tcs), **status)
        path = write_replacement_metrics(cfg.set, result)
        if cfg.per_layer:
            rows = result["per_layer"]
            by_layer([r["layer"] for r in rows], {"CE-loss recovered": [r["ce_loss_recovered"] for r in rows]},
                     Path(cfg.set) / "ce_recovered_by_layer.png", "CE-loss recovered (this layer alone)",
                     f"all {len(tcs)} of {model.n_layers} replaced at once: {result['ce_loss_recovered']:.3f}")
        print(json.dumps({k: result[k] for k in ("ce_clean", "ce_all_replaced", "ce_all_zeroed", "ce_loss_recovered")}))
        print(f"wrote {path}")
