"""Steer with one SAE feature: generate with and without alpha x its decoder direction added.

    python scripts/steer.py --sae DIR --feature N --alpha A --prompt "..." [--max_new_tokens 30] [--out DIR]
"""

import json
from pathlib import Path

import numpy as np

from _cli import common_parser, user_errors


def main() -> None:
    p = common_parser(__doc__.splitlines()[0], out_default="runs/steer")
    p.add_argument("--sae", required=True)
    p.add_argument("--feature", default="auto",
                   help="latent index, or auto: a moderately frequent latent with a strong logit effect")
    p.add_argument("--alpha", type=float, default=None,
                   help="amount of the (unit-norm) decoder direction to add (default: 2x the site's mean norm on the prompt)")
    p.add_argument("--prompt", default="I think that")
    p.add_argument("--max_new_tokens", type=int, default=30)
    args = p.parse_args()
    with user_errors():
        from extract.models import load_model
        from interventions.sae import load_sae
        from interventions.steer import pick_feature, steer

        sae = load_sae(args.sae)
        model = load_model(sae.model_name or args.model, device=args.device)
        sae = sae.to(model.device)
        if args.feature == "auto":
            freq_file = Path(args.sae).parent / "frequencies.npy"  # written by scripts/train_sae.py
            feature = pick_feature(model, sae, np.load(freq_file) if freq_file.exists() else None)
        else:
            feature = int(args.feature)
        r = steer(model, sae, feature, args.alpha, args.prompt, args.max_new_tokens)
        print(f"feature {r['feature']} at {r['hook']}, alpha {r['alpha']:.1f} (site mean norm {r['site_mean_norm']:.1f})")
        print(f"  clean:   {r['prompt']}|{r['clean']}")
        print(f"  steered: {r['prompt']}|{r['steered']}")
        print("  top tokens of the feature (logit effect): p next token clean -> steered")
        for t in r["top_tokens"]:
            print(f"    {t['token']!r:>16} {t['logit']:+.2f}: {t['p_clean']:.4f} -> {t['p_steered']:.4f}")
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"steer_f{feature}_a{r['alpha']:.0f}.json"
        path.write_text(json.dumps(r, indent=2))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
