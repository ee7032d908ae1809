"""Dump activations over a text corpus to disk-backed memmaps (one store per hook).

    mechinterp dump --n_tokens 25000                  # middle layer hook_resid_pre, BBC news
    mechinterp dump --layer 3 --site mlp_out --corpus shakespeare
    mechinterp dump --hook blocks.4.hook_resid_pre --hook blocks.20.hook_mlp_out
    torchrun --nproc_per_node 2 -m mechinterp dump ...     # one shard per rank
Re-running an interrupted command resumes it.
"""

from __future__ import annotations

import sys

from mechinterp.flags import build
from mechinterp.stages import config_parser, user_errors


def parser(prog=None):
    from extract.dump import DumpConfig

    return config_parser(__doc__, prog, DumpConfig)


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from extract.dump import DumpConfig, DumpInterrupted, run_from_cli

        try:
            run_from_cli(build(DumpConfig, a))
        except DumpInterrupted as e:
            print(e, file=sys.stderr)
            raise SystemExit(130) from None
