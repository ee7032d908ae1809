"""Dump one layer's activations over a text corpus to disk-backed memmaps (one store per hook).

    python scripts/cache_activations.py --n_tokens 25000            # middle layer hook_resid_pre, BBC news
    python scripts/cache_activations.py --layer 3 --site mlp_out --corpus shakespeare
    torchrun --nproc_per_node 2 scripts/cache_activations.py ...     # one shard per rank
Re-running an interrupted command resumes it.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make `scripts` and `extract` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts._cli import common_parser, user_errors  # noqa: E402


def parse_args(argv=None):
    p = common_parser(__doc__.splitlines()[0])
    p.add_argument("--n_tokens", type=int, default=25_000, help="activation rows per hook (default 25000)")
    p.add_argument("--hook", action="append", default=[],
                   help="hook name, e.g. blocks.15.hook_resid_pre; repeat for several (one store each)")
    p.add_argument("--layer", type=int, default=None, help="layer for --site (default: the middle layer)")
    p.add_argument("--site", default="resid_pre", help="site in --layer: resid_pre, resid_mid, resid_post, "
                                                       "attn_out, mlp_out, attn.hook_z, mlp.hook_post")
    p.add_argument("--ctx", type=int, default=128, help="tokens per window, BOS included (default 128)")
    p.add_argument("--out", default=None, help="store directory (several hooks: one subdirectory each); "
                                               "default runs/acts/<model>/<hook>")
    p.add_argument("--batch", type=int, default=16, help="windows per forward pass (default 16)")
    p.add_argument("--keep_bos", action="store_true", help="also store the BOS position (dropped by default)")
    p.add_argument("--dtype", default="float16", choices=["float16", "float32"])
    p.add_argument("--corpus", default="bbc",
                   help="bbc (default), shakespeare, dir:PATH (.txt/.jsonl/.parquet), hf:NAME[:SPLIT], A+B")
    p.add_argument("--text_field", default="text", help="text field of .jsonl / parquet / HF corpora")
    p.add_argument("--eval_fraction", type=float, default=0.05, help="documents (and windows) held out (0.05)")
    p.add_argument("--no_progress", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> None:
    a = parse_args(argv)
    with user_errors():
        from extract.dump import DumpConfig, DumpInterrupted, run_from_cli

        cfg = DumpConfig(model=a.model, hooks=tuple(a.hook), layer=a.layer, site=a.site, n_tokens=a.n_tokens,
                         ctx=a.ctx, out=a.out, device=a.device, seed=a.seed, batch=a.batch, keep_bos=a.keep_bos,
                         dtype=a.dtype, corpus=a.corpus, text_field=a.text_field, eval_fraction=a.eval_fraction,
                         progress=not a.no_progress)
        try:
            run_from_cli(cfg)
        except DumpInterrupted as e:
            print(e, file=sys.stderr)
            raise SystemExit(130) from None


if __name__ == "__main__":
    main()
