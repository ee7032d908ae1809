"""Feature browser: per-latent statistics over the store + a static page (works from file://).

    python scripts/browse_features.py --sae runs/sae/sae [--acts DIR] [--out DIR] [--top_n 20]
    python scripts/browse_features.py --sae runs/sae/sae --serve      # + live page on 127.0.0.1

Writes OUT/feature_stats.npz + .json (sae_jax, JAX) and OUT/index.html + data/ (interventions,
torch: token strings and logit effects). Open OUT/index.html in a browser.
"""

import json
import sys
import time
from pathlib import Path

from _cli import common_parser, user_errors


def main() -> None:
    p = common_parser(__doc__.splitlines()[0], out_default=None)
    p.add_argument("--sae", required=True, help="SAE export directory (cfg.json + sae_weights.safetensors)")
    p.add_argument("--acts", default=None, help="activation store (default: the one the SAE was trained on)")
    p.add_argument("--out", default=None, help="output directory (default runs/browser/<sae name>)")
    p.add_argument("--top_n", type=int, default=20, help="top-activating examples per latent")
    p.add_argument("--per_band", type=int, default=5, help="samples per activation-quantile band")
    p.add_argument("--max_tokens", type=int, default=None, help="use at most this many store rows")
    p.add_argument("--windows", default="all", choices=["all", "train", "eval"], help="which windows of the store")
    p.add_argument("--chunk_rows", type=int, default=4096, help="rows encoded per step")
    p.add_argument("--no_model", action="store_true", help="skip the model: no logit tables, token ids only")
    p.add_argument("--serve", action="store_true", help="then serve a live page (type text, see features fire)")
    p.add_argument("--port", type=int, default=8765)
    a = p.parse_args()
    with user_errors():
        sae_dir = Path(a.sae)
        if not (sae_dir / "cfg.json").exists():
            raise FileNotFoundError(f"{sae_dir} is not an SAE export (no cfg.json); train one with scripts/train_sae.py")
        name = sae_dir.name if sae_dir.name != "sae" else sae_dir.parent.name
        out = Path(a.out or f"runs/browser/{name}")

        from sae_jax.features import FeatureStatsConfig, compute_feature_stats

        t0 = time.perf_counter()
        cfg = FeatureStatsConfig(top_n=a.top_n, per_band=a.per_band, max_tokens=a.max_tokens, windows=a.windows,
                                 chunk_rows=a.chunk_rows, seed=a.seed)
        stats = compute_feature_stats(sae_dir, a.acts, cfg, progress=True)
        stats.save(out)
        s = stats.summary
        print(f"statistics: {s['d_sae']} latents over {s['n_tokens']} tokens in {time.perf_counter() - t0:.1f}s "
              f"({s['dead']} dead, {s['dense']} dense, L0 {s['l0']:.1f})")

        from interventions.browser import build_page
        from interventions.sae import load_sae

        model = None
        if not a.no_model:
            model = _load_model(load_sae(sae_dir).model_name or a.model, a.device)
        r = build_page(out, out, sae_dir, model=model, store_path=a.acts)
        print(f"page: {r['chunks']} chunk files, {r['total_bytes'] / 1e6:.1f} MB, "
              f"logit tables {'yes' if r['logits'] else 'no'} ({r['wall_s']:.1f}s)")
        print(f"wrote {out}/index.html  (open file://{(out / 'index.html').resolve()})")
        (out / "browser.json").write_text(json.dumps({"stats": s, "page": r}, indent=2))
        if a.serve:
            from interventions.live import serve
            if model is None:
                raise ValueError("--serve needs the model (drop --no_model)")
            serve(model, load_sae(sae_dir, device=model.device), site=out, port=a.port)


def _load_model(name: str, device: str):
    from extract.models import ModelLoadError, load_model

    try:
        return load_model(name, device=device)
    except (ModelLoadError, KeyError, ValueError, OSError) as e:
        print(f"warning: cannot load model {name!r} ({str(e).splitlines()[0]}); "
              "no logit tables, tokens shown as ids", file=sys.stderr)
        return None


if __name__ == "__main__":
    main()
