"""Dump an antibody model's activations over real antibody sequences, with per-residue labels.

    mechinterp bio-dump                                   # antiberty, 5,000 abnativ sequences, middle layer
    mechinterp bio-dump --hook 'blocks.{L}.hook_normalized_resid_post' --layers 2-6
    mechinterp bio-dump --model sapiens-vh --sequences abnativ:vh
    mechinterp bio-dump --sequences my_antibodies.fasta   # or an OAS-style CSV
Writes OUT/<hook>/ (activation stores) and OUT/residues.npz (+ residues.json). Re-running an
interrupted command resumes it.
"""

from __future__ import annotations

from mechinterp.cli.flags import build
from mechinterp.cli.runs import claimed, sequences_name, stage_dir
from mechinterp.cli.stages import config_parser, user_errors


def parser(prog=None):
    from extract.bio.dump import BioDumpConfig

    return config_parser(__doc__, prog, BioDumpConfig)


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from extract.bio.dump import BioDumpConfig, dump_residues

        out = a.out or str(stage_dir("bio_acts", a.model) / sequences_name(a.sequences))
        with claimed(out, "bio-dump", model=a.model, sequences=a.sequences):
            summary = dump_residues(build(BioDumpConfig, a, out=out))
        print(f"{summary['n_sequences']:,} sequences ({summary['rejected']} not numbered, skipped; "
              f"{summary['heldout']} held out), {summary['rows']:,} residue rows -> {out}")
