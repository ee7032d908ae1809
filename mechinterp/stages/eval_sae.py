"""CE-loss recovered, KL and delta loss of an exported SAE spliced into its model, on the
held-out windows of its activation store; added to the SAE's metrics.json.

    mechinterp eval-sae --sae DIR [--acts STORE] [--n_windows 64] [--device D]
"""

from __future__ import annotations

import json

from mechinterp.flags import build
from mechinterp.stages import config_parser, user_errors


def parser(prog=None):
    from interventions.evaluate import EvalConfig

    return config_parser(__doc__, prog, EvalConfig)


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from interventions.evaluate import EvalConfig, ce_loss_recovered, heldout_tokens, merge_metrics

        cfg = build(EvalConfig, a)
        model, sae = cfg.load()
        windows, first_pos = heldout_tokens(sae, cfg.n_windows, cfg.acts)
        result = ce_loss_recovered(model, sae, windows, first_pos, cfg.batch, progress=True)
        path = merge_metrics(cfg.sae, "ce_loss", result)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}, indent=1))
        print(f"wrote {path}")
