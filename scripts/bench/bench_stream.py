"""Training every layer's transcoder from a live stream against its FLOP bound and against the
dump-then-train path, side by side in one run on the default model.

    python scripts/bench/bench_stream.py [--steps 60] [--batch 1024] [--d_sae 2048] [--k 32]

Measured: the fp32 matmul ceiling (2048^3); the producer's forward alone (torch, the
hooks of every layer, stopping after the last) and the training step of every layer alone (JAX, one
step per layer), each in tokens/s and GFLOP/s; the stream end to end (`train-transcoders --stream`,
steady tokens/s after the first step, and wall time with its held-out dump and the exports); the
dump-then-train path on the same number of fresh tokens (`dump` of every layer's pair, then
`train-transcoders --acts`). FLOPs per token: the forward 2 x the blocks' weights + attention's
4 x ctx/2 x d per layer; the training step 4 d_in d_sae (encoder forward and its weight gradient,
counted dense) + 4 d_in d_out (skip path) + 4 k d_out (decoder) per layer. The FLOP bound is the
ceiling over both. Both paths train with the same flags (a 10% warm-up: at 40 steps the default 5%
let the dump path's layer 11 diverge). Writes runs/bench/stream.json.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _bench import BENCH_DIR, REPO, bench_model, bench_parser, cpu_model, time_call, write_results

SITES = ("--hook", "blocks.{L}.hook_mlp_in", "--hook", "blocks.{L}.hook_mlp_out")


def child(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mechinterp", *argv], cwd=REPO, check=True)
    return time.perf_counter() - t0


def forward_flops(model, ctx: int) -> float:
    blocks = sum(p.numel() for n, p in model.model.named_parameters()
                 if p.dim() > 1 and not any(e in n for e in ("embed", "lm_head", "wte", "wpe")))
    return 2 * blocks + model.n_layers * 4 * (ctx / 2) * model.d_model


def forward_rate(model, ctx: int, threads: int, n_windows: int = 8, repeats: int = 3) -> float:
    import torch

    torch.set_num_threads(threads)
    names = [f"blocks.{L}.{s}" for L in range(model.n_layers) for s in ("hook_mlp_in", "hook_mlp_out")]
    toks = torch.randint(100, 20000, (n_windows, ctx))
    stop = model.min_stop_layer(names)
    with torch.inference_mode():
        t = time_call(lambda: model.run_with_cache(toks, names=names, stop_at_layer=stop), repeats)
    return n_windows * ctx / t


def training_rate(n_layers: int, d: int, d_sae: int, k: int, batch: int, repeats: int = 3) -> tuple[float, float]:
    """(tokens/s of one step of every layer, the matmul ceiling in GFLOP/s measured right after)."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from sae_jax.config import SAEConfig, TrainConfig
    from sae_jax.losses import make_hyper
    from sae_jax.train import init_state, make_step

    scfg = SAEConfig(d_in=d, d_out=d, d_sae=d_sae, k=k, arch="batchtopk", skip=True)
    tcfg = TrainConfig(steps=1000, batch=batch)
    step = eqx.filter_jit(make_step(scfg, tcfg, with_aux=False))
    hyper = make_hyper(tcfg.lr_for(d_sae), 0.0, k)
    states = [init_state(scfg, tcfg, jax.random.PRNGKey(i), jnp.zeros(d), jnp.zeros((d, d))) for i in range(n_layers)]
    x = jax.random.normal(jax.random.PRNGKey(0), (batch, 2 * d))

    def all_layers():
        for i in range(n_layers):
            states[i], m = step(states[i], hyper, x, 1.0)
        jax.block_until_ready(m)
    t = time_call(all_layers, repeats)
    return batch / t, matmul_ceiling()


def matmul_ceiling(n: int = 2048) -> float:
    """GFLOP/s of JAX's fp32 [n, n] x [n, n] matmul, the best of 5 (the ceiling swings with the machine's
    load: measure it in the same run as what it bounds)."""
    import jax

    a = jax.random.normal(jax.random.PRNGKey(1), (n, n))
    mm = jax.jit(lambda a, b: a @ b)
    return 2 * n**3 / time_call(lambda: mm(a, a).block_until_ready(), 5, best=True) / 1e9


