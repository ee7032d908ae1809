"""Train one SAE on an activation store and export it (SAELens layout).

    python scripts/train_sae.py --steps 2000 --acts runs/acts --arch relu --d_sae 4096 --l1 5
Re-running the same command resumes from <out>/checkpoints.
"""

import json

from _cli import user_errors
from _sae_cli import base_parser, jax_devices


def main() -> None:
    p = base_parser(__doc__.splitlines()[0], "runs/sae")
    p.add_argument("--l1", type=float, default=-1.0, help="sparsity coefficient (relu: L1, jumprelu: L0)")
    p.add_argument("--k", type=int, default=32, help="active latents per token (topk, batchtopk)")
    p.add_argument("--lr", type=float, default=0.0, help="peak learning rate (0: 2e-4/sqrt(d_sae/16384))")
    a = p.parse_args()

    from sae_jax.config import TrainConfig
    from sae_jax.pipeline import train_sae

    with user_errors():
        tcfg = TrainConfig(steps=a.steps, batch=a.batch, lr=a.lr, l1=a.l1, seed=a.seed, eval_tokens=a.eval_tokens,
                           ckpt_every=a.ckpt_every, progress=not a.no_progress)
        m = train_sae(a.acts, a.out, dict(arch=a.arch, d_sae=a.d_sae, k=a.k, dead_tokens=a.dead_tokens,
                                          sparse_backward=not a.dense_backward), tcfg,
                      devices=jax_devices(a.device))
        print(json.dumps({k: m[k] for k in ("fvu", "explained_variance", "l0", "dead", "dense", "train_tokens")}))
        print(f"wrote {a.out}/sae")


if __name__ == "__main__":
    main()
