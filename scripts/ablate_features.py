"""Ablate chosen SAE latents and measure a behaviour, against random ablations of the same size.

    python scripts/ablate_features.py --sae DIR --features 12,40 [--eval ioi|ce] [--mode zero|mean]
        [--n_random 20] [--n_prompts 32] [--out DIR]
"""

import json
from pathlib import Path

from _cli import common_parser, user_errors


def main() -> None:
    p = common_parser(__doc__.splitlines()[0], out_default="runs/ablate")
    p.add_argument("--sae", required=True)
    p.add_argument("--features", required=True,
                   help="comma-separated latent indices, or auto:N for the N latents most active on the eval inputs")
    p.add_argument("--eval", default="ioi", choices=["ioi", "ce"],
                   help="ioi: mean IOI logit difference; ce: next-token loss on held-out windows")
    p.add_argument("--mode", default="zero", choices=["zero", "mean"])
    p.add_argument("--n_random", type=int, default=20)
    p.add_argument("--n_prompts", type=int, default=32, help="IOI prompts, or held-out windows for --eval ce")
    args = p.parse_args()
    with user_errors():
        from extract.models import load_model
        from interventions.ablate import run_ablation_stage
        from interventions.sae import load_sae

        try:
            features = int(args.features[5:]) if args.features.startswith("auto:") else \
                [int(f) for f in args.features.split(",") if f.strip()]
        except ValueError:
            raise ValueError(f"--features must be comma-separated integers or auto:N, got {args.features!r}") from None
        sae = load_sae(args.sae)
        model = load_model(sae.model_name or args.model, device=args.device)
        r = run_ablation_stage(model, sae.to(model.device), features, args.eval, args.mode, args.n_random,
                               args.n_prompts, args.seed)
        print(f"{args.eval} metric: clean {r['metric_clean']:.4f}, SAE spliced (no edit) {r['metric_spliced_no_edit']:.4f}, "
              f"ablating {len(r['features'])} chosen latents ({args.mode}) {r['metric_ablated']:.4f}; "
              f"{args.n_random} random ablations {r['random_metric_mean']:.4f} +- {r['random_metric_std']:.4f} "
              f"({r['random_fraction_as_extreme']:.0%} as extreme)")
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        path = out / "ablation.json"
        path.write_text(json.dumps(r, indent=2))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
