"""Compare evaluated SAEs: one Pareto plot per metric against L0 (compare.html, pareto.png) and
results.json with one row per SAE, read from each SAE's metrics.json (run eval-sae on each first).

    mechinterp compare-saes --saes DIR [DIR ...] --out runs/compare
"""

from __future__ import annotations

from pathlib import Path

from mechinterp.stages import new_parser, user_errors


def parser(prog=None):
    p = new_parser(__doc__, prog)
    p.add_argument("--saes", nargs="+", required=True, help="SAE export directories (each evaluated with eval-sae).")
    p.add_argument("--out", default="runs/compare", help="Output directory (default runs/compare).")
    return p


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from mechinterp.sae_format import read_cfg
        from mechinterp.sae_pages import write_comparison

        for d in a.saes:
            read_cfg(d)
            if not (Path(d) / "metrics.json").exists():
                raise ValueError(f"{d} has no metrics.json; evaluate it first with `mechinterp eval-sae --sae {d}`")
        paths = write_comparison(a.saes, a.out)
        print(f"wrote {paths['html']}, {paths['png']} and {paths['json']}")
