"""The JAX side: Equinox SAEs and transcoders, their training, sweeps, metrics and exports; never imports torch.

Importing it turns on JAX's persistent compile cache under the cache root ($MECHINTERP_CACHE/jax-compile)
unless JAX_COMPILATION_CACHE_DIR names another: a stage's programs compile once per machine, not once
per run (every layer of a transcoder set, every child stage of the demo and of the test suite).
"""

import jax

from mechinterp.formats.defaults import cache_root

if not jax.config.jax_compilation_cache_dir:
    jax.config.update("jax_compilation_cache_dir", str(cache_root() / "jax-compile"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_compilation_cache_max_size", 2 << 30)  # bytes; the oldest entries go first
