"""Benchmark: full residual-stream (resid_pre) layer x position patching sweep, batched
(patching.run_copies: growing batch, many patches per forward) vs one forward per patch.

Variants timed: stacked (k copies from the embedding on), growing (copies join the batch at
their layer), growing + suffix (copies patched at position p also run on tokens[p:] only, with
the base run's cached keys/values for the prefix), and the default: growing + suffix, with the
cells whose clean source equals the corrupted activation bit for bit (before S2, and the
embedding after it, for S2-swap) not run at all.

    python scripts/bench/bench_ioi.py [--model smollm2-135m-q4] [--device auto] [--n_prompts 8] [--corruption s2_swap|abc]
                                [--out runs/bench/ioi.json]

Both paths compute only the end position's logits and agree to float precision (checked).
transformer-lens 4.3 is not part of our environment: when its bench venv exists (.venv-bench-tl,
`make peers`), scripts/bench/peers/ioi_patching.py runs its `patching.get_act_patch_resid_pre` on the
same model (a TransformerBridge over the same HF weights, no weight processing) and prompts in a
child process; the report gives its time, the ratio to ours and the largest difference between
the two [layer, position] maps of the normalised logit difference.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bench import PEER_ENV

ROOT = Path(__file__).resolve().parents[2]
PEER_PYTHON = ROOT / ".venv-bench-tl" / "bin" / "python"


def main(argv=None) -> int:
    from mechinterp.formats.defaults import DEFAULT_MODEL

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--n_prompts", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max_rows", type=int, default=1024)
    ap.add_argument("--corruption", default="s2_swap", choices=["s2_swap", "abc"])
    ap.add_argument("--naive_cells", type=int, default=0,
                    help="time only this many one-forward-per-patch cells (spread over the grid) and scale up; 0 = all")
    ap.add_argument("--out", default="runs/bench/ioi.json")
    args = ap.parse_args(argv)
    if args.n_prompts < 1 or args.naive_cells < 0:
        print("error: --n_prompts must be >= 1 and --naive_cells >= 0", file=sys.stderr)
        return 2

    import torch

    from extract import patching as P
    from extract.ioi.metrics import ld_metric
    from extract.ioi.prompts import make_ioi
    from extract.models import ModelLoadError, load_model

    try:
        model = load_model(args.model, device=args.device)
    except ModelLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    ds = make_ioi(model, args.n_prompts, seed=args.seed)
    metric = ld_metric(ds.io_tok, ds.s_tok)
    corrupted = ds.corrupted(args.corruption).tokens
    cache = P.cache_sites(model, ds.tokens, ["hook_resid_pre"])
    L, T = model.n_layers, ds.tokens.shape[1]
    copies = P.resid_edits(range(L), range(T))
    sync = torch.cuda.synchronize if model.device.type == "cuda" else (lambda: None)
    P.run_copies(model, corrupted, copies[:4], cache, metric)  # warm-up

    modes = {  # name -> run_copies options; the first is the library default
        "default": {},
        "growing+suffix": dict(skip_unchanged=False),
        "growing": dict(suffix=False, skip_unchanged=False),
        "stacked": dict(grow=False, suffix=False, skip_unchanged=False),
    }
    runs, secs = {}, {}
    for mode, kw in modes.items():
        sync()
        t0 = time.perf_counter()
        runs[mode] = P.run_copies(model, corrupted, copies, cache, metric, max_rows=args.max_rows, **kw)
        sync()
        secs[mode] = time.perf_counter() - t0
    batched = runs["default"]

    cells = list(range(len(copies)))
    if args.naive_cells and args.naive_cells < len(copies):
        step = len(copies) / args.naive_cells
        cells = [int(i * step) for i in range(args.naive_cells)]
    t0 = time.perf_counter()
    naive = {j: P.run_one(model, corrupted, copies[j], cache, metric) for j in cells}
    sync()
    t_naive = (time.perf_counter() - t0) * len(copies) / len(cells)
    err = max(float((batched["per_prompt"][j] - v).abs().max()) for j, v in naive.items())
    err_modes = max(float((r["per_prompt"] - batched["per_prompt"]).abs().max()) for r in runs.values())

    clean = float(metric(P.forward_end(model, ds.tokens)).mean())
    corrupt = float(metric(P.forward_end(model, corrupted)).mean())
    ours = (batched["values"].view(L, T) - corrupt) / (clean - corrupt)  # [layer, pos], normalised
    peer = _transformer_lens(args.model, model, ds, corrupted, clean, corrupt)
    report = {
        "model": model.name, "device": str(model.device), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "machine": platform.platform(),
        "n_prompts": args.n_prompts, "corruption": args.corruption, "seq_len": T, "cells": len(copies), "max_rows": args.max_rows,
        "cells_skipped_unchanged": int(batched["unchanged"].sum()),
        "one_forward_per_patch_s": round(t_naive, 2),
        "one_forward_per_patch_cells_timed": len(cells),
        **{f"batched_{mode}_s": round(t, 2) for mode, t in secs.items()},
        **{f"ratio_naive_over_{mode}": round(t_naive / t, 2) for mode, t in secs.items()},
        "max_abs_diff_logit_diff": err, "max_abs_diff_between_modes": err_modes,
        "max_abs_diff_normalised": err / abs(clean - corrupt),
    }
    if "result" in peer:
        t_tl = peer["seconds"]
        report.update(transformer_lens="transformer-lens 4.3 patching.get_act_patch_resid_pre on a TransformerBridge",
                      transformer_lens_s=round(t_tl, 2),
                      **{f"ratio_transformer_lens_over_{mode}": round(t_tl / t, 2) for mode, t in secs.items()},
                      max_abs_diff_vs_transformer_lens=float((torch.tensor(peer["result"]) - ours).abs().max()))
    else:
        report["transformer_lens"] = peer["note"]
    report["rows"] = [  # the headline rows that scripts/bench/bench_all.py gathers
        {"measure": "residual layer x position sweep: one forward per patch / batched (default: growing + suffix + "
                    f"{report['cells_skipped_unchanged']} of {len(copies)} cells unchanged, skipped)",
         "value": report["ratio_naive_over_default"], "goal": ">= 5"},
        {"measure": "the same, the batching engine alone (growing + suffix, every cell run)",
         "value": report["ratio_naive_over_growing+suffix"], "goal": ""},
    ]
    if "transformer_lens_s" in report:
        report["rows"].append(
            {"measure": "the same sweep: transformer-lens 4.3 get_act_patch_resid_pre / ours (default; "
                        f"{report['ratio_transformer_lens_over_growing+suffix']}x over the engine alone)",
             "value": report["ratio_transformer_lens_over_default"],
             "goal": f"maps agree: max |diff| {report['max_abs_diff_vs_transformer_lens']:.1e} normalised"})
    else:
        report["rows"].append({"measure": "transformer-lens patching helpers", "value": "skipped",
                               "goal": report["transformer_lens"]})
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"{model.name} on {model.device} ({report['threads']} threads), {args.n_prompts} prompts x {T} positions, "
          f"{L} layers = {len(copies)} patches ({report['cells_skipped_unchanged']} unchanged)")
    scaled = f"  (timed {len(cells)} cells, scaled)" if len(cells) < len(copies) else ""
    print(f"  one forward per patch : {t_naive:8.2f} s" + scaled)
    for mode, t in secs.items():
        print(f"  batched, {mode:<14}: {t:8.2f} s   x{t_naive / t:.1f}")
    print(f"  max |diff| {err:.2e} logits vs one forward per patch, {err_modes:.2e} between modes")
    if "transformer_lens_s" in report:
        ratio = report["ratio_transformer_lens_over_default"]
        print(f"  transformer-lens      : {report['transformer_lens_s']:8.2f} s   = x{ratio:.1f} "
              f"ours (default), x{report['ratio_transformer_lens_over_growing+suffix']:.1f} the engine alone   "
              f"(max |diff| {report['max_abs_diff_vs_transformer_lens']:.2e} normalised)")
    else:
        print(f"  transformer-lens      : {report['transformer_lens']}")
    print(f"wrote {out}")
    return 0


def _transformer_lens(name, model, ds, corrupted, clean: float, corrupt: float) -> dict:
    """transformer-lens' resid_pre patching sweep on the same inputs, in its own environment:
    {"seconds", "result": [layer][pos]} or {"note": why not}."""
    import torch

    from extract.models import REGISTRY, converted_dir

    if not PEER_PYTHON.exists():
        return {"note": "skipped: no .venv-bench-tl (transformer-lens is a reference, never a runtime dependency): "
                        "run `make peers`"}
    spec = REGISTRY.get(name)
    if spec is not None and spec.source == "gguf":
        model_dir = converted_dir(spec)
    elif Path(name).expanduser().is_dir():
        model_dir = Path(name).expanduser()
    else:
        return {"note": f"skipped: the peer loads a local model directory; {name} is not one"}
    inputs = {"clean_tokens": ds.tokens.tolist(), "corrupted_tokens": corrupted.tolist(),
              "io_tok": ds.io_tok.tolist(), "s_tok": ds.s_tok.tolist(), "clean_ld": clean, "corrupted_ld": corrupt,
              "threads": torch.get_num_threads(), "device": str(model.device)}
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(inputs, f)
        f.flush()
        proc = subprocess.run([str(PEER_PYTHON), str(ROOT / "scripts/bench/peers/ioi_patching.py"), str(model_dir), f.name],
                              capture_output=True, text=True, env=PEER_ENV)
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit status {proc.returncode}"
        return {"note": f"failed: {last[:200]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    sys.exit(main())
