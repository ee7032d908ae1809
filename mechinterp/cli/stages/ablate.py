"""Ablate chosen SAE latents and measure a behaviour, against random ablations of the same size.

    mechinterp ablate --sae DIR --features 12,40 [--eval ioi|ce] [--mode zero|mean] [--n_random 20]
"""

from __future__ import annotations

import json
from pathlib import Path

from mechinterp.cli.flags import build
from mechinterp.cli.runs import claimed, input_name, stage_dir
from mechinterp.cli.stages import config_parser, user_errors


def parser(prog=None):
    from interventions.ablate import AblateConfig

    return config_parser(__doc__, prog, AblateConfig)


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from interventions.ablate import AblateConfig, run_ablation_stage

        cfg = build(AblateConfig, a, out=a.out or str(stage_dir("ablate", input_name(a.sae))))
        with claimed(cfg.out, "ablate", sae=cfg.sae):
            model, sae = cfg.load()
            r = run_ablation_stage(model, sae, cfg)
            print(f"{cfg.eval} metric: clean {r['metric_clean']:.4f}, SAE spliced (no edit) "
                  f"{r['metric_spliced_no_edit']:.4f}, ablating {len(r['features'])} chosen latents ({cfg.mode}) "
                  f"{r['metric_ablated']:.4f}; {cfg.n_random} random ablations {r['random_metric_mean']:.4f} +- "
                  f"{r['random_metric_std']:.4f} ({r['random_fraction_as_extreme']:.0%} as extreme)")
            out = Path(cfg.out)
            out.mkdir(parents=True, exist_ok=True)
            path = out / "ablation.json"
            path.write_text(json.dumps(r, indent=2))
            print(f"wrote {path}")
