"""The evaluation suite of an exported SAE: core reconstruction and CE-loss recovered (--suite core),
plus sparse probing and first-letter absorption (--suite full); results in the SAE's metrics.json
and its page eval.html.

    mechinterp eval-sae --sae DIR [--suite core|full] [--metrics probing,absorption] [--acts STORE]

A metric already in metrics.json is kept (the suite resumes where it stopped); --rerun recomputes.
"""

from __future__ import annotations

import json

from mechinterp.cli.flags import build
from mechinterp.cli.runs import claimed
from mechinterp.cli.stages import config_parser, user_errors


def parser(prog=None):
    from interventions.evals.suite import SuiteConfig

    return config_parser(__doc__, prog, SuiteConfig)


def _headline(metrics: dict) -> dict:
    pick = {"core": ("explained_variance_typical", "shrinkage", "l0"),
            "ce_loss": ("ce_loss_recovered", "kl_sae", "delta_loss"),
            "absorption": ("mean_absorption_fraction", "mean_full_absorption_rate", "letters_evaluated")}
    out = {f"{s}.{k}": metrics[s].get(k) for s, keys in pick.items() if s in metrics for k in keys}
    for name in ("probing", "probing_saep"):
        if name in metrics:
            out.update({f"{name}.{k}": v for k, v in metrics[name]["mean"].items()})
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from interventions.evals.suite import SuiteConfig, run_suite
        from mechinterp.formats.sae import read_sae_cfg
        from mechinterp.views.sae_pages import write_sae_page

        cfg = build(SuiteConfig, a)
        read_sae_cfg(cfg.sae)  # an SAE export, not a transcoder: before any work
        with claimed(cfg.sae, "eval-sae"):
            metrics = run_suite(cfg)
        print(json.dumps(_headline(metrics), indent=1))
        print(f"wrote {cfg.sae}/metrics.json and {write_sae_page(cfg.sae)}")