def main() -> None:
    p = bench_parser(__doc__)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--d_sae", type=int, default=2048)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--ctx", type=int, default=128)
    p.add_argument("--work", default=str(BENCH_DIR / "stream"))
    a = p.parse_args()
    work = Path(a.work)
    shutil.rmtree(work, ignore_errors=True)
    train = ["--arch", "batchtopk", "--k", str(a.k), "--d_sae", str(a.d_sae), "--steps", str(a.steps), "--batch",
             str(a.batch), "--seed", str(a.seed), "--warmup_frac", "0.1", "--no_progress"]

    model = bench_model(a.model)
    n_layers, d = model.n_layers, model.d_model
    fwd_flops = forward_flops(model, a.ctx)
    train_flops = n_layers * (4 * d * a.d_sae + 4 * d * d + 4 * a.k * d)
    fwd = {t: forward_rate(model, a.ctx, t) for t in (1, 2)}
    del model
    train_tok_s, ceiling = training_rate(n_layers, d, a.d_sae, a.k, a.batch)
    bound = ceiling * 1e9 / (fwd_flops + train_flops)

    t_stream = child(["train-transcoders", "--stream", "--model", a.model, "--out", str(work / "stream"), *train])
    s = json.loads((work / "stream" / "transcoders.json").read_text())
    tokens = a.steps * a.batch
    t_dump = child(["dump", "--model", a.model, *SITES, "--n_tokens", str(int(tokens / 0.95) + 1), "--ctx", str(a.ctx),
                    "--out", str(work / "pairs"), "--no_progress"])
    dump_bytes = sum(f.stat().st_size for f in (work / "pairs").rglob("*") if f.is_file())
    t_train = child(["train-transcoders", "--acts", str(work / "pairs"), "--out", str(work / "dumped"), *train])
    d_sum = json.loads((work / "dumped" / "transcoders.json").read_text())
    stream_rate = s["stream_tokens_per_s"]
    rows = [
        {"measure": "fp32 matmul ceiling (GFLOP/s)", "value": ceiling, "goal": ""},
        {"measure": "forward alone, 1 / 2 torch threads (tok/s)", "value": f"{fwd[1]:.0f} / {fwd[2]:.0f}", "goal": ""},
        {"measure": "training step of every layer alone (tok/s)", "value": train_tok_s, "goal": ""},
        {"measure": "FLOP bound of the stream (tok/s)", "value": bound, "goal": ""},
        {"measure": "stream, steady (tok/s)", "value": stream_rate, "goal": ""},
        {"measure": "stream / FLOP bound", "value": stream_rate / bound, "goal": ">= 0.60"},
        {"measure": "stream end to end, fresh tok/s", "value": tokens / t_stream, "goal": ""},
        {"measure": "dump-then-train end to end, fresh tok/s", "value": tokens / (t_dump + t_train), "goal": ""},
        {"measure": "stream / dump-then-train, fresh tokens per hour", "value": (t_dump + t_train) / t_stream,
         "goal": ">= 3"},
        {"measure": "held-out FVU mean, stream / dump-then-train",
         "value": f"{s['mean_fvu']:.3f} / {d_sum['mean_fvu']:.3f}", "goal": ""},
    ]
    write_results("stream", rows, dict(
        cpu=cpu_model(), threads=os.cpu_count(), steps=a.steps, batch=a.batch, d_sae=a.d_sae, k=a.k, n_layers=n_layers,
        forward_gflop_per_token=fwd_flops / 1e9, train_gflop_per_token=train_flops / 1e9, forward_tok_s=fwd,
        train_tok_s=train_tok_s, bound_tok_s=bound, stream_tok_s=stream_rate, stream_wall_s=t_stream,
        dump_wall_s=t_dump, dump_bytes=dump_bytes, train_wall_s=t_train, stream_mean_fvu=s["mean_fvu"],
        dumped_mean_fvu=d_sum["mean_fvu"], peak_rss_children_mb=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))


if __name__ == "__main__":
    main()
