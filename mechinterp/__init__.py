"""The lab's command (`mechinterp <stage>`) and the files that cross between frameworks.

Framework-free: nothing here imports torch or jax at module level. The formats the two sides
exchange have one numpy-only owner module each: `extract.store` (activation stores),
`mechinterp.sae_format` (SAE and transcoder exports) and `mechinterp.stats_format` (feature
statistics); `mechinterp.paths` says where things go on disk.
"""

DEFAULT_MODEL = "smollm2-135m-q4"
"""The embedded default model (SmolLM2-135M-Instruct, GGUF shipped as a PyPI wheel)."""
