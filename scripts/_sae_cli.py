"""Flags shared by scripts/train_sae.py and scripts/sweep_sae.py, and their error handling."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


from extract.store import DEFAULT_STORE  # noqa: E402 (after the sys.path insert)


def base_parser(description: str, out_default: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--acts", default=str(DEFAULT_STORE),
                   help=f"activation store directory (scripts/cache_activations.py; default {DEFAULT_STORE})")
    p.add_argument("--out", default=out_default, help="output directory (checkpoints, export, plots)")
    p.add_argument("--arch", default="relu", help="relu | topk | batchtopk | jumprelu")
    p.add_argument("--d_sae", type=int, default=4096)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto",
                   help="auto (every device of JAX's default backend), cpu, gpu (or cuda); the batch is split across them")
    p.add_argument("--eval_tokens", type=int, default=200_000)
    p.add_argument("--ckpt_every", type=int, default=500)
    p.add_argument("--dead_tokens", type=int, default=1_000_000)
    p.add_argument("--dense_backward", action="store_true", help="topk family: plain autodiff backward")
    p.add_argument("--no_progress", action="store_true")
    return p


def jax_devices(flag: str):
    """--device -> the devices the step is sharded over (None: JAX's default backend, all of it)."""
    from sae_jax.errors import SAEError

    if flag == "auto":
        return None
    import jax

    platform = {"cuda": "gpu", "gpu": "gpu", "cpu": "cpu", "mps": "METAL"}.get(flag.split(":")[0])
    if platform is None:
        raise SAEError(f"unknown --device {flag!r}; use auto, cpu or gpu")
    try:
        return jax.devices(platform)
    except RuntimeError:
        raise SAEError(f"--device {flag}: JAX sees no {platform} device here ({jax.default_backend()} only); "
                       "use --device auto or cpu") from None
