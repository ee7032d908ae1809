"""Ground truth (issue 16): every architecture trained on the same synthetic world with known
features, scored by how many of them it recovers (sae_jax/evals/ground_truth.py), at equal
width and L0.

    python scripts/bench/bench_ground_truth.py [--setting hard|small] [--steps 2000] [--batch 2048]

The hard default (sae_jax.ground_truth.GroundTruthConfig()): 4096 true features in 256
dimensions (16x superposition), Zipf rates 0.4 .. 5e-4, a 64-tree hierarchy with mutually
exclusive children, low-rank correlations. Goal: Matryoshka's MCC >= TopK's. Each run resumes
from its checkpoints and a finished one is reused. Writes runs/bench/ground_truth.json (the small
setting: ground_truth_small.json) and runs/bench/ground_truth/<setting>/mcc.png.
"""

from __future__ import annotations

import json
from pathlib import Path

from _bench import BENCH_DIR, bench_parser, cpu_model, peak_rss_mb, write_results

from mechinterp.formats.sae import CFG, METRICS

# the k-controlled architectures, so every SAE has the same L0 (relu's L1 and jumprelu's L0 penalty
# would need a search per world to land on it). "_capped": at most k latents per token in training
# (k_max = k) instead of batchtopk's default 4k.
ARCHS = {"topk": dict(arch="topk"), "batchtopk": dict(arch="batchtopk"), "batchtopk_capped": dict(arch="batchtopk", k_max="k"),
         "matryoshka": dict(arch="batchtopk", matryoshka="auto"),
         "matryoshka_capped": dict(arch="batchtopk", k_max="k", matryoshka="auto")}


def matryoshka_widths(d_sae: int) -> tuple[int, ...]:
    """Prefixes at 1/16 and 1/4 of the dictionary (Bussmann et al. use a few geometric levels)."""
    return (d_sae // 16, d_sae // 4)


def run_one(name: str, store: Path, out: Path, d_sae: int, k: int, steps: int, batch: int, lr: float | None,
            seed: int) -> dict:
    from mechinterp.formats.sae import load_export
    from sae_jax.config import TrainConfig
    from sae_jax.pipeline import train_sae

    kw = dict(ARCHS[name], d_sae=d_sae, k=k)
    if kw.get("k_max") == "k":
        kw["k_max"] = k
    if kw.get("matryoshka") == "auto":
        kw["matryoshka"] = matryoshka_widths(d_sae)
    if not (out / "sae" / METRICS).exists():
        train_sae(store, out, kw, TrainConfig(steps=steps, batch=batch, eval_tokens=20_000, lr=lr, seed=seed))
    metrics = json.loads((out / "sae" / METRICS).read_text())
    cfg = json.loads((out / "sae" / CFG).read_text())
    return dict(weights=load_export(out / "sae"), train=metrics, wall_s=cfg["mechinterp"].get("wall_s"))


def main() -> None:
    p = bench_parser(__doc__)
    p.add_argument("--setting", choices=("hard", "small"), default="hard")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=2048)
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: the trainer's, by width)")
    p.add_argument("--width", type=float, default=1.0, help="d_sae as a multiple of the true feature count")
    p.add_argument("--archs", default=",".join(ARCHS))
    p.add_argument("--eval_samples", type=int, default=20_000)
    p.add_argument("--seeds", type=int, default=1, help="train each SAE with this many seeds: metrics as mean +- std, "
                                                         "and how alike the seeds' dictionaries are")
    p.add_argument("--work", default=str(BENCH_DIR / "ground_truth"))
    a = p.parse_args()

    from mechinterp.formats.store import open_store
    from sae_jax.evals.ground_truth import fresh_samples, ground_truth_metrics
    from sae_jax.evals.stability import cross_seed, spread
    from sae_jax.ground_truth import SMALL, GroundTruthConfig, from_store, write_store

    work = Path(a.work) / a.setting
    cfg = SMALL if a.setting == "small" else GroundTruthConfig()
    store = write_store(work / "store", cfg, n_windows=max(64, a.steps * a.batch // 128 // 4), ctx=129,
                        progress=True)
    gt = from_store(open_store(store).meta)
    world = gt.stats()
    k = max(1, round(world["l0"]))
    d_sae = int(cfg.n_features * a.width)
    print(f"world: {json.dumps(world)}; SAEs: d_sae {d_sae}, k {k}", flush=True)
    table = []
    keys = ["mcc", "recovered", "feature_f1", "latent_f1", "uniqueness", "l0", "explained_variance", "shrinkage", "dead",
            "wall_s"]
    for name in a.archs.split(","):
        runs, decoders = [], []
        for seed in range(a.seeds):
            r = run_one(name, store, work / (name if seed == 0 else f"{name}_s{seed}"), d_sae, k, a.steps, a.batch,
                        a.lr, seed)
            m = ground_truth_metrics(*r["weights"], gt.features, fresh_samples(gt, a.eval_samples))
            runs.append(dict(m, dead=r["train"]["dead"], wall_s=r["wall_s"]))
            decoders.append(r["weights"][0]["W_dec"])
        table.append(dict(arch=name, **spread(runs, keys), **(cross_seed(decoders) if a.seeds > 1 else {})))
    by = {r["arch"]: r for r in table}
    rows = [dict(measure=f"{r['arch']}: MCC / recovered (cos >= 0.9) / feature F1" + (f", {a.seeds} seeds" if a.seeds > 1 else ""),
                 value=" / ".join(f"{r[key]:.3f}" + (f" +- {r[key + '_std']:.3f}" if a.seeds > 1 else "")
                                  for key in ("mcc", "recovered", "feature_f1")), goal="") for r in table]
    rows += [dict(measure=f"{r['arch']}: cross-seed MCC of the dictionaries", value=f"{r['cross_seed_mcc']:.3f}", goal="")
             for r in table if a.seeds > 1]
    if "matryoshka" in by and "topk" in by:
        rows.append(dict(measure="Matryoshka MCC - TopK MCC", value=round(by["matryoshka"]["mcc"] - by["topk"]["mcc"], 4),
                         goal=">= 0"))
    _plot(table, work / "mcc.png", f"{cfg.n_features} true features in {cfg.d} dims, d_sae {d_sae}, L0 ~{k}")
    name = "ground_truth" if a.setting == "hard" else "ground_truth_small"
    write_results(name, rows, dict(per_arch=table, world=world, setting=a.setting, d_sae=d_sae, k=k, steps=a.steps,
                                   batch=a.batch, seeds=a.seeds, cpu=cpu_model(), peak_rss_mb=peak_rss_mb()))


def _plot(table: list[dict], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    keys = ["mcc", "recovered", "feature_f1", "latent_f1", "explained_variance"]
    x = np.arange(len(table))
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for i, key in enumerate(keys):
        ax.bar(x + (i - 2) * 0.16, [r[key] for r in table], 0.16, label=key,
               yerr=[r.get(f"{key}_std", 0) for r in table], capsize=2)   # the spread over seeds, if several
    ax.set_xticks(x, [r["arch"] for r in table])
    ax.set_ylim(0, 1.05)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
