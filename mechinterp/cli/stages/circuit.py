"""Edge-level circuit discovery: EAP-IG, EAP, node patching and ACDC, each scored by the faithfulness
of its top edges (exact edge patching), with MIB's CPR and CMD; the chosen circuit on held-out prompts.

    mechinterp circuit [--task ioi] [--methods eap_ig,eap,nodes,acdc] [--n_prompts 32] [--out runs/circuits/<model>/<task>]
"""

from __future__ import annotations

from mechinterp.cli.flags import build
from mechinterp.cli.runs import claimed, stage_dir
from mechinterp.cli.stages import config_parser, user_errors
from mechinterp.formats.results import RESULTS


def parser(prog=None):
    from extract.circuits.discover import CircuitConfig

    return config_parser(__doc__, prog, CircuitConfig)


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from extract.circuits.discover import CircuitConfig, discover
        from extract.models import load_model

        cfg = build(CircuitConfig, a, out=a.out or str(stage_dir("circuits", a.model) / a.task))
        out = cfg.out_dir()
        with claimed(out, "circuit", model=cfg.model, task=cfg.task):
            model = load_model(cfg.model, device=cfg.device)
            print(f"{model}; writing to {out}")
            r = discover(model, cfg)
    for method, c in r["methods"].items():
        print(f"{method:7s} CPR {c['cpr']:.3f}  CMD {c['cmd']:.3f}  scores {c['score_seconds']} s")
        if "circuit" in c:
            acdc = c["circuit"]
            held = f", held-out prompts {acdc['heldout']:.3f}" if "heldout" in acdc else ""
            print(f"        its circuit: {acdc['edges']} of {acdc['candidates']} candidate edges, faithfulness "
                  f"{acdc['faithfulness']:.3f}{held} ({acdc['trials']} patching forwards)")
    ch = r["chosen"]
    held = f", held-out prompts {ch['heldout']:.3f}" if "heldout" in ch else ""
    print(f"chosen ({ch['method']}): {ch['edges']} edges ({ch['edge_fraction']:.2%}), faithfulness "
          f"{ch['faithfulness']:.3f}{held}")
    print(f"wrote {out / RESULTS} and {', '.join(r['files'])}")
