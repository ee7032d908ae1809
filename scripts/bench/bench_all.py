"""Every benchmark in one run, then one table of the headline ratios (runs/bench/bench.json).

    python scripts/bench/bench_all.py [--only models,dump,sae,browser,ioi,live_server,transcoders,stream] [--skip_run]

Each scripts/bench/bench_<name>.py measures ours and the reference (peer library, matmul ceiling,
bare forward) side by side in the same run and writes runs/bench/<name>.json; this script runs
them one after another (so they do not compete for the cores) and gathers their `rows`.
"""

import argparse
import json
import subprocess
import sys
import time

from _bench import BENCH_DIR, REPO, print_table, write_json

BENCHES = ["models", "dump", "sae", "interventions", "browser", "labels", "ioi", "live_server", "transcoders", "stream",
           "graph", "graph_peer", "circuits", "circuits_peer", "ground_truth", "eval_suite", "saep_peer"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default=",".join(BENCHES), help="comma-separated subset of " + ",".join(BENCHES))
    p.add_argument("--skip_run", action="store_true", help="only gather the JSON files already written")
    args = p.parse_args()
    names = [n for n in args.only.split(",") if n]
    unknown = set(names) - set(BENCHES)
    if unknown:
        sys.exit(f"error: unknown benchmark(s) {sorted(unknown)}; choose from {BENCHES}")
    failed, seconds = [], {}
    for name in names if not args.skip_run else []:
        print(f"\n== bench_{name}", flush=True)
        t0 = time.perf_counter()
        if subprocess.run([sys.executable, str(REPO / "scripts" / "bench" / f"bench_{name}.py")], cwd=REPO).returncode:
            failed.append(name)
        seconds[name] = round(time.perf_counter() - t0, 1)
    table = []
    for name in names:
        path = BENCH_DIR / f"{name}.json"
        if not path.exists():
            table.append({"bench": name, "measure": "(no results)", "value": "", "goal": ""})
            continue
        for row in json.loads(path.read_text()).get("rows", []):
            table.append({"bench": name, "measure": row["measure"], "value": row["value"], "goal": row.get("goal", "")})
    print()
    print_table(table)
    write_json("bench", {"rows": table, "seconds": seconds, "failed": failed})
    if failed:
        sys.exit(f"error: bench_{', bench_'.join(failed)} failed")


if __name__ == "__main__":
    main()
