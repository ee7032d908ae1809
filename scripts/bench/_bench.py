"""Timing helpers shared by the scripts/bench/bench_*.py benchmarks and the peers' side (scripts/bench/peers/),
which runs in other environments: standard library only."""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

BENCH_DIR = Path("runs/bench")


def time_call(fn: Callable[[], object], repeats: int = 5, warmup: int = 1, best: bool = False) -> float:
    """Median (or, with best=True, fastest) wall seconds of fn() over `repeats` runs after
    `warmup` runs (which also pay for compilation)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) if best else statistics.median(times)


def add_batch_flags(p) -> None:
    """The forward-pass benchmarks' shared flags: tokens per forward (batch x ctx) and repeats."""
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--ctx", type=int, default=128)
    p.add_argument("--repeats", type=int, default=5)


def bench_model(name: str):
    """The model on the CPU with torch's threads fixed at 2, as every number in the README."""
    import torch

    from extract.models import load_model

    torch.set_num_threads(2)
    return load_model(name, device="cpu")


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB. Linux's VmHWM belongs to the address
    space, so unlike ru_maxrss it does not inherit the parent's peak across fork+exec."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def cpu_model() -> str:
    """The CPU's model name (lscpu's "Model name"), recorded beside every ratio."""
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    import platform

    return platform.processor() or platform.machine()


def print_table(rows: list[dict]) -> None:
    """Rows are dicts with the same keys; printed as aligned columns."""
    keys = list(rows[0])
    widths = [max(len(k), *(len(_fmt(r[k])) for r in rows)) for k in keys]
    print("  ".join(k.ljust(w) for k, w in zip(keys, widths)))
    for r in rows:
        print("  ".join(_fmt(r[k]).ljust(w) for k, w in zip(keys, widths)))


def write_json(name: str, payload: dict) -> Path:
    """runs/bench/<name>.json. Its `rows` ({measure, value, goal}) are what bench_all.py gathers."""
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    path = BENCH_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    print(f"wrote {path}")
    return path


def write_results(name: str, rows: list[dict], extra: dict | None = None) -> Path:
    print_table(rows)
    return write_json(name, {"rows": rows, **(extra or {})})


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.0f}"
    return str(v)


PEER_ENV = dict(os.environ, PYTHONPATH=str(Path(__file__).parent))
"""Environment of a peer script (scripts/bench/peers/, run by a peer's own interpreter): it imports
_bench, which is standard library only."""

REPO = Path(__file__).resolve().parents[2]


def bench_parser(description: str):
    """The flags every benchmark shares with the stages: --model, --device, --seed."""
    import argparse

    from mechinterp.formats.defaults import DEFAULT_MODEL

    p = argparse.ArgumentParser(description=description)
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"registry name, hub id or local dir (default {DEFAULT_MODEL})")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps")
    p.add_argument("--seed", type=int, default=0)
    return p
