"""Data efficiency of the transcoder's starting point, at one fixed budget of tokens: no skip path, a
skip path started at 0, and a skip path started at the least-squares map from mlp_in to mlp_out
(sae_jax/data_init.py), on a sample of the default model's layers.

    python scripts/bench/bench_transcoder_init.py [--layers 0,6,11,17,23,29] [--n_tokens 30000] [--steps 300]
    python scripts/bench/bench_transcoder_init.py --only_levers [--levers "lr x 4"]   # the default, one setting changed

One paired dump of those layers, then each variant trains every layer with the same data, seed and
steps (the demo's transcoder settings); the table gives each variant's held-out FVU of mlp_out (mean
and worst over the layers) and its training time. Writes runs/bench/transcoder_init.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from _bench import BENCH_DIR, REPO, bench_parser, cpu_model, write_results

from mechinterp.formats.transcoder_set import SUMMARY

VARIANTS = {"no skip": ["--no_skip"], "skip, W_skip = 0": ["--skip_init", "zeros"],
            "skip, least squares": ["--skip_init", "lstsq"]}
"""The starting points; --levers adds the default (skip, least squares) with one setting changed."""
LEVERS = {"lr x 2": lambda lr: ["--lr", str(2 * lr)], "lr x 4": lambda lr: ["--lr", str(4 * lr)],
          "lr x 8": lambda lr: ["--lr", str(8 * lr)],
          "lr x 0.5": lambda lr: ["--lr", str(lr / 2)],
          "no warm-up or decay": lambda lr: ["--warmup_frac", "0", "--decay_frac", "0"],
          "k 64": lambda lr: ["--k", "64"], "TopK": lambda lr: ["--arch", "topk"],
          "lr x 4, dormant after 20k tokens": lambda lr: ["--lr", str(4 * lr), "--dead_tokens", "20000"],
          "lr x 4, 20% warm-up": lambda lr: ["--lr", str(4 * lr), "--warmup_frac", "0.2"]}


def main() -> None:
    p = bench_parser(__doc__)
    p.add_argument("--layers", default="0,6,11,17,23,29")
    p.add_argument("--n_tokens", type=int, default=30_000)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--d_sae", type=int, default=2048)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--work", default=str(BENCH_DIR / "transcoder_init"))
    p.add_argument("--levers", nargs="*", default=None, metavar="LEVER",
                   help=f"also the default with each of these changed (none named: all of {', '.join(LEVERS)})")
    p.add_argument("--only_levers", action="store_true", help="the levers alone (the starting points ran before)")
    a = p.parse_args()
    from sae_jax.config import TrainConfig

    lr = TrainConfig().lr_for(a.d_sae)
    variants = {} if a.only_levers else dict(VARIANTS)
    if a.levers is not None or a.only_levers:
        chosen = a.levers or list(LEVERS)
        unknown = [n for n in chosen if n not in LEVERS]
        if unknown:
            p.error(f"--levers: unknown lever {unknown[0]!r}; use some of {', '.join(LEVERS)}")
        variants |= {f"default, {name}": ["--skip_init", "lstsq", *LEVERS[name](lr)] for name in chosen}
    work = Path(a.work)
    mi = [sys.executable, "-m", "mechinterp"]
    if not (work / "pairs").exists():
        subprocess.run([*mi, "dump", "--hook", "blocks.{L}.hook_mlp_in", "--hook", "blocks.{L}.hook_mlp_out",
                        "--layers", a.layers, "--n_tokens", str(a.n_tokens), "--out", str(work / "pairs"),
                        "--no_progress"], cwd=REPO, check=True)
    rows = []
    for name, flags in variants.items():
        out = work / "".join(c if c.isalnum() else "_" for c in name)
        t0 = time.perf_counter()
        subprocess.run([*mi, "train-transcoders", "--acts", str(work / "pairs"), "--layers", a.layers, "--out", str(out),
                        "--arch", "batchtopk", "--k", str(a.k), "--d_sae", str(a.d_sae), "--steps", str(a.steps),
                        "--batch", "1024", "--no_progress", *flags], cwd=REPO, check=True)  # later flags win
        summary = json.loads((out / SUMMARY).read_text())
        fvu = {r["layer"]: r["fvu"] for r in summary["layers"]}
        l0 = [r["l0"] for r in summary["layers"]]
        rows.append(dict(variant=name, mean_fvu=round(sum(fvu.values()) / len(fvu), 4), worst_fvu=round(max(fvu.values()), 4),
                         **{f"L{L}": round(v, 3) for L, v in fvu.items()}, l0_min_max=f"{min(l0):.1f}-{max(l0):.1f}",
                         train_s=round(time.perf_counter() - t0)))
    write_results("transcoder_levers" if a.only_levers else "transcoder_init", rows,
                  dict(cpu=cpu_model(), layers=a.layers, n_tokens=a.n_tokens, steps=a.steps, tokens_per_layer=a.steps * 1024,
                       d_sae=a.d_sae, k=a.k))


if __name__ == "__main__":
    main()
