"""Train a population of SAEs at once (vmap over stacked modules, one batch stream).

    mechinterp sweep-sae --arch relu --l1 1 2 5 10 --steps 2000
    mechinterp sweep-sae --arch topk --k 16 32 64 --lr 1e-3 4e-4
The cartesian product of --l1 x --k x --lr x --seeds is trained.
"""

from __future__ import annotations

import json

from mechinterp.cli.flags import add_flags, build, values
from mechinterp.cli.runs import single_store, under_runs
from mechinterp.cli.stages import new_parser, user_errors
from mechinterp.formats.defaults import DEFAULT_MODEL
from mechinterp.formats.store_writer import FolderLock

GRID_AXES = ("k", "l1", "lr")  # flags of the grid, not of the single-run configs


def parser(prog=None):
    from sae_jax.config import SAEConfig, TrainConfig, TrainRun
    from sae_jax.sweep import SweepGrid

    p = new_parser(__doc__, prog)
    add_flags(p, TrainRun)
    add_flags(p, SAEConfig, skip=GRID_AXES)
    add_flags(p, TrainConfig, skip=GRID_AXES)
    add_flags(p, SweepGrid)
    return p


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from sae_jax.config import SAEConfig, TrainConfig, TrainRun
        from sae_jax.pipeline import jax_devices
        from sae_jax.sweep import SweepGrid, grid, run_sweep

        run = build(TrainRun, a, out=a.out or under_runs("sweep"))
        if run.acts_out:
            raise ValueError("--acts_out: sweeps train SAEs only for now; train each transcoder with `mechinterp train-sae`")
        tcfg = build(TrainConfig, a, skip=GRID_AXES)
        axes = build(SweepGrid, a)
        scfg = values(SAEConfig, a, skip=GRID_AXES)
        members = grid(tcfg, scfg["arch"], scfg["d_sae"], axes.l1, axes.k, axes.lr, axes.seeds)
        with FolderLock(run.out, "another sweep-sae"):
            s = run_sweep(run.acts or str(single_store(DEFAULT_MODEL)), run.out, scfg, tcfg, members,
                          devices=jax_devices(run.device))
        for r in s["members"]:
            m = r.get("metrics")
            print(json.dumps({"name": r["name"], **({"l0": m["l0"], "fvu": m["fvu"]} if m else {"diverged": r["diverged"]})}))
        print(f"wrote {run.out}/sweep.json and {run.out}/pareto.png")
