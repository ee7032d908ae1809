"""Train one SAE on an activation store (JAX) and export it in the SAELens layout.

    mechinterp train-sae --steps 2000                          # relu + L1, 4096 latents
    mechinterp train-sae --arch topk --k 32 --acts runs/acts/... --out runs/sae_topk
    mechinterp train-sae --arch topk --acts .../blocks.3.hook_mlp_in --acts_out .../blocks.3.hook_mlp_out   # transcoder
    mechinterp train-sae --stream --hook blocks.15.hook_resid_pre --corpus textmix --d_sae 16384 --steps 20000
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
    from sae_jax.stream_fit import StreamConfig, StreamSite

    return config_parser(__doc__, prog, TrainRun, SAEConfig, TrainConfig, StreamSite, StreamConfig)


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from sae_jax.config import SAEConfig, TrainConfig, TrainRun
        from sae_jax.pipeline import jax_devices, train_sae, train_sae_streamed
        from sae_jax.stream_fit import StreamConfig, StreamSite

        run = build(TrainRun, a, out=a.out or under_runs("sae"))
        site = build(StreamSite, a)
        if site.stream and (run.acts or run.acts_out):
            raise ValueError("--stream trains from the model's forward, not from a store: drop --acts / --acts_out "
                             "(or drop --stream to train on the store)")
        with FolderLock(run.out, "another train-sae"):
            if site.stream:
                m = train_sae_streamed(run.out, site.hook, values(SAEConfig, a), build(TrainConfig, a),
                                       build(StreamConfig, a), devices=jax_devices(run.device))
            else:
                m = train_sae(run.acts or str(single_store(DEFAULT_MODEL)), run.out, values(SAEConfig, a),
                              build(TrainConfig, a), devices=jax_devices(run.device), acts_out=run.acts_out)
        print(json.dumps({k: m[k] for k in ("fvu", "explained_variance", "l0", "dead", "dense", "train_tokens")}))
        print(f"wrote {run.out}/sae")
