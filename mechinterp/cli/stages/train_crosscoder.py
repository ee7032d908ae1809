"""Train a crosscoder (JAX) between two models of one width on dumps of the same tokens: one latent
code, one decoder per model; per latent, how its decoder norm splits between the models and whether
a latent that looks specific to model B really is (latent scaling).

    mechinterp dump --model smollm2-135m --corpus C --out runs/xc/base --hook blocks.15.hook_resid_pre
    mechinterp dump --model organism:runs/organisms/taboo-gold --corpus C --out runs/xc/organism --hook blocks.15.hook_resid_pre
    mechinterp train-crosscoder --a runs/xc/base --b runs/xc/organism --out runs/xc/crosscoder

Re-running the same command resumes from OUT/checkpoints.
"""

from __future__ import annotations

import json

from mechinterp.cli.flags import build
from mechinterp.cli.runs import under_runs
from mechinterp.cli.stages import config_parser, user_errors
from mechinterp.formats.store_writer import FolderLock


def parser(prog=None):
    from sae_jax.config import TrainConfig
    from sae_jax.crosscoder import CrosscoderConfig, CrosscoderRun

    return config_parser(__doc__, prog, CrosscoderRun, CrosscoderConfig, TrainConfig)


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from sae_jax.config import TrainConfig
        from sae_jax.crosscoder import CrosscoderConfig, CrosscoderRun, train_crosscoder
        from sae_jax.pipeline import jax_devices

        run = build(CrosscoderRun, a, out=a.out or under_runs("crosscoder"))
        with FolderLock(run.out, "another train-crosscoder"):
            info = train_crosscoder(run.a, run.b, run.out, build(CrosscoderConfig, a), build(TrainConfig, a),
                                    devices=jax_devices(run.device))
        print(json.dumps(info.get("metrics", info)))
        print(f"wrote {run.out}")
