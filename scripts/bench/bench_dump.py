"""Benchmark the activation dump: throughput vs the bare truncated forward, peak RSS vs n_tokens,
bytes on disk per token. Prints a table and writes runs/bench/dump.json.

    python scripts/bench/bench_dump.py                       # default model, middle layer, 4096 tokens
    python scripts/bench/bench_dump.py --rss_tokens 25000 250000 --rss_layer 1

Throughput: the same windows (same batches) go through (a) the bare forward truncated where the
dump stops (run_with_hooks, no hooks) and (b) the whole dump_activations call (corpus, counting
pass, store creation, hooks, fp16 conversion, memmap writes, flushes); ratio = (a time) / (b time),
goal >= 0.9. On a shared machine the two can see different loads, so the forward's share of the
dump's own wall time (run_with_cache timed inside the dump call) is reported too: the same
question (I/O and bookkeeping under 10%) answered from one run. Repeated and interleaved; the fastest
of each is used (the least disturbed on a shared machine).
Peak RSS: the cache_activations script in a fresh child process per size (ru_maxrss of the child);
goal: the largest within 10% of the smallest. A shallow layer (--rss_layer) keeps 250k tokens quick:
the forward's working set does not depend on n_tokens, what could grow is the store and the corpus.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bench import write_results

from mechinterp.formats.store import ACTS_FILE, META_FILE, TOKENS_FILE

REPO = Path(__file__).resolve().parents[2]


def throughput(model_name: str, n_tokens: int, ctx: int, batch: int, repeats: int, layer: int | None) -> dict:
    import numpy as np
    import torch

    from extract.corpus import open_corpus
    from extract.dump import DumpConfig, dump_activations, hook_names
    from extract.models import load_model
    from extract.windows import WindowStream

    model = load_model(model_name, device="cpu")
    cfg = DumpConfig(model=model_name, n_tokens=n_tokens, ctx=ctx, batch=batch, layer=layer, progress=False)
    names = hook_names(model, cfg)
    stop = model.min_stop_layer(names)
    stream = WindowStream(open_corpus(cfg.corpus), model.tokenizer, ctx, model.bos_token_id, cfg.seed, cfg.eval_fraction)
    plan = stream.plan(-(-n_tokens // (ctx - 1)))
    wins = np.stack(list(stream.windows(plan)))
    batches = [torch.from_numpy(wins[i:i + batch]).long() for i in range(0, len(wins), batch)]
    model.run_with_hooks(batches[0][:1], [], stop_at_layer=stop)  # warm-up

    def bare():
        t0 = time.perf_counter()
        for b in batches:
            model.run_with_hooks(b, [], stop_at_layer=stop)
        return time.perf_counter() - t0

    fwd = [0.0]
    run_with_cache = model.run_with_cache

    def timed_run_with_cache(*args, **kw):  # the forward's share of the dump, timed inside it
        t0 = time.perf_counter()
        try:
            return run_with_cache(*args, **kw)
        finally:
            fwd[0] += time.perf_counter() - t0

    def dump():
        with tempfile.TemporaryDirectory() as d:
            c = DumpConfig(**{**cfg.__dict__, "out": d})
            fwd[0] = 0.0
            model.run_with_cache = timed_run_with_cache
            t0 = time.perf_counter()
            try:
                dump_activations(c, model=model)
            finally:
                del model.run_with_cache
            total = time.perf_counter() - t0
            t_fwd.append(fwd[0])
            return total

    t_bare, t_dump, t_fwd = [], [], []
    for _ in range(repeats):
        t_bare.append(bare())
        t_dump.append(dump())
    rows = len(wins) * (ctx - 1)
    tb, td = min(t_bare), min(t_dump)  # the least disturbed run of each (shared machine)
    shares = [f / t for f, t in zip(t_fwd, t_dump)]
    return {"hook": names[0], "stop_at_layer": stop, "windows": len(wins), "rows": rows,
            "bare_tok_s": rows / tb, "dump_tok_s": rows / td, "ratio": tb / td,
            "forward_share": statistics.median(shares), "forward_share_all": [round(x, 4) for x in shares],
            "bare_s": [round(t, 2) for t in t_bare], "dump_s": [round(t, 2) for t in t_dump]}


def peak_rss(model_name: str, n_tokens: int, layer: int, ctx: int, batch: int) -> dict:
    """Run the dump script in a child of a child, so ru_maxrss(RUSAGE_CHILDREN) is that dump's alone."""
    with tempfile.TemporaryDirectory() as d:
        cmd = [sys.executable, str(REPO / "scripts" / "cache_activations.py"), "--model", model_name,
               "--n_tokens", str(n_tokens), "--layer", str(layer), "--ctx", str(ctx), "--batch", str(batch),
               "--out", f"{d}/store", "--no_progress", "--device", "cpu"]
        wrapper = ("import resource, subprocess, sys, json, time; t=time.time(); "
                   f"p = subprocess.run({cmd!r}, capture_output=True, text=True); "
                   "print(json.dumps({'rc': p.returncode, 'err': p.stderr[-500:], 'out': p.stdout, 's': time.time()-t, "
                   "'maxrss': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))")
        res = json.loads(subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True,
                                        check=True).stdout)
        if res["rc"] != 0:
            raise SystemExit(f"error: the dump of {n_tokens} tokens failed: {res['err']}")
        store = Path(d) / "store"
        meta = json.loads((store / META_FILE).read_text())
        disk = sum((store / f).stat().st_size for f in (ACTS_FILE, TOKENS_FILE, META_FILE))
    kb = 1 if sys.platform != "darwin" else 1024  # ru_maxrss: kB on Linux, bytes on macOS
    n_rows = meta["n_windows"] * (meta["ctx"] - (0 if meta["keep_bos"] else 1))
    return {"n_tokens": n_tokens, "rows": n_rows, "peak_rss_mb": res["maxrss"] / kb / 1024,
            "seconds": round(res["s"], 1), "bytes_per_token": disk / n_rows, "d_model": meta["d_model"],
            "expected_bytes_per_token": 2 * meta["d_model"] + 4 * meta["ctx"] / (meta["ctx"] - 1)}


