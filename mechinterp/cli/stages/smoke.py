"""Smoke stage: load a model, run one prompt, capture one hook, show the next-token guess.

    mechinterp smoke [--model M] [--device D] [--hook NAME] [--prompt TEXT]
"""

from __future__ import annotations

from mechinterp.cli.flags import build
from mechinterp.cli.stages import config_parser, user_errors


def parser(prog=None):
    from extract.smoke import SmokeConfig

    return config_parser(__doc__, prog, SmokeConfig)


def main(argv=None, prog=None) -> None:
    from extract.smoke import SmokeConfig, smoke

    a = parser(prog).parse_args(argv)
    with user_errors():
        for line in smoke(build(SmokeConfig, a)):
            print(line)
