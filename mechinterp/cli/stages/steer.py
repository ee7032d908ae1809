"""Steer with one SAE feature: generate with and without alpha x its decoder direction added.

    mechinterp steer --sae DIR --feature N --alpha A --prompt "..." [--max_new_tokens 30] [--out DIR]
"""

from __future__ import annotations

import json
from pathlib import Path

from mechinterp.cli.flags import build
from mechinterp.cli.runs import claimed, input_name, stage_dir
from mechinterp.cli.stages import config_parser, user_errors


def parser(prog=None):
    from interventions.steer import SteerConfig

    return config_parser(__doc__, prog, SteerConfig)


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        import numpy as np

        from interventions.steer import SteerConfig, pick_feature, steer

        cfg = build(SteerConfig, a, out=a.out or str(stage_dir("steer", input_name(a.sae))))
        with claimed(cfg.out, "steer", sae=cfg.sae):
            model, sae = cfg.load()
            if cfg.feature == "auto":
                freq_file = Path(cfg.sae).parent / "frequencies.npy"  # written by the train-sae stage
                feature = pick_feature(model, sae, np.load(freq_file) if freq_file.exists() else None)
            else:
                feature = int(cfg.feature)
            r = steer(model, sae, feature, cfg.alpha, cfg.prompt, cfg.max_new_tokens, cfg.top)
            print(f"feature {r['feature']} at {r['hook']}, alpha {r['alpha']:.1f} (site mean norm {r['site_mean_norm']:.1f})")
            print(f"  clean:   {r['prompt']}|{r['clean']}")
            print(f"  steered: {r['prompt']}|{r['steered']}")
            print("  top tokens of the feature (logit effect): p next token clean -> steered")
            for t in r["top_tokens"]:
                print(f"    {t['token']!r:>16} {t['logit']:+.2f}: {t['p_clean']:.4f} -> {t['p_steered']:.4f}")
            out = Path(cfg.out)
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"steer_f{feature}_a{r['alpha']:.0f}.json"
            path.write_text(json.dumps(r, indent=2))
            print(f"wrote {path}")
