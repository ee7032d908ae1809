"""Train one SAE on an activation store (JAX) and export it in the SAELens layout.

    mechinterp train-sae --steps 2000                          # relu + L1, 4096 latents
    mechinterp train-sae --arch topk --k 32 --acts runs/acts/... --out runs/sae_topk
    mechinterp train-sae --arch topk --acts .../blocks.3.hook_mlp_in --acts_out .../blocks.3.hook_mlp_out   # transcoder
Re-running the same command resumes from <out>/checkpoints.
"""

from __future__ import annotations

import json

from mechinterp.cli.flags import build, values
from mechinterp.cli.runs import single_store, under_runs
from mechinterp.cli.stages import config_parser, user_errors
from mechinterp.formats.defaults import DEFAULT_MODEL
from mechinterp.formats.store_writer import FolderLock


def parser(prog=None):
    from sae_jax.config import SAEConfig, TrainConfig, TrainRun

    return config_parser(__doc__, prog, TrainRun, SAEConfig, TrainConfig)


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from sae_jax.config import SAEConfig, TrainConfig, TrainRun
        from sae_jax.pipeline import jax_devices, train_sae

        run = build(TrainRun, a, out=a.out or under_runs("sae"))
        acts = run.acts or str(single_store(DEFAULT_MODEL))
        with FolderLock(run.out, "another train-sae"):
            m = train_sae(acts, run.out, values(SAEConfig, a), build(TrainConfig, a), devices=jax_devices(run.device),
                          acts_out=run.acts_out)
        print(json.dumps({k: m[k] for k in ("fvu", "explained_variance", "l0", "dead", "dense", "train_tokens")}))
        print(f"wrote {run.out}/sae")
