"""Benchmark the labels: the cost of the token counts in the statistics pass, and offline labels for
every latent from those statistics.

    python scripts/bench/bench_labels.py [--acts DIR] [--n_tokens 32768] [--d_sae 4096] [--stats DIR]

1. The statistics pass of a TopK SAE (k = 32, --d_sae latents) over a store (--acts, or a synthetic
   float16 store of SmolLM2's width, 576) with the token counts the labels read and without them:
   the ratio is their cost.
2. Offline labels for all --d_sae latents from those statistics (goal: <= 120 s for 4,096), and,
   with --stats, for a real statistics folder (mechinterp browse's) as well.
Writes runs/bench/labels.json.
"""

import shutil
import tempfile
import time
from pathlib import Path

from _bench import bench_parser, peak_rss_mb, print_table, write_json
from bench_browser import synthetic_sae


def main() -> None:
    from interventions.labels.offline import offline_labels
    from mechinterp.formats.feature_stats import load_feature_stats
    from sae_jax.features import FeatureStatsConfig, compute_feature_stats

    p = bench_parser(__doc__.splitlines()[0])
    p.add_argument("--acts", default=None, help="activation store (default: a synthetic one of width 576)")
    p.add_argument("--n_tokens", type=int, default=32768)
    p.add_argument("--d_sae", type=int, default=4096)
    p.add_argument("--stats", default=None, help="a real statistics folder to label as well")
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_labels_"))
    try:
        acts = Path(a.acts) if a.acts else None
        if acts is None:
            from sae_jax.synthetic import write_synthetic_store

            acts = write_synthetic_store(tmp / "store", d_in=576, n_features=2048, n_windows=-(-a.n_tokens // 127),
                                         ctx=128, active=16, dtype="float16", scale=3.0)
        sae = synthetic_sae(tmp / "sae", acts, a.d_sae, "topk")
        passes = {}
        for tokens in (0, 24, 0, 24):                      # interleaved, best of two each
            t0 = time.perf_counter()
            st = compute_feature_stats(sae, acts, FeatureStatsConfig(label_tokens=tokens, contexts=False,
                                                                     max_tokens=a.n_tokens if a.acts else None))
            passes[tokens] = min(passes.get(tokens, float("inf")), time.perf_counter() - t0)
        rows = [{"part": f"statistics pass, {'with' if k else 'without'} token counts", "latents": a.d_sae,
                 "tokens": st.summary["n_tokens"], "seconds": round(v, 2)} for k, v in passes.items()]
        labelled = [("synthetic", st.arrays)] + ([("given stats", load_feature_stats(a.stats).arrays)] if a.stats else [])
        for name, arrays in labelled:
            t0 = time.perf_counter()
            labels = offline_labels(arrays, lambda t: f"<{t}>")
            rows.append({"part": f"offline labels ({name})", "latents": len(labels), "tokens": int(arrays["n_tokens"]),
                         "seconds": round(time.perf_counter() - t0, 2)})
        print_table(rows)
        headline = [{"measure": "statistics pass with token counts / without", "value": passes[24] / passes[0], "goal": ""}]
        headline += [{"measure": f"{r['part']}: seconds for {r['latents']} latents", "value": r["seconds"], "goal": "<= 120"}
                     for r in rows if r["part"].startswith("offline")]
        write_json("labels", {"rows": headline, "detail": rows, "peak_rss_mb": peak_rss_mb(),
                              "store": str(a.acts or "synthetic")})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
