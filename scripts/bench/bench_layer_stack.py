"""All layers' transcoders in one jitted step against one jitted step per layer, side by side.

    python scripts/bench/bench_layer_stack.py [--layers 30 --d 576 --d_sae 2048 --k 32 --batch 1024]

The demo's transcoder shapes (BatchTopK, skip path, SmolLM2 widths): the layers' training states
stacked into one pytree, and one step that trains every layer on its own batch, either mapped over
the layers inside the jit (lax.map: one layer after another, the C++ CPU kernels inside) or vmapped
(one batched step); against the trainer's way, one call of the same jitted single-layer step per
layer. Tokens/s counts every layer's tokens. Writes runs/bench/layer_stack.json.
"""

from __future__ import annotations

import argparse

import numpy as np
from _bench import cpu_model, time_call, write_results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, default=30)
    p.add_argument("--d", type=int, default=576)
    p.add_argument("--d_sae", type=int, default=2048)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()

    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from sae_jax.config import SAEConfig, TrainConfig
    from sae_jax.losses import make_hyper
    from sae_jax.train import init_state, make_step

    L, B = a.layers, a.batch
    scfg = SAEConfig(d_in=a.d, d_out=a.d, d_sae=a.d_sae, arch="batchtopk", k=a.k, skip=True)
    tcfg = TrainConfig(steps=1000, batch=B, progress=False)
    hyper = make_hyper(tcfg.lr_for(a.d_sae), 0.0, a.k)
    rng = np.random.default_rng(0)
    xs = jnp.asarray(rng.standard_normal((L, B, 2 * a.d)).astype(np.float32))
    factors = jnp.ones((L, 2 * a.d), jnp.float32)
    states = [init_state(scfg, tcfg, jax.random.PRNGKey(i), jnp.zeros(a.d)) for i in range(L)]
    stacked = jax.tree.map(lambda *t: jnp.stack(t), *states)
    step = make_step(scfg, tcfg, with_aux=False)
    one = eqx.filter_jit(step)

    def per_layer():
        out = [one(states[i], hyper, xs[i], factors[i]) for i in range(L)]
        jax.block_until_ready(out[-1][0].sae.W_enc)

    mapped = eqx.filter_jit(lambda st, x, f: jax.lax.map(lambda a_: step(a_[0], hyper, a_[1], a_[2]), (st, x, f)))
    vmapped = eqx.filter_jit(eqx.filter_vmap(lambda st, x, f: step(st, hyper, x, f)))
    rows = []
    for name, fn in (("one step per layer (the trainer)", per_layer),
                     ("one step, lax.map over layers", lambda: jax.block_until_ready(mapped(stacked, xs, factors)[0].sae.W_enc)),
                     ("one step, vmapped over layers", lambda: jax.block_until_ready(vmapped(stacked, xs, factors)[0].sae.W_enc))):
        try:
            s = time_call(fn, repeats=a.repeats, warmup=1, best=True)
            rows.append(dict(step=name, seconds=round(s, 3), tokens_per_s=round(L * B / s), error=""))
        except Exception as e:  # a kernel without a batching rule: say so, keep the others
            rows.append(dict(step=name, seconds=None, tokens_per_s=None, error=f"{type(e).__name__}: {str(e)[:80]}"))
    base = rows[0]["seconds"]
    for r in rows:
        r["vs_per_layer"] = round(base / r["seconds"], 3) if r["seconds"] else None
    write_results("layer_stack", rows, dict(cpu=cpu_model(), layers=L, batch=B, d=a.d, d_sae=a.d_sae, k=a.k))


if __name__ == "__main__":
    main()
