"""Train a population of SAEs at once (vmap over stacked modules, one batch stream).

    python scripts/sweep_sae.py --arch relu --l1 1 2 5 10 --steps 2000
    python scripts/sweep_sae.py --arch topk --k 16 32 64 --lr 1e-3 4e-4
The cartesian product of --l1 x --k x --lr x --seeds is trained.
"""

import json

from _cli import user_errors
from _sae_cli import base_parser, jax_devices


def main() -> None:
    p = base_parser(__doc__.splitlines()[0], "runs/sweep")
    p.add_argument("--l1", type=float, nargs="+", default=None)
    p.add_argument("--k", type=int, nargs="+", default=None)
    p.add_argument("--lr", type=float, nargs="+", default=None)
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="init seeds (the data order follows --seed)")
    a = p.parse_args()

    from sae_jax.config import TrainConfig
    from sae_jax.sweep import grid, run_sweep

    with user_errors():
        tcfg = TrainConfig(steps=a.steps, batch=a.batch, seed=a.seed, eval_tokens=a.eval_tokens,
                           ckpt_every=a.ckpt_every, progress=not a.no_progress)
        members = grid(tcfg, a.arch, a.d_sae, a.l1, a.k, a.lr, a.seeds)
        s = run_sweep(a.acts, a.out, dict(arch=a.arch, d_sae=a.d_sae, dead_tokens=a.dead_tokens,
                                          sparse_backward=not a.dense_backward), tcfg, members,
                      devices=jax_devices(a.device))
        for r in s["members"]:
            print(json.dumps({"name": r["name"], "l0": r["metrics"]["l0"], "fvu": r["metrics"]["fvu"]}))
        print(f"wrote {a.out}/sweep.json and {a.out}/pareto.png")


if __name__ == "__main__":
    main()
