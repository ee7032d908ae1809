"""Dump activations over a text corpus to disk-backed memmaps (one store per hook).

    mechinterp dump --n_tokens 25000                  # middle layer hook_resid_pre, BBC news
    mechinterp dump --layer 3 --site mlp_out --corpus shakespeare
    mechinterp dump --hook blocks.4.hook_resid_pre --hook blocks.20.hook_mlp_out
    torchrun --nproc_per_node 2 -m mechinterp dump ...     # one shard per rank
Re-running an interrupted command resumes it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from mechinterp.cli.flags import build
from mechinterp.cli.runs import RUNS, default_store_dir
from mechinterp.cli.stages import config_parser, user_errors


@dataclass(frozen=True)
class DumpPlacement:
    runs_dir: str = RUNS
    """Parent of the default output folders (without --out: runs_dir/acts/<model>/<hook>)."""


def parser(prog=None):
    from extract.dump import DumpConfig

    return config_parser(__doc__, prog, DumpConfig, DumpPlacement)


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from extract.dump import DumpConfig, DumpInterrupted, run_from_cli

        try:
            runs_dir = build(DumpPlacement, a).runs_dir
            run_from_cli(build(DumpConfig, a), default_dir=lambda m, h: default_store_dir(m, h, runs_dir))
        except DumpInterrupted as e:
            print(e, file=sys.stderr)
            raise SystemExit(130) from None
