"""SAE step throughput on this machine, ratios measured side by side in one run.

    python scripts/bench/bench_sae.py [--d_in 576 --d_sae 4096 --batch 4096 --k 32 --iters 5]
Writes runs/bench/sae.json. sae-lens and eai-sparsify run the same step from their own
environment (.venv-bench-sae, `make peers`) in a child process; they never enter ours.
"""

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

from _bench import PEER_ENV, time_call

ROOT = Path(__file__).resolve().parents[2]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--d_in", type=int, default=576)
    p.add_argument("--d_sae", type=int, default=4096)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--sweep", type=int, default=8)
    p.add_argument("--sweep_steps", type=int, default=10, help="steps of the end-to-end sweep vs singles runs")
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--out", default="runs/bench/sae.json")
    a = p.parse_args()

    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from sae_jax.config import SAEConfig, TrainConfig
    from sae_jax.losses import make_hyper
    from sae_jax.train import init_state, make_step, over_members

    B, D, S = a.batch, a.d_in, a.d_sae
    x = jax.random.normal(jax.random.PRNGKey(0), (B, D))
    rows, res = [], {}

    W = jax.random.normal(jax.random.PRNGKey(1), (D, S))
    mm = jax.jit(lambda x, W: x @ W)
    t_mm = time_call(lambda: mm(x, W).block_until_ready(), a.iters, best=True)
    ceiling = 2 * B * D * S / t_mm
    res["matmul_gflops"] = ceiling / 1e9
    rows.append(("fp32 matmul ceiling", f"{ceiling / 1e9:.1f} GFLOP/s", ""))

    def step_bench(arch, n=None, chunk=1, with_aux=False, **kw):
        """Seconds per step; with_aux=False is the step fit runs while no latent is dead."""
        sc = SAEConfig(arch=arch, d_in=D, d_sae=S, k=a.k, **kw)
        tc = TrainConfig(steps=1000, batch=B)
        hyper = make_hyper(1e-4, 1.0, a.k)
        step = make_step(sc, tc, with_aux)
        if n is None:
            state = init_state(sc, tc, jax.random.PRNGKey(0), jnp.zeros(D))
            fn = eqx.filter_jit(step)
        else:
            state = eqx.filter_vmap(lambda k: init_state(sc, tc, k, jnp.zeros(D)))(
                jax.random.split(jax.random.PRNGKey(0), n))
            hyper = jax.tree.map(lambda v: jnp.stack([v] * n), hyper)
            fn = eqx.filter_jit(over_members(step, chunk))
        box = [state]

        def run():
            box[0], m = fn(box[0], hyper, x, 1.0)
            jax.block_until_ready(m["loss"])
        return time_call(run, a.iters, best=True)

    t = step_bench("relu")
    flops = 12 * B * D * S
    res["relu_tokens_per_s"], res["relu_frac_of_ceiling"] = B / t, flops / t / ceiling
    rows.append(("relu-L1 step", f"{B / t:,.0f} tok/s", f"{flops / t / ceiling:.0%} of ceiling"))
    from sae_jax import cpu_kernels
    kernels = cpu_kernels.enabled()
    t_sp = step_bench("topk")
    os.environ["MECHINTERP_CPU_KERNELS"] = "0"  # read when a step is traced
    t_xla = step_bench("topk")
    t_dn = step_bench("topk", sparse_backward=False)
    os.environ.pop("MECHINTERP_CPU_KERNELS")
    res["cpu_kernels"] = kernels
    res["topk_tokens_per_s"], res["topk_dense_backward_tokens_per_s"] = B / t_sp, B / t_dn
    res["topk_pure_xla_tokens_per_s"] = B / t_xla
    rows.append((f"TopK k={a.k} step (sparse VJP{', C++ CPU kernels' if kernels else ''})", f"{B / t_sp:,.0f} tok/s",
                 f"{t_xla / t_sp:.2f}x pure XLA, {t_dn / t_sp:.2f}x dense backward"))
    rows.append((f"TopK k={a.k} step (sparse VJP, pure XLA)", f"{B / t_xla:,.0f} tok/s", ""))
    rows.append((f"TopK k={a.k} step (dense backward)", f"{B / t_dn:,.0f} tok/s", ""))
    t_aux = step_bench("topk", with_aux=True)
    res["topk_with_aux_tokens_per_s"] = B / t_aux
    rows.append((f"TopK k={a.k} step while some latents are dead (+ aux-k term)", f"{B / t_aux:,.0f} tok/s", ""))
    t_bt = step_bench("batchtopk")
    res["batchtopk_tokens_per_s"] = B / t_bt
    rows.append((f"BatchTopK k={a.k} step", f"{B / t_bt:,.0f} tok/s", ""))
    t_seq = step_bench("relu", n=a.sweep)
    t_vmap = step_bench("relu", n=a.sweep, chunk=a.sweep)
    res["sweep_step_vs_singles"] = t_seq / (a.sweep * t)
    res["sweep_step_all_vmapped_vs_singles"] = t_vmap / (a.sweep * t)
    rows.append((f"sweep of {a.sweep} relu, one step (CPU default: chunks of 1)", f"{a.sweep * B / t_seq:,.0f} SAE-tok/s",
                 f"{t_seq / (a.sweep * t):.2f}x the cost of {a.sweep} single steps"))
    rows.append((f"the same, all {a.sweep} vmapped at once", f"{a.sweep * B / t_vmap:,.0f} SAE-tok/s",
                 f"{t_vmap / (a.sweep * t):.2f}x"))
    t_runs = sweep_vs_single_runs(D, S, B, a.sweep, a.sweep_steps)
    res["sweep_run_vs_singles"] = t_runs["sweep"] / t_runs["singles"]
    res["sweep_run_seconds"] = t_runs
    rows.append((f"sweep of {a.sweep} relu runs, {a.sweep_steps} steps end to end", f"{t_runs['sweep']:.1f} s",
                 f"{res['sweep_run_vs_singles']:.2f}x {a.sweep} single runs ({t_runs['singles']:.1f} s)"))

    peer_python = ROOT / ".venv-bench-sae" / "bin" / "python"
    if peer_python.exists():
        proc = subprocess.run([str(peer_python), str(ROOT / "scripts/bench/peers/sae_step.py"), str(D), str(S), str(B),
                               str(a.k), str(a.iters)], capture_output=True, text=True, env=PEER_ENV)
        if proc.returncode == 0:
            peers = json.loads(proc.stdout.strip().splitlines()[-1])
            res["peers_tokens_per_s"] = peers
            res["relu_vs_sae_lens_standard"] = res["relu_tokens_per_s"] / peers["sae_lens_standard"]
            fastest = max(peers["sparsify_topk_adam"], peers["sparsify_topk_signum"])
            res["topk_vs_fastest_sparsify"] = res["topk_tokens_per_s"] / fastest
            rows.append(("sae-lens 6.54 standard (relu-L1) step", f"{peers['sae_lens_standard']:,.0f} tok/s",
                         f"ours {res['relu_vs_sae_lens_standard']:.2f}x (goal >= 1.4x)"))
            rows.append((f"sae-lens 6.54 TopK k={a.k} step", f"{peers['sae_lens_topk']:,.0f} tok/s",
                         f"ours {res['topk_tokens_per_s'] / peers['sae_lens_topk']:.2f}x"))
            rows.append((f"eai-sparsify 1.3.3 TopK k={a.k}, Adam", f"{peers['sparsify_topk_adam']:,.0f} tok/s", ""))
            rows.append((f"eai-sparsify 1.3.3 TopK k={a.k}, Signum", f"{peers['sparsify_topk_signum']:,.0f} tok/s",
                         f"ours vs fastest {res['topk_vs_fastest_sparsify']:.2f}x (goal >= 1.4x)"))
        else:
            rows.append(("peers", "failed", proc.stderr.strip().splitlines()[-1][:100]))
    else:
        rows.append(("peers (sae-lens, sparsify)", "skipped", "no .venv-bench-sae: run `make peers`"))

    res.update(shape=dict(batch=B, d_in=D, d_sae=S, k=a.k), jax=jax.__version__,
               device=str(jax.devices()[0]), iters=a.iters)
    res["rows"] = [  # the headline rows that scripts/bench/bench_all.py gathers
        {"measure": "relu-L1 step / matmul ceiling", "value": res["relu_frac_of_ceiling"], "goal": ">= 0.85"},
        {"measure": f"TopK k={a.k} step, tokens/s", "value": res["topk_tokens_per_s"], "goal": ""},
        {"measure": f"sweep of {a.sweep} / {a.sweep} single runs, end to end (cost)", "value": res["sweep_run_vs_singles"],
         "goal": "<= 1.0"},
    ]
    if "relu_vs_sae_lens_standard" in res:
        res["rows"] += [
            {"measure": "relu-L1 step: ours / sae-lens standard", "value": res["relu_vs_sae_lens_standard"], "goal": ">= 1.4"},
            {"measure": "TopK step: ours / fastest eai-sparsify", "value": res["topk_vs_fastest_sparsify"], "goal": ">= 1.4"},
        ]
    w = max(len(r[0]) for r in rows)
    for r in rows:
        print(f"{r[0]:<{w}}  {r[1]:>22}  {r[2]}")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(f"wrote {out}")


