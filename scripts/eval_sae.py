"""CE-loss recovered, KL and delta loss of an exported SAE spliced into its model,
on the held-out windows of its activation store; added to the SAE's metrics.json.

    python scripts/eval_sae.py --sae DIR [--acts STORE] [--n_windows 64] [--model M] [--device D]
"""

import json

from _cli import common_parser, user_errors


def main() -> None:
    p = common_parser(__doc__.splitlines()[0])
    p.add_argument("--sae", required=True, help="SAE export directory (cfg.json + sae_weights.safetensors)")
    p.add_argument("--acts", default=None, help="activation store (default: the one named in cfg.json)")
    p.add_argument("--n_windows", type=int, default=64, help="held-out windows to evaluate on")
    p.add_argument("--batch", type=int, default=8)
    args = p.parse_args()
    with user_errors():
        from extract.models import load_model
        from interventions.evaluate import ce_loss_recovered, heldout_tokens, merge_metrics
        from interventions.sae import load_sae

        sae = load_sae(args.sae)
        model = load_model(sae.model_name or args.model, device=args.device)
        windows, first_pos = heldout_tokens(sae, args.n_windows, args.acts)
        result = ce_loss_recovered(model, sae.to(model.device), windows, first_pos, args.batch, progress=True)
        path = merge_metrics(args.sae, "ce_loss", result)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}, indent=1))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
