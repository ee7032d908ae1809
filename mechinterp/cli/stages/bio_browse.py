"""Residue browser of an antibody SAE: each concept's best latents on their top sequences, residues
coloured by activation above the region track (one self-contained page, opens from file://).

    mechinterp bio-eval --sae runs/bio/sae/sae            # first: aligns the latents with the concepts
    mechinterp bio-browse --sae runs/bio/sae/sae          # -> runs/bio/sae/sae/bio_browse/residues.html
"""

from __future__ import annotations

from pathlib import Path

from mechinterp.cli.flags import build
from mechinterp.cli.runs import claimed
from mechinterp.cli.stages import config_parser, user_errors


def parser(prog=None):
    from interventions.bio.browse import BioBrowseConfig

    return config_parser(__doc__, prog, BioBrowseConfig)


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from interventions.bio.browse import BioBrowseConfig, browse

        cfg = build(BioBrowseConfig, a)
        with claimed(cfg.sae, "bio-browse"):
            r = browse(cfg)
        print(f"{r['latents']} latents over {r['concepts']} concepts; open file://{Path(r['page']).resolve()}")
