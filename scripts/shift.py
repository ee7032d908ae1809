"""SHIFT: find the SAE latents a profession probe uses for gender, ablate them, tabulate.

    python scripts/shift.py                                  # dumps + trains an SAE first (reused after)
    python scripts/shift.py --sae runs/sae/.../sae --layer 4 --features 12,40
Writes table.md, results.json, latents.json and shift.png under --out (default runs/shift/<model>).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make `scripts` and the packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts._cli import common_parser, user_errors  # noqa: E402


def parse_args(argv=None):
    from interventions.shift import DEFAULT_LAYER

    p = common_parser(__doc__.splitlines()[0])
    p.add_argument("--sae", default=None, help="SAE export directory (default: train one at the probe's hook)")
    p.add_argument("--layer", type=int, default=DEFAULT_LAYER, help=f"probe layer (default {DEFAULT_LAYER})")
    p.add_argument("--site", default="resid_pre", help="probe site in --layer (default resid_pre)")
    p.add_argument("--out", default=None, help="output directory (default runs/shift/<model>)")
    p.add_argument("--features", default="", help="latents to ablate, e.g. 12,40 (default: automatic criterion)")
    p.add_argument("--data", default="synthetic", help="synthetic (default) or bias_in_bios (needs a network)")
    p.add_argument("--n_ambiguous", type=int, default=384)
    p.add_argument("--n_balanced", type=int, default=384)
    p.add_argument("--top_n", type=int, default=32, help="candidates for the automatic selection")
    p.add_argument("--min_gender_auc", type=float, default=0.8, help="automatic selection threshold")
    p.add_argument("--n_random", type=int, default=10, help="random ablations of the same size")
    p.add_argument("--sae_n_tokens", type=int, default=200_000, help="without --sae: rows dumped to train it")
    p.add_argument("--sae_steps", type=int, default=2000, help="without --sae: training steps")
    p.add_argument("--sae_d_sae", type=int, default=4096, help="without --sae: dictionary size")
    p.add_argument("--sae_k", type=int, default=32, help="without --sae: active latents per token (topk)")
    p.add_argument("--sae_batch", type=int, default=4096, help="without --sae: training batch")
    p.add_argument("--runs_dir", default="runs", help="without --sae: where the store and SAE go (runs_dir/acts, /sae)")
    p.add_argument("--no_progress", action="store_true")
    return p.parse_args(argv)


def parse_features(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in text.replace(" ", "").split(",") if t)
    except ValueError:
        raise ValueError(f"--features must be comma-separated latent indices, got {text!r}") from None


def main(argv=None) -> None:
    a = parse_args(argv)
    with user_errors():
        from interventions.bios import BiosUnavailable  # noqa: F401  (a ValueError: one line, exit 2)
        from interventions.shift import ShiftConfig, default_out, markdown_table, run_shift, write_outputs

        cfg = ShiftConfig(model=a.model, layer=a.layer, site=a.site, sae=a.sae, features=parse_features(a.features),
                          out=a.out, device=a.device, seed=a.seed, data=a.data, n_ambiguous=a.n_ambiguous,
                          n_balanced=a.n_balanced, top_n=a.top_n, min_gender_auc=a.min_gender_auc,
                          n_random=a.n_random, sae_n_tokens=a.sae_n_tokens, sae_steps=a.sae_steps,
                          sae_d_sae=a.sae_d_sae, sae_k=a.sae_k, sae_batch=a.sae_batch,
                          runs_dir=a.runs_dir, progress=not a.no_progress)
        result = run_shift(cfg)
        paths = write_outputs(result, default_out(cfg))
        print(markdown_table(result))
        for c in result.selection.candidates:
            if c["chosen"]:
                print(f"latent {c['latent']}: attribution {c['attribution']:+.3f}, gender AUC {c['gender_auc']:.2f} "
                      f"({c['gender']}), top tokens {c['top_tokens']}")
        print(f"wrote {', '.join(str(p) for p in paths.values())}")


if __name__ == "__main__":
    main()
