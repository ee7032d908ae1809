"""Forward with an SAE spliced in vs the plain forward (overhead ratio), and the SAE's
CE-loss recovered as recorded in its metrics.json.

    python scripts/bench/bench_interventions.py [--sae DIR] [--batch 8] [--ctx 128] [--repeats 5]

Without --sae, a random TopK SAE (4096 latents, k=32) at the default site stands in: the
overhead depends on the shapes, not on the weights.
"""

import json
import tempfile
from pathlib import Path

from _bench import add_batch_flags, bench_model, bench_parser, time_call, write_results

from mechinterp.formats.sae import CFG, METRICS, WEIGHTS


def random_topk_export(path: Path, d_in: int, hook: str, model_name: str, d_sae: int = 4096, k: int = 32) -> Path:
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(0)
    W_dec = torch.nn.functional.normalize(torch.randn(d_sae, d_in, generator=g), dim=1)
    save_file({"W_enc": W_dec.T.contiguous(), "b_enc": torch.zeros(d_sae), "W_dec": W_dec, "b_dec": torch.zeros(d_in)},
              str(path / WEIGHTS))
    (path / CFG).write_text(json.dumps({"architecture": "topk", "d_in": d_in, "d_sae": d_sae, "k": k,
                                               "hook_name": hook, "model_name": model_name}))
    return path


def main() -> None:
    p = bench_parser(__doc__.splitlines()[0])
    p.add_argument("--sae", default=None)
    add_batch_flags(p)
    args = p.parse_args()

    import torch

    from interventions.sae import load_sae
    from interventions.splice import FeatureEdit, splice_hook

    model = bench_model(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        sae_dir = Path(args.sae) if args.sae else random_topk_export(
            Path(tmp), model.d_model, f"blocks.{model.n_layers // 2}.hook_resid_pre", model.name)
        sae = load_sae(sae_dir)
        tokens = torch.randint(100, 40000, (args.batch, args.ctx), generator=torch.Generator().manual_seed(0))
        plain_t, spliced_t, edited_t = [], [], []
        with torch.no_grad():  # interleaved, so drift hits all three alike
            for _ in range(args.repeats):
                plain_t.append(time_call(lambda: model(tokens), repeats=1, warmup=0))
                spliced_t.append(time_call(lambda: model.run_with_hooks(tokens, hooks=[splice_hook(sae)]),
                                           repeats=1, warmup=0))
                edit = FeatureEdit(zero=list(range(16)))
                edited_t.append(time_call(lambda: model.run_with_hooks(
                    tokens, hooks=[splice_hook(sae, edit, keep_error=True)]), repeats=1, warmup=0))
        med = lambda xs: sorted(xs)[len(xs) // 2]
        rows = [{"measure": f"forward with the SAE spliced ({sae.arch}, {sae.d_sae} latents) / plain forward",
                 "value": med(spliced_t) / med(plain_t), "goal": ""},
                {"measure": "forward with 16 latents zero-ablated, error term kept / plain forward",
                 "value": med(edited_t) / med(plain_t), "goal": ""}]
        metrics = json.loads((sae_dir / METRICS).read_text()) if (sae_dir / METRICS).exists() else {}
        if "ce_loss" in metrics:
            rows.append({"measure": f"CE-loss recovered of {sae_dir} (L0 {metrics.get('l0', float('nan')):.0f})",
                         "value": metrics["ce_loss"]["ce_loss_recovered"], "goal": ">= 0.9 at L0 <= 50"})
        write_results("interventions", rows, {"sae": str(sae_dir), "batch": args.batch, "ctx": args.ctx})


if __name__ == "__main__":
    main()
