"""Train a transcoder for every layer (or a list) of a multi-layer MLP-pair dump (JAX), export each
in the SAELens transcoder layout and the whole set in circuit-tracer's format.

    mechinterp dump --hook 'blocks.{L}.hook_mlp_in' --hook 'blocks.{L}.hook_mlp_out' --out runs/acts/pairs
    mechinterp train-transcoders --acts runs/acts/pairs --arch topk --k 32 --d_sae 4096 --steps 2000
    mechinterp train-transcoders --stream --corpus textmix --steps 20000 --batch 1024   # no dump: a live stream
Re-running the same command resumes (in the layer it stopped in; a stream at its last checkpoint).
"""

from __future__ import annotations

import json
from dataclasses import replace

from mechinterp.cli.flags import add_flags, build, values
from mechinterp.cli.runs import under_runs
from mechinterp.cli.stages import new_parser, user_errors
from mechinterp.formats.store_writer import FolderLock
from mechinterp.formats.transcoder_set import SUMMARY


def parser(prog=None):
    from sae_jax.config import SAEConfig, TrainConfig
    from sae_jax.stream_fit import StreamConfig
    from sae_jax.transcoders import TranscoderRun

    p = new_parser(__doc__, prog)
    add_flags(p, TranscoderRun)
    add_flags(p, StreamConfig)
    add_flags(p, SAEConfig, skip=("skip",))  # TranscoderRun's --no_skip: transcoders have one by default
    add_flags(p, TrainConfig)
    return p


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from sae_jax.config import SAEConfig, TrainConfig
        from sae_jax.pipeline import jax_devices
        from sae_jax.stream_fit import StreamConfig
        from sae_jax.transcoders import TranscoderRun, train_transcoders

        out = a.out or under_runs("transcoders")
        acts = a.acts or (f"{out}/heldout" if a.stream else under_runs("acts", "pairs"))
        run = build(TranscoderRun, a, acts=acts, out=out)
        with FolderLock(run.out, "another train-transcoders"):
            scfg = {**values(SAEConfig, a, skip=("skip",)), "skip": run.skip}
            tcfg = build(TrainConfig, a)
            if tcfg.lr is None:
                tcfg = replace(tcfg, lr=run.lr_factor * tcfg.lr_for(scfg["d_sae"]))
            stream = build(StreamConfig, a) if run.stream else None
            s = train_transcoders(run, scfg, tcfg, devices=jax_devices(run.device), stream=stream)
        print(json.dumps({k: s[k] for k in ("mean_fvu", "worst_fvu", "wall_s")}))
        print(f"wrote {run.out}/{SUMMARY}" + (f" and {s['circuit_tracer']}" if "circuit_tracer" in s else ""))
