"""The SAE evaluation suite on real SAEs (issue 16): TopK, BatchTopK, Matryoshka (BatchTopK and
TopK selection) and JumpReLU trained on the same SmolLM2 store at the same width, each evaluated
with `eval-sae --suite full` (core, CE loss, sparse probing, absorption), and the comparison page.

    python scripts/bench/bench_eval_suite.py [--layer 15] [--tokens 400000] [--d_sae 4096] [--k 32] [--seeds 1]

--seeds N trains each architecture N times (seeds seed..seed+N-1; the extra ones in OUT/<arch>_seedS)
and reports the sparse-probing gap (SAE top-1 - best raw dimension) per labelled set with its
spread over the SAE seeds; the extra seeds run the core and probing metrics only.

The store, each SAE and each SAE's metrics resume where they stopped (a finished part is reused).
The SAEs are evaluated in one process, so the model reads each labelled text and word once; the
first SAE's suite time includes those forwards, the others' only the SAE's side. Goals: Matryoshka's
absorption <= half of TopK's at the same L0 and width with FVU no more than 10% worse; the best
SAE's top-1 probing accuracy >= the best single raw dimension's on every labelled set.
Writes runs/bench/eval_suite.json (runs/bench/<name of --out>.json) and OUT/compare/compare.html.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from _bench import BENCH_DIR, PEER_ENV, REPO, bench_parser, cpu_model, peak_rss_mb, write_results
from bench_ground_truth import matryoshka_widths

from mechinterp.formats.sae import METRICS

ARCHS = {"topk": dict(arch="topk"), "batchtopk": dict(arch="batchtopk"),
         "matryoshka": dict(arch="batchtopk", matryoshka="auto"),
         "matryoshka_topk": dict(arch="topk", matryoshka="auto"), "jumprelu": dict(arch="jumprelu")}


def store(model, layer: int, tokens: int, out: Path) -> Path:
    from extract.dump import DumpConfig, dump_activations

    (result,) = dump_activations(DumpConfig(model=model.name, hooks=(f"blocks.{layer}.hook_resid_pre",),
                                            n_tokens=tokens, out=str(out), corpus="bbc"), model=model)
    return result.path


def train(name: str, acts: Path, out: Path, d_sae: int, k: int, steps: int, seed: int) -> Path:
    from sae_jax.config import TrainConfig
    from sae_jax.pipeline import train_sae

    kw = dict(ARCHS[name], d_sae=d_sae, k=k)
    if kw.get("matryoshka") == "auto":
        kw["matryoshka"] = matryoshka_widths(d_sae)
    if not (out / "sae" / METRICS).exists():
        train_sae(acts, out, kw, TrainConfig(steps=steps, batch=1024, eval_tokens=20_000, seed=seed))
    return out / "sae"


def saebench_peer(model, sae_dir: Path, cfg, out: Path) -> dict:
    """SAEBench's own probing code (.venv-bench-saebench) on the pooled features our suite probed:
    {set: {metric: (ours, SAEBench's)}}. Negatives are drawn by each side's own RNG."""
    import subprocess

    import numpy as np

    from interventions.evals.labelled import load_labelled
    from interventions.evals.probing import pooled_features
    from interventions.sae import load_sae

    sae, ours = load_sae(sae_dir), json.loads((sae_dir / METRICS).read_text())["probing"]
    arrays = {}
    for name in cfg.probe_sets.split(","):
        data = load_labelled(name, cfg.n_probe_train, cfg.n_probe_test, cfg.seed)
        (raw_tr, lat_tr), (raw_te, lat_te) = (pooled_features(model, sae, t, sae.hook_name, cfg.probe_ctx)
                                              for t in (data.train_texts, data.test_texts))
        arrays.update({f"{name}/train_raw": raw_tr, f"{name}/test_raw": raw_te, f"{name}/train_lat": lat_tr,
                       f"{name}/test_lat": lat_te, f"{name}/train_y": data.train_y, f"{name}/test_y": data.test_y,
                       f"{name}/classes": np.array(data.classes)})
    np.savez(out / "peer_features.npz", **arrays)
    peer_py = REPO / ".venv-bench-saebench" / "bin" / "python"
    subprocess.run([str(peer_py), str(REPO / "scripts/bench/peers/saebench_probing.py"), str(out / "peer_features.npz"),
                    str(out / "peer_saebench.json")], check=True, env=PEER_ENV)
    theirs = json.loads((out / "peer_saebench.json").read_text())
    (out / "peer_features.npz").unlink()
    return {s: {k: (ours[s][k], v) for k, v in theirs[s].items() if k in ours[s]} for s in ours if s in theirs}


def probing_gap_spread(sae_dirs: list[Path]) -> dict:
    """{set: {mean, sd, gaps}}: SAE top-1 - best raw dimension's top-1 accuracy, over SAEs of one
    architecture trained with different seeds (the probes' own seed is the same for all)."""
    import numpy as np

    runs = [json.loads((d / METRICS).read_text())["probing"] for d in sae_dirs]
    sets = [s for s in runs[0] if s != "mean" and isinstance(runs[0][s], dict) and "sae_top_1" in runs[0][s]]
    out = {}
    for s in sets + ["mean"]:
        gaps = [r[s]["sae_top_1"] - r[s]["llm_top_1"] for r in runs]
        out[s] = {"mean": round(float(np.mean(gaps)), 4), "sd": round(float(np.std(gaps, ddof=1)), 4)
                  if len(gaps) > 1 else 0.0, "gaps": [round(g, 4) for g in gaps]}
    return out


def main() -> None:
    p = bench_parser(__doc__.splitlines()[0])
    p.add_argument("--layer", type=int, default=15)
    p.add_argument("--tokens", type=int, default=400_000)
    p.add_argument("--d_sae", type=int, default=4096)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--archs", default=",".join(ARCHS))
    p.add_argument("--seeds", type=int, default=1, help="SAE seeds per architecture (the probing gap's spread)")
    p.add_argument("--rerun", default="", help="metrics to recompute on every SAE (e.g. probing); the rest resume")
    p.add_argument("--out", default=str(BENCH_DIR / "eval_suite"))
    p.add_argument("--acts", default=None, help="an existing store to train on (default: dump one into OUT/acts)")
    a = p.parse_args()
    from _bench import bench_model

    from interventions.evals.suite import SuiteConfig, run_suite
    from interventions.sae import load_sae
    from mechinterp.views.sae_pages import summary, write_comparison, write_sae_page

    out = Path(a.out)
    model = bench_model(a.model)
    acts = Path(a.acts) if a.acts else store(model, a.layer, a.tokens, out / "acts")
    rows, timings, dirs, seed_dirs = [], {}, [], {}
    for name in a.archs.split(","):
        sae_dir = train(name, acts, out / name, a.d_sae, a.k, a.steps, a.seed)
        t0 = time.perf_counter()
        sae = load_sae(sae_dir)
        if a.rerun:
            run_suite(SuiteConfig(sae=str(sae_dir), metrics=a.rerun, rerun=True, seed=a.seed), model, sae)
        run_suite(SuiteConfig(sae=str(sae_dir), suite="full", seed=a.seed), model, sae)
        timings[name] = round(time.perf_counter() - t0, 1)
        write_sae_page(sae_dir)
        dirs.append(sae_dir)
        for extra in range(1, a.seeds):
            seed_dir = train(name, acts, out / f"{name}_seed{extra}", a.d_sae, a.k, a.steps, a.seed + extra)
            run_suite(SuiteConfig(sae=str(seed_dir), metrics="core,probing", seed=a.seed), model, load_sae(seed_dir))
            seed_dirs.setdefault(name, [sae_dir]).append(seed_dir)
    pages = write_comparison(dirs, out / "compare")
    table = {Path(r["sae"]).parent.name: r for r in (summary(d) for d in dirs)}
    for name, r in table.items():
        m = json.loads((Path(r["sae"]) / METRICS).read_text())
        rows.append(dict(measure=f"{name}: L0 / EV typical / FVU", value=f"{r['l0']:.1f} / {r['explained_variance_typical']:.3f}"
                         f" / {r['fvu']:.4f}", goal=""))
        rows.append(dict(measure=f"{name}: CE-loss recovered / KL", value=f"{r['ce_loss_recovered']:.3f} / {r['kl']:.3f}", goal=""))
        rows.append(dict(measure=f"{name}: absorption fraction / full rate (letters)",
                         value=f"{r['absorption']} / {r['full_absorption']} ({m['absorption']['letters_evaluated']})",
                         goal=""))
        rows.append(dict(measure=f"{name}: probing top-1 SAE / raw, mean of sets",
                         value=f"{m['probing']['mean']['sae_top_1']:.3f} / {m['probing']['mean']['llm_top_1']:.3f}",
                         goal=">= raw on every set"))
    if "matryoshka" in table and "topk" in table:
        mt, tk = table["matryoshka"], table["topk"]
        rows.append(dict(measure="Matryoshka / TopK absorption fraction", value=round(mt["absorption"] / tk["absorption"], 3)
                         if tk["absorption"] else None, goal="<= 0.5"))
        rows.append(dict(measure="Matryoshka / TopK FVU", value=round(mt["fvu"] / tk["fvu"], 3), goal="<= 1.10"))
    spread = {name: probing_gap_spread(ds) for name, ds in seed_dirs.items()}
    for name, per_set in spread.items():
        rows.append(dict(measure=f"{name}: probing top-1 gap SAE - raw, mean +- sd over {a.seeds} SAE seeds",
                         value=", ".join(f"{s} {g['mean']:+.3f} +- {g['sd']:.3f}" for s, g in per_set.items()),
                         goal="SAEBench Pythia-70M: +0.014"))
    peer = {}
    if (REPO / ".venv-bench-saebench" / "bin" / "python").exists() and "topk" in table:
        peer = saebench_peer(model, out / "topk" / "sae", SuiteConfig(sae=str(out / "topk" / "sae")), out)
        gaps = [abs(a - b) for per in peer.values() for a, b in per.values()]
        rows.append(dict(measure="SAEBench 0.6.0's probing on our features (topk): max |ours - theirs| over sets and k",
                         value=round(max(gaps), 3), goal="within sampling (negatives drawn apart)"))
    rows.append(dict(measure="suite seconds per SAE (first includes the model's forwards)", value=str(timings),
                     goal="<= 600 (16k SAE)"))
    write_results(out.name, rows, dict(cpu=cpu_model(), peak_rss_mb=round(peak_rss_mb()), saes=list(table.values()),
                                           timings_s=timings, saebench_peer=peer, probing_gap_over_seeds=spread,
                                           compare=str(pages["html"]),
                                           layer=a.layer, tokens=a.tokens,
                                           d_sae=a.d_sae, k=a.k, steps=a.steps))


if __name__ == "__main__":
    main()
