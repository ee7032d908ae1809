"""The SAE evaluation suite on real SAEs (issue 16): TopK, BatchTopK, Matryoshka (BatchTopK and
TopK selection) and JumpReLU trained on the same SmolLM2 store at the same width, each evaluated
with `eval-sae --suite full` (core, CE loss, sparse probing, absorption), and the comparison page.

    python scripts/bench/bench_eval_suite.py [--layer 15] [--tokens 400000] [--d_sae 4096] [--k 32]

The store, each SAE and each SAE's metrics resume where they stopped (a finished part is reused).
The SAEs are evaluated in one process, so the model reads each labelled text and word once; the
first SAE's suite time includes those forwards, the others' only the SAE's side. Goals: Matryoshka's
absorption <= half of TopK's at the same L0 and width with FVU no more than 10% worse; the best
SAE's top-1 probing accuracy >= the best single raw dimension's on every labelled set.
Writes runs/bench/eval_suite.json and runs/bench/eval_suite/compare/compare.html.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from _bench import BENCH_DIR, bench_parser, cpu_model, peak_rss_mb, write_results
from bench_ground_truth import matryoshka_widths

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
    if not (out / "sae" / "metrics.json").exists():
        train_sae(acts, out, kw, TrainConfig(steps=steps, batch=1024, eval_tokens=20_000, seed=seed))
    return out / "sae"


def main() -> None:
    p = bench_parser(__doc__.splitlines()[0])
    p.add_argument("--layer", type=int, default=15)
    p.add_argument("--tokens", type=int, default=400_000)
    p.add_argument("--d_sae", type=int, default=4096)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--archs", default=",".join(ARCHS))
    p.add_argument("--out", default=str(BENCH_DIR / "eval_suite"))
    a = p.parse_args()
    from _bench import bench_model

    from interventions.evals.suite import SuiteConfig, run_suite
    from interventions.sae import load_sae
    from mechinterp.sae_pages import summary, write_comparison, write_sae_page

    out = Path(a.out)
    model = bench_model(a.model)
    acts = store(model, a.layer, a.tokens, out / "acts")
    rows, timings, dirs = [], {}, []
    for name in a.archs.split(","):
        sae_dir = train(name, acts, out / name, a.d_sae, a.k, a.steps, a.seed)
        t0 = time.perf_counter()
        run_suite(SuiteConfig(sae=str(sae_dir), suite="full", seed=a.seed), model, load_sae(sae_dir))
        timings[name] = round(time.perf_counter() - t0, 1)
        write_sae_page(sae_dir)
        dirs.append(sae_dir)
    pages = write_comparison(dirs, out / "compare")
    table = {Path(r["sae"]).parent.name: r for r in (summary(d) for d in dirs)}
    for name, r in table.items():
        m = json.loads((Path(r["sae"]) / "metrics.json").read_text())
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
    rows.append(dict(measure="suite seconds per SAE (first includes the model's forwards)", value=str(timings),
                     goal="<= 600 (16k SAE)"))
    write_results("eval_suite", rows, dict(cpu=cpu_model(), peak_rss_mb=round(peak_rss_mb()), saes=list(table.values()),
                                           timings_s=timings, compare=str(pages["html"]), layer=a.layer, tokens=a.tokens,
                                           d_sae=a.d_sae, k=a.k, steps=a.steps))


if __name__ == "__main__":
    main()
