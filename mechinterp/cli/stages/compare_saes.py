"""Compare evaluated SAEs: one Pareto plot per metric against L0 (compare.html, pareto.png) and
results.json with one row per SAE, read from each SAE's metrics.json (run eval-sae on each first).

    mechinterp compare-saes --saes DIR [DIR ...] --out runs/compare
"""

from __future__ import annotations

from mechinterp.cli.flags import build
from mechinterp.cli.runs import claimed, identity, saes_name, stage_dir
from mechinterp.cli.stages import config_parser, user_errors


def parser(prog=None):
    from mechinterp.views.sae_pages import CompareConfig

    return config_parser(__doc__, prog, CompareConfig)


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from mechinterp.views.sae_pages import CompareConfig, write_comparison

        cfg = build(CompareConfig, a, out=a.out or str(stage_dir("compare", saes_name(a.saes))))
        with claimed(cfg.out, "compare-saes", saes=" ".join(identity(s) for s in cfg.saes)):
            paths = write_comparison(cfg.saes, cfg.out)
        print(f"wrote {paths['html']}, {paths['png']} and {paths['json']}")