def sweep_vs_single_runs(d_in, d_sae, batch, n, steps) -> dict:
    """Wall seconds of one `fit` of n relu members vs n single fits (compile, batch reads,
    checkpoint included) on a synthetic store of this width."""
    import tempfile

    from sae_jax.config import SAEConfig, TrainConfig
    from sae_jax.pipeline import load_store
    from sae_jax.synthetic import write_synthetic_store
    from sae_jax.train import fit

    with tempfile.TemporaryDirectory() as tmp:
        ctx = 257
        windows = -(-steps * batch // (ctx - 1)) * 21 // 20 + 2  # the 5% held-out split on top
        store = load_store(write_synthetic_store(Path(tmp) / "store", d_in=d_in, n_features=1024, ctx=ctx,
                                                 n_windows=windows, active=32))
        sc = SAEConfig(arch="relu", d_in=d_in, d_sae=d_sae)
        tc = TrainConfig(steps=steps, batch=batch, progress=False, init_tokens=batch)
        members = [dict(lr=1e-4 * (i + 1), l1=1.0, k=32, seed=i) for i in range(n)]
        t0 = time.perf_counter()
        fit(store, sc, tc, Path(tmp) / "sweep", members=members)
        t_sweep = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i, m in enumerate(members):
            fit(store, sc, TrainConfig(steps=steps, batch=batch, progress=False, init_tokens=batch, lr=m["lr"],
                                       seed=m["seed"]), Path(tmp) / f"single{i}")
        return {"sweep": t_sweep, "singles": time.perf_counter() - t0}


if __name__ == "__main__":
    main()
