"""The ground floor: every file format the lab reads or writes, one numpy-only owner module each.

store (activation stores; store_writer writes them), paired (two stores of one dump side by side),
sae (SAE and transcoder exports, the encode contract), transcoder_set (circuit-tracer's set
layout), feature_stats, attribution_graph, residues (antibody per-residue labels), layers
(layer-list parsing), defaults (the default model, the cache root), errors (the one error
family). Nothing here imports torch, jax, or another package of the lab; each file name is a
constant of its owner module.
"""