def main() -> None:
    from mechinterp.formats.defaults import DEFAULT_MODEL

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--n_tokens", type=int, default=4096, help="tokens for the throughput comparison")
    p.add_argument("--layer", type=int, default=None, help="throughput layer (default: the middle one)")
    p.add_argument("--ctx", type=int, default=128)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--rss_tokens", type=int, nargs="*", default=[25_000, 250_000])
    p.add_argument("--rss_layer", type=int, default=1)
    p.add_argument("--tag", default="", help="label stored with the results (e.g. run 1)")
    a = p.parse_args()

    tp = throughput(a.model, a.n_tokens, a.ctx, a.batch, a.repeats, a.layer)
    print(f"throughput ({tp['hook']}, stop_at_layer={tp['stop_at_layer']}, {tp['rows']} tokens): bare forward "
          f"{tp['bare_tok_s']:.0f} tok/s, dump {tp['dump_tok_s']:.0f} tok/s, ratio {tp['ratio']:.3f} (goal >= 0.9); "
          f"forward share of dump {tp['forward_share']:.3f}; bare s {tp['bare_s']}, dump s {tp['dump_s']}", flush=True)
    rss = [peak_rss(a.model, n, a.rss_layer, a.ctx, a.batch) for n in a.rss_tokens]
    growth = max(r["peak_rss_mb"] for r in rss) / min(r["peak_rss_mb"] for r in rss) - 1 if rss else 0.0
    rows = [{"measure": "throughput ratio (dump / bare forward)", "value": round(tp["ratio"], 3), "goal": ">= 0.9"},
            {"measure": "forward's share of the dump's wall time", "value": round(tp["forward_share"], 3),
             "goal": ">= 0.9"},
            {"measure": "bare forward tok/s", "value": round(tp["bare_tok_s"], 1), "goal": ""},
            {"measure": "dump tok/s", "value": round(tp["dump_tok_s"], 1), "goal": ""}]
    for r in rss:
        rows.append({"measure": f"peak RSS MB at {r['n_tokens']} tokens (layer {a.rss_layer}, {r['seconds']} s)",
                     "value": round(r["peak_rss_mb"], 1), "goal": ""})
    if rss:
        rows.append({"measure": "peak RSS growth, largest vs smallest", "value": f"{100 * growth:+.1f}%", "goal": "within 10%"})
        rows.append({"measure": "bytes on disk per token", "value": round(rss[-1]["bytes_per_token"], 1),
                     "goal": f"2 x d_model + tokens = {rss[-1]['expected_bytes_per_token']:.1f}"})
    out = write_results("dump", rows, {"model": a.model, "tag": a.tag, "throughput": tp, "rss": rss,
                                       "rss_growth": growth, "time": time.strftime("%Y-%m-%d %H:%M:%S")})
    print(f"results in {out}")


if __name__ == "__main__":
    main()
