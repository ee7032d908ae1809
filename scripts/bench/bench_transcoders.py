"""Transcoders for every layer of the default model, end to end, as a user runs them: one paired
dump of all layers, a transcoder per layer, the replacement model. Each stage is a child process
(`mechinterp ...`), timed, with its peak RSS.

    python scripts/bench/bench_transcoders.py [--n_tokens 60000] [--steps 400] [--d_sae 4096] [--k 32]

Goals (issue 14): held-out FVU of mlp_out <= 0.15 averaged over layers and <= 0.25 in the worst;
CE-loss recovered >= 0.75 with every layer replaced at once (no error terms); the whole stage
(dump + train, 30 layers) <= 60 min on this CPU. Writes runs/bench/transcoders.json.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from _bench import BENCH_DIR, REPO, bench_parser, cpu_model, write_results

from mechinterp.formats.transcoder_set import SUMMARY


def child(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB of the largest child so far) of `mechinterp argv`."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mechinterp", *argv], cwd=REPO, check=True)
    return time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    p = bench_parser(__doc__)
    p.add_argument("--n_tokens", type=int, default=60_000)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--d_sae", type=int, default=4096)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--work", default=str(BENCH_DIR / "transcoders"), help="where the stores and transcoders go")
    a = p.parse_args()
    work = Path(a.work)
    dump_s, dump_rss = child(["dump", "--model", a.model, "--hook", "blocks.{L}.hook_mlp_in", "--hook",
                              "blocks.{L}.hook_mlp_out", "--n_tokens", str(a.n_tokens), "--out", str(work / "pairs"),
                              "--no_progress"])
    train_s, train_rss = child(["train-transcoders", "--acts", str(work / "pairs"), "--out", str(work / "tcs"),
                                "--arch", "topk", "--k", str(a.k), "--d_sae", str(a.d_sae), "--steps", str(a.steps),
                                "--batch", str(a.batch), "--eval_tokens", "20000", "--no_progress"])
    eval_s, eval_rss = child(["eval-transcoders", "--set", str(work / "tcs"), "--n_windows", "16", "--device", "cpu"])
    tc = json.loads((work / "tcs" / SUMMARY).read_text())
    rep = json.loads((work / "tcs" / "replacement.json").read_text())
    per_layer = [r["ce_loss_recovered"] for r in rep["per_layer"]]
    write_results("transcoders", [
        {"measure": "mean held-out FVU of mlp_out over layers", "value": tc["mean_fvu"], "goal": "<= 0.15"},
        {"measure": "worst layer's held-out FVU", "value": tc["worst_fvu"], "goal": "<= 0.25"},
        {"measure": "CE-loss recovered, every layer replaced, no error terms", "value": rep["ce_loss_recovered"],
         "goal": ">= 0.75"},
        {"measure": "CE-loss recovered, one layer replaced (median over layers)",
         "value": sorted(per_layer)[len(per_layer) // 2], "goal": ""},
        {"measure": "dump + train wall time, min", "value": (dump_s + train_s) / 60, "goal": "<= 60"},
        {"measure": "peak RSS of the dump / training / evaluation, MB", "value": f"{dump_rss:.0f} / {train_rss:.0f} / "
                                                                                 f"{eval_rss:.0f}", "goal": ""},
    ], dict(settings=vars(a), dump_s=dump_s, train_s=train_s, eval_s=eval_s, cpu=cpu_model(), layers=tc["layers"],
            replacement=rep))


if __name__ == "__main__":
    main()
