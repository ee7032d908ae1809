"""The C++ CPU kernels of cpu_kernels.cc as XLA custom calls (jax.ffi), built on first use.

    from sae_jax import cpu_kernels
    if cpu_kernels.enabled(): vals, idx = cpu_kernels.topk(z, k)

The library is compiled once per source version with the system C++ compiler against the
XLA FFI headers that jaxlib ships, into $MECHINTERP_CACHE/kernels (default
~/.cache/mechinterp/kernels). Without a compiler, on another backend, or with
MECHINTERP_CPU_KERNELS=0, `enabled()` is False and sae_jax.topk keeps its pure-XLA path
(same results; measured 1.6x slower per TopK step, scripts/bench_sae.py).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from mechinterp.formats.defaults import cache_root

SOURCE = Path(__file__).with_name("cpu_kernels.cc")
TARGETS = {"topk": "MiTopK", "gather_sum": "MiGatherSum", "gather_dot": "MiGatherDot", "scatter_rows": "MiScatterRows"}


def _cache_dir() -> Path:
    return cache_root() / "kernels"


def _build() -> Path:
    src = SOURCE.read_bytes()
    tag = hashlib.sha256(src + jax.__version__.encode()).hexdigest()[:16]
    lib = _cache_dir() / f"libsae_cpu_{tag}.so"
    if lib.exists():
        return lib
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if cxx is None:
        raise RuntimeError("no C++ compiler (c++, g++ or clang++) on PATH")
    lib.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=lib.parent) as tmp:
        out = Path(tmp) / lib.name
        cmd = [cxx, "-O3", "-std=c++17", "-fopenmp-simd", "-shared", "-fPIC", "-pthread", f"-I{jax.ffi.include_dir()}",
               str(SOURCE), "-o", str(out)]
        if sys.platform != "darwin":
            cmd.insert(2, "-march=native")  # built where it runs; clang on Apple silicon picks its own
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip()[-500:]}")
        out.replace(lib)  # atomic: a concurrent builder finds a whole library or none
    for old in lib.parent.glob("libsae_cpu_*.so"):  # builds of other source versions
        if old != lib:
            old.unlink(missing_ok=True)
    return lib


@lru_cache(maxsize=1)
def _load() -> bool:
    try:
        lib = ctypes.cdll.LoadLibrary(str(_build()))
    except (OSError, RuntimeError) as e:
        warnings.warn(f"sae_jax: the C++ CPU kernels are unavailable ({e}); using the slower pure-XLA TopK path",
                      stacklevel=3)
        return False
    for name, symbol in TARGETS.items():
        jax.ffi.register_ffi_target(f"mechinterp_{name}", jax.ffi.pycapsule(getattr(lib, symbol)), platform="cpu")
    return True


def enabled() -> bool:
    """True when the kernels are built and the computation runs on the CPU (read when a
    step is traced: jitted functions keep the choice they were traced with)."""
    return os.environ.get("MECHINTERP_CPU_KERNELS", "1") != "0" and jax.default_backend() == "cpu" and _load()


def _threads() -> np.int64:
    return np.int64(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _call(name: str, out, *args):
    return jax.ffi.ffi_call(f"mechinterp_{name}", out, vmap_method="sequential")(*args, threads=_threads())


def topk(z, k: int):
    """lax.top_k(z, k) for a float32 [b, n]."""
    b = z.shape[0]
    return _call("topk", (jax.ShapeDtypeStruct((b, k), jnp.float32), jax.ShapeDtypeStruct((b, k), jnp.int32)),
                 z.astype(jnp.float32))


def gather_sum(coef, idx, W):
    return _call("gather_sum", jax.ShapeDtypeStruct((idx.shape[0], W.shape[1]), jnp.float32),
                 coef.astype(jnp.float32), idx.astype(jnp.int32), W.astype(jnp.float32))


def gather_dot(g, idx, W):
    return _call("gather_dot", jax.ShapeDtypeStruct(idx.shape, jnp.float32),
                 g.astype(jnp.float32), idx.astype(jnp.int32), W.astype(jnp.float32))


def scatter_rows(idx, coef, vecs, n: int):
    return _call("scatter_rows", jax.ShapeDtypeStruct((n, vecs.shape[1]), jnp.float32),
                 idx.astype(jnp.int32), coef.astype(jnp.float32), vecs.astype(jnp.float32))
