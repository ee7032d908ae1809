"""Benchmark: full residual-stream (resid_pre) layer x position patching sweep, batched
(patching.run_copies: growing batch, many patches per forward) vs one forward per patch.

Variants timed: stacked (k copies from the embedding on), growing (copies join the batch at
their layer; the default), growing + suffix (copies patched at position p also run on
tokens[p:] only, with the base run's cached keys/values for the prefix).

    python scripts/bench_ioi.py [--model smollm2-135m-q4] [--device auto] [--n_prompts 8] [--out runs/bench/ioi.json]

Both paths compute only the end position's logits and agree to float precision (checked).
transformer-lens is not part of our environment; its `patching` helpers are compared only
when it is importable (a separate bench venv), otherwise the report says it was skipped.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    from extract.models import DEFAULT_MODEL

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--n_prompts", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max_rows", type=int, default=1024)
    ap.add_argument("--naive_cells", type=int, default=0,
                    help="time only this many one-forward-per-patch cells (spread over the grid) and scale up; 0 = all")
    ap.add_argument("--out", default="runs/bench/ioi.json")
    args = ap.parse_args(argv)
    if args.n_prompts < 1 or args.naive_cells < 0:
        print("error: --n_prompts must be >= 1 and --naive_cells >= 0", file=sys.stderr)
        return 2

    import torch

    from extract.ioi import patching as P
    from extract.ioi.prompts import make_ioi
    from extract.models import ModelLoadError, load_model

    try:
        model = load_model(args.model, device=args.device)
    except ModelLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    ds = make_ioi(model, args.n_prompts, seed=args.seed)
    metric = P.ld_metric(ds.io_tok, ds.s_tok)
    cache = P.cache_sites(model, ds.tokens, ["hook_resid_pre"])
    L, T = model.n_layers, ds.tokens.shape[1]
    copies = P.resid_edits(range(L), range(T))
    sync = torch.cuda.synchronize if model.device.type == "cuda" else (lambda: None)
    P.run_copies(model, ds.s2_swap.tokens, copies[:4], cache, metric)  # warm-up

    sync()
    t0 = time.perf_counter()
    batched = P.run_copies(model, ds.s2_swap.tokens, copies, cache, metric, max_rows=args.max_rows)
    sync()
    t_batched = time.perf_counter() - t0

    t0 = time.perf_counter()
    P.run_copies(model, ds.s2_swap.tokens, copies, cache, metric, max_rows=args.max_rows, suffix=True)
    sync()
    t_suffix = time.perf_counter() - t0

    t0 = time.perf_counter()
    stacked = P.run_copies(model, ds.s2_swap.tokens, copies, cache, metric, max_rows=args.max_rows, grow=False)
    sync()
    t_stacked = time.perf_counter() - t0

    cells = list(range(len(copies)))
    if args.naive_cells and args.naive_cells < len(copies):
        step = len(copies) / args.naive_cells
        cells = [int(i * step) for i in range(args.naive_cells)]
    t0 = time.perf_counter()
    naive = {j: P.run_one(model, ds.s2_swap.tokens, copies[j], cache, metric) for j in cells}
    sync()
    t_naive = (time.perf_counter() - t0) * len(copies) / len(cells)
    err = max(float((batched["per_prompt"][j] - v).abs().max()) for j, v in naive.items())
    err_stacked = float((stacked["per_prompt"] - batched["per_prompt"]).abs().max())

    clean = float(metric(P.forward_end(model, ds.tokens)).mean())
    corrupt = float(metric(P.forward_end(model, ds.s2_swap.tokens)).mean())
    report = {
        "model": model.name, "device": str(model.device), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "machine": platform.platform(),
        "n_prompts": args.n_prompts, "seq_len": T, "cells": len(copies), "max_rows": args.max_rows,
        "batched_growing_s": round(t_batched, 2), "batched_growing_suffix_s": round(t_suffix, 2), "batched_stacked_s": round(t_stacked, 2),
        "one_forward_per_patch_s": round(t_naive, 2),
        "one_forward_per_patch_cells_timed": len(cells),
        "ratio_naive_over_batched": round(t_naive / t_batched, 2),
        "ratio_naive_over_stacked": round(t_naive / t_stacked, 2),
        "ratio_naive_over_growing_suffix": round(t_naive / t_suffix, 2),
        "max_abs_diff_logit_diff": err, "max_abs_diff_stacked_vs_grown": err_stacked,
        "max_abs_diff_normalised": err / abs(clean - corrupt),
        "transformer_lens": _transformer_lens_note(),
    }
    report["rows"] = [  # the headline rows that scripts/bench_all.py gathers
        {"measure": "residual layer x position sweep: one forward per patch / batched (growing, default)",
         "value": report["ratio_naive_over_batched"], "goal": ">= 5"},
        {"measure": "the same with the suffix mode (skips unchanged early positions)",
         "value": report["ratio_naive_over_growing_suffix"], "goal": ">= 5"},
        {"measure": "transformer-lens patching helpers", "value": "not measured", "goal": ""},
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"{model.name} on {model.device} ({report['threads']} threads), {args.n_prompts} prompts x {T} positions, "
          f"{L} layers = {len(copies)} patches")
    print(f"  one forward per patch : {t_naive:8.2f} s" + (f"  (timed {len(cells)} cells, scaled)" if len(cells) < len(copies) else ""))
    print(f"  batched, stacked      : {t_stacked:8.2f} s   x{t_naive / t_stacked:.1f}")
    print(f"  batched, growing+suffix:{t_suffix:8.2f} s   x{t_naive / t_suffix:.1f}")
    print(f"  batched, growing      : {t_batched:8.2f} s   x{t_naive / t_batched:.1f}   (max |diff| {err:.2e} logits)")
    print(f"  transformer-lens      : {report['transformer_lens']}")
    print(f"wrote {out}")
    return 0


def _transformer_lens_note() -> str:
    try:
        import transformer_lens  # noqa: F401
    except ImportError:
        return ("skipped: transformer-lens is not installed in this environment (it is a reference, never a "
                "runtime dependency); install it in a separate bench venv to compare")
    return ("skipped: transformer-lens is importable but this model (a local GGUF conversion) is not wired "
            "into its loader here")


if __name__ == "__main__":
    sys.exit(main())
