"""Attribution graphs on the default model, as a user makes them: `mechinterp trace` on a 16-token
and a 64-token prompt (BOS included) through a transcoder set for all 30 layers, each in a child
process; the graph's time, the whole stage's time and peak RSS, the exactness check, the scores.

    python scripts/bench/bench_graph.py [--set runs/bench/transcoders/tcs]

The set is bench_transcoders.py's (run it first). Goals (issue 14): a 16-token graph <= 60 s, a
64-token graph <= 5 min, peak RSS of the 64-token run <= 6 GB; after pruning to <= 500 feature
nodes, replacement score >= 0.72 and completeness >= 0.90. Writes runs/bench/graph.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from _bench import BENCH_DIR, REPO, bench_parser, cpu_model, write_results

from mechinterp.formats.attribution_graph import GRAPH_NPZ
from mechinterp.formats.results import RESULTS
from mechinterp.formats.transcoder_set import SUMMARY

PROMPT_16 = "When Mary and John went to the store, then John gave a drink to"  # 16 tokens with BOS
PROMPT_64 = ("The old lighthouse keeper climbed the spiral stairs every evening to light the lamp. One stormy night, "
             "a small fishing boat lost its way in the fog near the rocks. The keeper saw the boat and rang the bell "
             "loudly so that the sailors could find the harbour. When the boat reached the safety of the harbour, the")


def trace(set_dir: str, prompt: str, out: Path, device: str) -> tuple[dict, float]:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mechinterp", "trace", "--set", set_dir, "--prompt", prompt, "--out", str(out),
                    "--device", device], cwd=REPO, check=True)
    return json.loads((out / RESULTS).read_text()), time.perf_counter() - t0


def main() -> None:
    p = bench_parser(__doc__)
    p.add_argument("--set", default=str(BENCH_DIR / "transcoders" / "tcs"), help="transcoder set (all layers)")
    a = p.parse_args()
    if not Path(a.set, SUMMARY).exists():
        sys.exit(f"error: no transcoder set at {a.set}; run scripts/bench/bench_transcoders.py first or pass --set")
    rows, runs = [], {}
    for name, prompt, goal_s in (("16", PROMPT_16, 60), ("64", PROMPT_64, 300)):
        out = BENCH_DIR / "graph" / f"prompt_{name}"
        if (out / GRAPH_NPZ).exists():
            (out / GRAPH_NPZ).unlink()  # time a fresh graph, not a reused one
        r, wall = trace(a.set, prompt, out, a.device)
        runs[name] = {k: r[k] for k in ("tokens", "top_logits", "n_active_features", "n_feature_rows", "graph_seconds",
                                        "exactness", "scores", "pruned", "seconds", "peak_rss_gb")}
        n = len(r["tokens"])
        rows += [dict(measure=f"{n}-token graph: attribution s", value=r["graph_seconds"], goal=f"<= {goal_s}"),
                 dict(measure=f"{n}-token: whole trace stage s (load, graph, prune, checks, page)", value=round(wall, 1), goal=""),
                 dict(measure=f"{n}-token: peak RSS GB", value=r["peak_rss_gb"], goal="<= 6" if name == "64" else ""),
                 dict(measure=f"{n}-token: active features / rows computed",
                      value=f"{r['n_active_features']} / {r['n_feature_rows']}", goal=""),
                 dict(measure=f"{n}-token: max |row sum + bias - value| / max |value|",
                      value=r["exactness"]["max_abs_residual"] / max(1.0, r["exactness"]["max_abs_value"]), goal="<= 1e-4"),
                 dict(measure=f"{n}-token: replacement / completeness (full graph)",
                      value=f"{r['scores']['replacement']:.3f} / {r['scores']['completeness']:.3f}", goal=""),
                 dict(measure=f"{n}-token: replacement / completeness, pruned to {r['pruned']['features']} features",
                      value=f"{r['scores']['pruned_replacement']:.3f} / {r['scores']['pruned_completeness']:.3f}",
                      goal=">= 0.72 / >= 0.90")]
    write_results("graph", rows, {"cpu": cpu_model(), "set": a.set, "runs": runs})


if __name__ == "__main__":
    main()
