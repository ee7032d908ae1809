"""Synthetic activation stores with known sparse structure, for tests and benchmarks:
x = sum of a few of n_features random unit directions with random positive magnitudes
(+ an offset and a little noise), so an SAE provably can lower FVU."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mechinterp.formats.store import StoreMeta
from mechinterp.formats.store_writer import StoreWriter


def write_synthetic_store(path: str | Path, d_in: int = 32, n_features: int = 128, n_windows: int = 64,
                          ctx: int = 33, active: int = 4, seed: int = 0, complete: bool = True,
                          dtype: str = "float32", scale: float = 3.0, hook: str = "blocks.0.hook_resid_pre") -> Path:
    rng = np.random.default_rng(seed)
    dirs = rng.standard_normal((n_features, d_in))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    offset = rng.standard_normal(d_in)
    meta = StoreMeta(model="synthetic", weights=f"seed={seed}", hook=hook, layer=0,
                     d_model=d_in, ctx=ctx, keep_bos=False, n_windows=n_windows, dtype=dtype,
                     corpus={"name": "synthetic", "n_features": n_features, "active": active})
    w = StoreWriter.create_or_resume(path, meta)
    rows = ctx - meta.first_pos
    per = 8
    for w0 in range(0, n_windows if complete else n_windows // 2, per):
        n = min(per, n_windows - w0)
        m = n * rows
        idx = np.argsort(rng.random((m, n_features)), axis=1)[:, :active]
        mags = rng.exponential(1.0, (m, active)) * scale
        x = (mags[:, :, None] * dirs[idx]).sum(1) + offset + 0.05 * rng.standard_normal((m, d_in))
        w.write(x.reshape(n, rows, d_in).astype(np.float32), rng.integers(0, 100, (n, ctx), dtype=np.int32))
    if complete:
        w.finish()
    else:
        w.flush()
    return Path(path)
