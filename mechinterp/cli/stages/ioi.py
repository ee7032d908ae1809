"""IOI circuit lab: prompt sets, activation and path patching, DLA, circuit report.

    mechinterp ioi [--model smollm2-135m-q4] [--n_prompts 8] [--quick] [--out runs/ioi/<model>]
"""

from __future__ import annotations

from mechinterp.cli.flags import build
from mechinterp.cli.runs import claimed, stage_dir
from mechinterp.cli.stages import config_parser, user_errors
from mechinterp.formats.results import RESULTS


def parser(prog=None):
    from extract.ioi.circuit import IOIConfig

    return config_parser(__doc__, prog, IOIConfig)


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from extract.ioi.circuit import IOIConfig, run_ioi
        from extract.models import load_model

        cfg = build(IOIConfig, a, out=a.out or str(stage_dir("ioi", a.model)))
        out = cfg.out_dir()
        with claimed(out, "ioi", model=cfg.model):
            model = load_model(cfg.model, device=cfg.device)
            print(f"{model}; writing to {out}")
            r = run_ioi(model, cfg, out=out)
    ld = r["logit_diff"]
    dla = r["direct_logit_attribution"]
    pp = r["path_patching"]
    print(f"logit diff IO-S: clean {ld['clean']['mean']:+.3f}  s2_swap {ld['s2_swap']['mean']:+.3f}  "
          f"abc {ld['abc']['mean']:+.3f}")
    print("top DLA heads: " + ", ".join(f"{h['head']} {h['value']:+.2f}" for h in dla["top_positive"][:5]))
    print("top heads by patching z: " + ", ".join(f"{h['head']} {h['value']:+.2f}"
                                                for h in r["activation_patching"]["top_heads_denoising_z"][:5]))
    print(f"name movers {pp['name_movers']}; S-inhibition candidates (path patching to their queries) "
          f"{pp['s_inhibition_candidates']}")
    print("faithfulness: " + ", ".join(f"{k} {v:.2f}" for k, v in r["circuit"]["faithfulness"].items()))
    print(f"wrote {out / RESULTS} and {len(r['files'])} plots in {r['seconds']} s")
