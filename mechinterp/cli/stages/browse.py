"""Feature browser: per-latent statistics over the store + a static page (works from file://).

    mechinterp browse --sae runs/sae/sae [--acts DIR] [--out DIR] [--top_n 20]
    mechinterp browse --sae runs/sae/sae --serve      # + live page on 127.0.0.1

Writes OUT/feature_stats.npz + .json (sae_jax, JAX), the export's offline labels EXPORT/labels.json
(see `mechinterp label`) and OUT/index.html + data/ (interventions, torch: token strings and logit
effects). Open OUT/index.html in a browser.
"""

from __future__ import annotations

import json
import sys
import time

from mechinterp.cli.flags import add_flags, build
from mechinterp.cli.runs import claimed, input_name, stage_dir
from mechinterp.cli.stages import new_parser, user_errors


def parser(prog=None):
    from interventions.browser.page import BrowseConfig
    from sae_jax.features import FeatureStatsConfig

    p = new_parser(__doc__, prog)
    add_flags(p, BrowseConfig)
    add_flags(p, FeatureStatsConfig, skip=("seed",))
    return p


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from interventions.browser.page import BrowseConfig, build_page, logit_tables
        from interventions.labels.make import label_export
        from mechinterp.formats.sae import read_sae_cfg
        from sae_jax.features import FeatureStatsConfig, compute_feature_stats

        cfg = build(BrowseConfig, a, out=a.out or str(stage_dir("browser", input_name(a.sae))))
        read_sae_cfg(cfg.sae)  # one line if it is not an SAE export, before any work
        if cfg.serve:
            from interventions.browser.live import check_port

            check_port(cfg.port)
        out = cfg.out_dir()
        with claimed(out, "browse", sae=cfg.sae):
            t0 = time.perf_counter()
            stats = compute_feature_stats(cfg.sae, cfg.acts, build(FeatureStatsConfig, a, skip=("seed",), seed=cfg.seed),
                                          progress=True)
            stats.save(out)
            s = stats.summary
            print(f"statistics: {s['d_sae']} latents over {s['n_tokens']} tokens in {time.perf_counter() - t0:.1f}s "
                  f"({s['dead']} dead, {s['dense']} dense, L0 {s['l0']:.1f})")
            model, sae = _load(cfg) if cfg.logits or cfg.serve else (None, None)
            logits = logit_tables(model, sae.W_dec) if model is not None else None
            path, labels, timing = label_export(cfg.sae, out, model=model, logits=logits)
            print(f"labels: {len(labels)} latents in {timing['labels_s']:.1f}s ({timing['kinds']}) -> {path}")
            r = build_page(out, out, cfg.sae, model=model, store_path=cfg.acts, logits=logits)
            print(f"page: {r['chunks']} chunk files, {r['total_bytes'] / 1e6:.1f} MB, "
                  f"logit tables {'yes' if r['logits'] else 'no'} ({r['wall_s']:.1f}s)")
            print(f"wrote {out}/index.html  (open file://{(out / 'index.html').resolve()})")
            (out / "browser.json").write_text(json.dumps({"stats": s, "page": r}, indent=2))
        if cfg.serve:
            from interventions.browser.live import serve

            if model is None:
                raise ValueError("--serve needs the model, which could not be loaded (see the warning above)")
            serve(model, sae, site=out, port=cfg.port)


def _load(cfg):
    """(model, SAE), or (None, None) with a warning when the model cannot be had (the page then shows
    token ids and no logit tables)."""
    from extract.models import ModelLoadError

    try:
        return cfg.load()
    except (ModelLoadError, OSError) as e:
        print(f"warning: cannot load the SAE's model ({str(e).splitlines()[0]}); "
              "no logit tables, tokens shown as ids", file=sys.stderr)
        return None, None
