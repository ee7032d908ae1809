"""Attribution graphs (Ameisen et al. 2025, "Circuit tracing") through per-layer transcoders: the model
made linear for one prompt (frozen.py), the graph's edges (attribute.py), pruning and scores as
circuit-tracer computes them (prune.py), interventions that check the graph (check.py), feature
cards (cards.py), the page (page.py) and the `mechinterp trace` stage (trace.py).

    g = attribute(model, load_transcoders("runs/transcoders"), model.to_tokens(prompt))
"""
