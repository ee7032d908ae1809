"""IOI circuit lab: prompt sets, activation and path patching, DLA, circuit report.

    python scripts/ioi.py [--model smollm2-135m-q4] [--device auto] [--out runs/ioi/<model>] [--seed 0] [--n_prompts 8]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    from extract.models import DEFAULT_MODEL

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL, help="registry name, hub repo id or local directory")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps")
    ap.add_argument("--out", default=None, help="output directory (default runs/ioi/<model>)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n_prompts", type=int, default=8, help="prompts per set (ABBA and BABA alternate)")
    ap.add_argument("--max_rows", type=int, default=1024, help="largest batch (prompts x patched copies) per forward")
    ap.add_argument("--quick", action="store_true", help="only the sweeps the circuit report needs (about 3x faster)")
    args = ap.parse_args(argv)
    if args.n_prompts < 1:
        print(f"error: --n_prompts must be >= 1, got {args.n_prompts}", file=sys.stderr)
        return 2
    if args.max_rows < 2 * args.n_prompts:
        print(f"error: --max_rows must be at least 2 x --n_prompts ({2 * args.n_prompts})", file=sys.stderr)
        return 2

    from extract.ioi.circuit import run_ioi
    from extract.models import ModelLoadError, load_model

    out = Path(args.out) if args.out else Path("runs/ioi") / Path(args.model).name
    try:
        model = load_model(args.model, device=args.device)
        print(f"{model}; writing to {out}")
        r = run_ioi(model, out=out, n_prompts=args.n_prompts, seed=args.seed, max_rows=args.max_rows, quick=args.quick)
    except (ModelLoadError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    ld = r["logit_diff"]
    dla = r["direct_logit_attribution"]
    pp = r["path_patching"]
    print(f"logit diff IO-S: clean {ld['clean']['mean']:+.3f}  s2_swap {ld['s2_swap']['mean']:+.3f}  "
          f"abc {ld['abc']['mean']:+.3f}")
    print("top DLA heads: " + ", ".join(f"{h['head']} {h['value']:+.2f}" for h in dla["top_positive"][:5]))
    print("top heads by patching z: " + ", ".join(f"{h['head']} {h['value']:+.2f}"
                                                for h in r["activation_patching"]["top_heads_denoising_z"][:5]))
    print(f"name movers {pp['name_movers']}; S-inhibition candidates (path patching to their queries) "
          f"{pp['s_inhibition_candidates']}")
    print("faithfulness: " + ", ".join(f"{k} {v:.2f}" for k, v in r["circuit"]["faithfulness"].items()))
    print(f"wrote {out / 'results.json'} and {len(r['files'])} plots in {r['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
