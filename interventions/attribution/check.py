"""Does the graph predict what a feature does? Ablate (or scale) a graph node's feature at its
position, every MLP replaced by its transcoder with its error held at the clean value and later
features re-encoded, and measure the change of the top logit (demeaned, as the graph's logit
nodes) twice:

  measured         in the real model: attention and norms live
  measured_frozen  attention patterns and norm scales frozen as in the graph (only the features'
                   own nonlinearity is left: the graph should predict this one)

against two predictions from the graph:

  direct   (factor - 1) A[logit, node]: the edge alone
  linear   the change pushed through the graph's feature nodes with attention and norms frozen:
           a feature's activation moves with its pre-activation while active, so its relative
           change r_t = (sum_s A[t, s] r_s) / a_t, with r = factor - 1 at the node

The agreement over the most influential feature nodes is their Pearson correlation and the share
of matching signs, for each prediction against each measurement.
"""

from __future__ import annotations

import numpy as np
import torch

from interventions.attribution import frozen
from mechinterp.formats.attribution_graph import Graph


def _replacement_mlp(tcs: dict, cache: frozen.PromptCache, errors: dict, node: tuple[int, int, int] | None,
                     factor: float):
    """mlp(layer, mlp_in) -> the transcoder's output from live features (one latent's activation
    times factor) plus the clean error; the clean MLP output at BOS."""
    real = cache.real[None, :, None]

    def mlp(layer, x):
        tc = tcs[layer]
        f = tc.encode(x.float())
        if node is not None and node[0] == layer:
            f[:, node[1], node[2]] *= factor
        y = tc.decode(f, x) + errors[layer]
        return torch.where(real, cache.mlp_out[layer].float(), y).to(x.dtype)
    return mlp


def _live_hooks(mlp, n_layers: int) -> list:
    inputs, hooks = {}, []
    for layer in range(n_layers):
        def keep(x, hook):
            inputs[hook.layer] = x

        def replace(y, hook):
            return mlp(hook.layer, inputs.pop(hook.layer))
        hooks += [(f"blocks.{layer}.hook_mlp_in", keep), (f"blocks.{layer}.hook_mlp_out", replace)]
    return hooks


def _top_logit(model, tcs, cache, errors, token: int, node, factor: float) -> tuple[float, float]:
    """u . final normed residual at the last position: (everything live, attention and norms frozen)."""
    mlp = _replacement_mlp(tcs, cache, errors, node, factor)
    logits = model.run_with_hooks(cache.tokens, hooks=_live_hooks(mlp, model.n_layers))[0, -1].float()
    with frozen.replay(model, cache, cache.embed, mlp) as taps:
        model.run_with_hooks(cache.tokens, hooks=taps.hooks)
    W_U = model.model.get_output_embeddings().weight.float()
    return float(logits[token] - logits.mean()), float((W_U[token] - W_U.mean(0)) @ taps.resid_final[0, -1].float())


def _linear_prediction(g: Graph, node: int, logit_row: int, factor: float) -> float:
    """The intervention's effect on a logit through the feature nodes of the frozen linear model."""
    n_f = g.n_features
    A_ff = g.adjacency[:n_f, :n_f]
    r = np.zeros(n_f)
    r[node] = factor - 1.0
    for i in np.argsort(g.features[:, 0], kind="stable"):  # feature i reads only earlier layers
        if g.features[i, 0] > g.features[node, 0]:
            r[i] = A_ff[i] @ r / g.activations[i]
    return float(g.adjacency[logit_row, :n_f] @ r)


@torch.no_grad()
def check_nodes(model, tcs: dict, g: Graph, nodes: list[int], factor: float = 0.0) -> dict:
    """Measured vs predicted change of the top logit when each feature node of `nodes` (graph indices)
    has its activation multiplied by factor (0: ablation; 2: steering, doubled)."""
    cache = frozen.record(model, torch.as_tensor(g.tokens)[None].to(model.device), g.meta["config"]["sink_positions"])
    top = int(g.logit_tokens[0])
    errors = {L: cache.mlp_out[L].float() - tcs[L](cache.mlp_in[L].float()) for L in tcs}
    clean_live, clean_frozen = _top_logit(model, tcs, cache, errors, top, None, 1.0)
    logit_row = len(g.adjacency) - len(g.logit_tokens)
    rows = []
    for i in nodes:
        L, p, f = (int(v) for v in g.features[i])
        live, fro = _top_logit(model, tcs, cache, errors, top, (L, p, f), factor)
        rows.append(dict(node=int(i), layer=L, pos=p, feature=f, activation=float(g.activations[i]),
                         measured=live - clean_live, measured_frozen=fro - clean_frozen,
                         direct=float((factor - 1) * g.adjacency[logit_row, i]),
                         linear=_linear_prediction(g, i, logit_row, factor)))
    return dict(logit_token=top, factor=factor, rows=rows, **_agreement(rows))


def _agreement(rows: list[dict]) -> dict:
    """{"<prediction>_vs_<measurement>": {pearson, sign_agreement}} for every pair."""
    out = {}
    for measured in ("measured", "measured_frozen"):
        m = np.array([r[measured] for r in rows])
        for kind in ("direct", "linear"):
            p = np.array([r[kind] for r in rows])
            corr = float(np.corrcoef(m, p)[0, 1]) if len(rows) > 2 and m.std() > 0 and p.std() > 0 else float("nan")
            out[f"{kind}_vs_{measured}"] = dict(pearson=corr, sign_agreement=float((np.sign(m) == np.sign(p)).mean())
                                                if len(rows) else float("nan"))
    return out
