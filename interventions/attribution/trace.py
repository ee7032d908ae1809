"""`mechinterp trace`: one prompt's attribution graph through a transcoder set, pruned, checked by
interventions in the real model, drawn (PNG) and browsable (a static page).

    trace(TraceConfig(prompt="When Mary and John went to the store, John gave a drink to",
                      set="runs/transcoders", answer=" Mary"))

Writes into --out: graph.npz + graph.json (the full graph, mechinterp.formats.attribution_graph), graph.html (the
pruned graph's page), graph.png, interventions.png and results.json. A finished graph of the same
prompt, set and settings is reused (delete --out to recompute).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from interventions.attribution.attribute import AttributionConfig, attribute
from interventions.attribution.cards import feature_cards
from interventions.attribution.check import check_nodes
from interventions.attribution.page import write_graph_page
from interventions.attribution.prune import logit_weights, prune, scores
from interventions.attribution.supernodes import suggest_supernodes
from interventions.replacement import check_fits, load_transcoders
from mechinterp.formats.attribution_graph import GRAPH_NPZ, Graph, load_graph
from mechinterp.formats.bounds import bounds, check_bounds
from mechinterp.formats.defaults import given_out
from mechinterp.formats.fingerprint import combine, fingerprint, stale
from mechinterp.formats.labels import labels_path, load_labels
from mechinterp.formats.neuronpedia_graph import NEURONPEDIA_JSON, write_neuronpedia_graph
from mechinterp.formats.results import RESULTS
from mechinterp.formats.sae import CFG, WEIGHTS, SAEError
from mechinterp.formats.transcoder_set import layer_export


@dataclass(frozen=True)
class TraceConfig(AttributionConfig):
    prompt: str = ""
    """The text to explain (BOS is prepended); the graph explains its next token."""
    set: str | None = None
    """Transcoder set: the folder `mechinterp train-transcoders` wrote, one per layer, every layer (None:
    runs/transcoders)."""
    out: str | None = None
    """Output folder (None: runs/trace/<the prompt's first words>-<a hash of the whole prompt>)."""
    answer: str | None = None
    """The expected next token (e.g. ' Mary'; one token): the graph explains its logit, and the run says
    whether the model gets it right (none: the top tokens' logits)."""
    device: str = "auto"
    """auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps."""
    node_threshold: float = field(default=0.8, metadata=bounds(0, 1, open_low=True))
    """Pruning: keep the nodes carrying this share of the influence on the logits."""
    edge_threshold: float = field(default=0.98, metadata=bounds(0, 1, open_low=True))
    """Pruning: keep the edges carrying this share of the remaining edge influence."""
    max_graph_features: int = field(default=500, metadata=bounds(1))
    """Pruning: at most this many feature nodes in the pruned graph (the most influential)."""
    n_checks: int = field(default=20, metadata=bounds(0))
    """Feature nodes (the most influential) intervened on to check the graph's predictions."""
    check_factor: float = field(default=0.0, metadata=bounds())
    """Those nodes' activations are multiplied by this (0: ablation; 2: steering)."""
    max_page_edges: int = field(default=3000, metadata=bounds(1))
    """The page and the figure draw at most this many of the pruned graph's edges (the highest edge
    scores: |weight| over the target's total input, times the target's influence)."""
    card_windows: int = field(default=128, metadata=bounds(0))
    """Windows of each layer's input store searched for the feature cards' top contexts (read 32 at a
    time; the card says how many were searched)."""

    def __post_init__(self):
        super().__post_init__()
        check_bounds(self)
        if not self.prompt.strip():
            raise ValueError("--prompt is empty; pass the text whose next token the graph should explain")

    def out_dir(self) -> Path:
        return given_out(self.out, "TraceConfig")


def load_set(model, set_dir: str) -> dict:
    tcs = load_transcoders(set_dir, model.device)
    missing = sorted(set(range(model.n_layers)) - set(tcs))
    if missing:
        raise SAEError(f"{set_dir} has no transcoder for layer(s) {', '.join(map(str, missing))} of {model.name} "
                       f"({model.n_layers} layers); a graph needs every layer: train them with "
                       f"`mechinterp train-transcoders --layers all`")
    check_fits(model, tcs)
    return tcs


def _tokens(model, cfg: TraceConfig) -> torch.Tensor:
    tokens = model.to_tokens(cfg.prompt)
    special = (set(model.tokenizer.all_special_ids) | {model.bos_token_id, model.eos_token_id}) - {None}
    if all(int(t) in special for t in tokens[0, 1 if model.bos_token_id is not None else 0:]):
        # a graph of special tokens alone explains nothing, and its replacement score is 1.0 by construction
        raise ValueError(f"--prompt {cfg.prompt!r} has no ordinary token after the BOS, only special tokens of "
                         f"{model.name}'s tokenizer; pass text whose next token the graph should explain")
    limit = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
    if limit and tokens.shape[1] > limit:
        raise ValueError(f"the prompt is {tokens.shape[1]} tokens (BOS included) but {model.name} reads at most "
                         f"{limit}; shorten it")
    return tokens


def _inputs(model, tcs) -> dict[str, str]:
    """Fingerprints of what a graph is computed from: the model's weights and every layer's transcoder."""
    return {"the model's weights": model.fingerprint,
            "the transcoder set": combine({str(L): fingerprint(tc.path, only=(WEIGHTS, CFG))
                                           for L, tc in sorted(tcs.items())})}


def _answer_token(model, cfg: TraceConfig) -> tuple[int, ...]:
    """The token id of --answer, as the graph's target (none without --answer)."""
    if cfg.answer is None:
        return ()
    ids = model.tokenizer(cfg.answer, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ValueError(f"--answer {cfg.answer!r} is {len(ids)} tokens for {model.name}'s tokenizer; pass one "
                         "token (mind the leading space: ' Mary')")
    return tuple(ids)


def _graph(model, tcs, tokens, cfg: TraceConfig, out: Path, targets: tuple[int, ...]) -> Graph:
    settings = {k: getattr(cfg, k) for k in AttributionConfig.__dataclass_fields__} | {"target_tokens": targets}
    key = json.loads(json.dumps(dict(prompt=cfg.prompt, set=str(Path(cfg.set).resolve()), model=model.name,
                                     config=settings)))  # as graph.json holds it: lists, not tuples
    inputs = _inputs(model, tcs)
    if (out / GRAPH_NPZ).exists():
        g = load_graph(out)
        why = stale(g.meta.get("inputs"), inputs)
        if g.meta.get("key") == key and why is None:
            print(f"reusing the graph in {out} (same prompt, settings, weights and transcoders)", file=sys.stderr)
            return g
        if g.meta.get("key") == key:
            print(f"recomputing the graph in {out}: {why} since it was made", file=sys.stderr)
    g = attribute(model, tcs, tokens, AttributionConfig(**settings), progress=True)
    g.meta.update(key=key, inputs=inputs, prompt=cfg.prompt, set=key["set"])
    g.save(out)
    return g


def _page_data(model, tcs, g: Graph, pruned, sc: dict, cfg: TraceConfig) -> dict:
    strs = model.to_str_tokens(torch.as_tensor(g.tokens))
    keep = np.flatnonzero(pruned.node_mask)
    share = pruned.node_influence / max(float(pruned.node_influence.sum()), 1e-30)
    feats = [i for i in keep if i < g.n_features]
    cards = dict(zip(feats, feature_cards(model, tcs, g.features[feats], cfg.card_windows))) if feats else {}
    nodes, ids, labels = [], {}, {}
    for i in keep:
        kind, where = g.node_kind(int(i))
        node = dict(kind=kind, influence=float(share[i]), feature=None, activation=None)
        if kind == "feature":
            L, p, f = where
            if L not in labels:
                labels[L] = layer_labels(cfg.set, L)
            node.update(id=f"f:{L}:{p}:{f}", layer=L, pos=p, feature=f, activation=float(g.activations[i]),
                        label=f"L{L} #{f}", card=cards[i], clerp=labels[L].get(f, {}).get("label", ""))
        elif kind == "error":
            L, p = where
            node.update(id=f"e:{L}:{p}", layer=L, pos=p, label=f"err L{L}", card={"norm": float(g.errors_norm[L, p])},
                        clerp=f"what layer {L}'s transcoder misses of its MLP output")
        elif kind == "token":
            node.update(id=f"t:{where[0]}", layer=-1, pos=where[0], label=strs[where[0]], card={"token": strs[where[0]]},
                        clerp=f"the input token {strs[where[0]]!r}")
        else:
            k = where[0]
            tok = model.tokenizer.decode([int(g.logit_tokens[k])])
            node.update(id=f"l:{k}", layer=g.n_layers, pos=g.n_pos - 1, label=f"{tok} {g.logit_probs[k]:.2f}",
                        card={"token": tok, "prob": float(g.logit_probs[k])}, clerp=f"the logit of {tok!r}")
        ids[int(i)] = node["id"]
        nodes.append(node)
    t, s = np.nonzero(pruned.edge_mask)
    w = g.adjacency[t, s]
    influence = pruned.node_influence + logit_weights(len(g.adjacency), g.logit_probs)
    row_total = np.array([np.abs(row).sum() for row in g.adjacency])  # row by row: no N x N temporary
    score = np.abs(w) / np.maximum(row_total[t], 1e-10) * influence[t]
    top = np.argsort(-score, kind="stable")[:cfg.max_page_edges]
    edges = [dict(source=ids[int(s[j])], target=ids[int(t[j])], weight=float(w[j])) for j in top
             if int(t[j]) in ids and int(s[j]) in ids]
    fnodes = [n for n in nodes if n["kind"] == "feature"]
    decoders = np.stack([tcs[n["layer"]].W_dec[n["feature"]].float().cpu().numpy() for n in fnodes]) if fnodes else None
    suggested = suggest_supernodes([n["id"] for n in fnodes], decoders, [labels[n["layer"]].get(n["feature"]) for n in fnodes],
                                   lambda t: model.tokenizer.decode([int(t)])) if fnodes else []
    return dict(title=f"{model.name}: {cfg.prompt}", prompt=cfg.prompt, model=model.name, tokens=strs,
                n_layers=g.n_layers, scores=sc, nodes=nodes, edges=edges, suggested_supernodes=suggested)


def layer_labels(set_dir: str | Path, layer: int) -> dict[int, dict]:
    """Layer L's labels by latent ({} when the set has none: `mechinterp label --set` makes them)."""
    path = labels_path(layer_export(set_dir, layer))
    return {lab["i"]: lab for lab in load_labels(path)["labels"]} if path.exists() else {}


def trace(cfg: TraceConfig, model=None) -> dict:
    from extract.models import load_model
    from mechinterp.views.figures import graph_png, prediction_scatter

    t0 = time.time()
    out = cfg.out_dir()
    if model is None:
        first = next(iter(sorted(Path(cfg.set).glob(f"layer_*/sae/{CFG}"))), None)
        name = json.loads(first.read_text()).get("model_name") if first else None
        if not name:
            raise SAEError(f"no transcoders under {cfg.set} (layer_{{L}}/sae); train them with `mechinterp train-transcoders`")
        model = load_model(name, device=cfg.device)
    tokens = _tokens(model, cfg)  # a bad prompt or answer is refused before the set loads
    targets = cfg.target_tokens or _answer_token(model, cfg)
    tcs = load_set(model, cfg.set)
    out.mkdir(parents=True, exist_ok=True)
    g = _graph(model, tcs, tokens, cfg, out, targets)
    verdict = None
    if cfg.answer is not None:
        with torch.no_grad():
            top = model.tokenizer.decode([int(model.model(tokens.to(model.device)).logits[0, -1].argmax())])
        verdict = top == cfg.answer
        if not verdict:
            print(f"warning: {model.name} does not answer {cfg.answer!r} (its top token is {top!r}); the graph "
                  f"explains the logit of {cfg.answer!r} (p={g.logit_probs[0]:.3f}) as asked", file=sys.stderr)
    full = scores(g.adjacency, g.n_features, g.n_errors, g.logit_probs)
    pr = prune(g.adjacency, g.n_features, g.n_pos, g.logit_probs, cfg.node_threshold, cfg.edge_threshold,
               cfg.max_graph_features)
    kept = pr.node_mask[:g.n_features]
    pruned_sc = scores(g.adjacency, g.n_features, g.n_errors, g.logit_probs, as_error=~kept)
    sc = dict(**full, pruned_replacement=pruned_sc["replacement"], pruned_completeness=pruned_sc["completeness"])
    order = np.argsort(-pr.node_influence[:g.n_features], kind="stable")
    checks = check_nodes(model, tcs, g, [int(i) for i in order[:cfg.n_checks]], cfg.check_factor)
    data = _page_data(model, tcs, g, pr, sc, cfg)
    write_graph_page(data, out / "graph.html")
    write_neuronpedia_graph(out / NEURONPEDIA_JSON, data, {"token_ids": [int(t) for t in g.tokens],
                                                           "logit_tokens": [int(t) for t in g.logit_tokens]})
    graph_png(data, out / "graph.png")
    prediction_scatter(checks["rows"], out / "interventions.png",
                       f"top {len(checks['rows'])} feature nodes, activation x {cfg.check_factor:g}")
    results = dict(prompt=cfg.prompt, tokens=data["tokens"], model=model.name, set=str(Path(cfg.set).resolve()),
                   top_logits=[[model.tokenizer.decode([int(t)]), float(p)] for t, p in zip(g.logit_tokens, g.logit_probs)],
                   answer=cfg.answer, answered=verdict, n_active_features=g.meta["n_active_features"],
                   n_feature_rows=g.n_features, graph_seconds=g.meta["seconds"], exactness=g.meta["exactness"],
                   scores=sc, pruned=dict(features=int(kept.sum()), nodes=int(pr.node_mask.sum()),
                                          edges=int(pr.edge_mask.sum())),
                   interventions=checks, seconds=round(time.time() - t0, 1),
                   peak_rss_gb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
                   config=asdict(cfg))
    (out / RESULTS).write_text(json.dumps(results, indent=2))
    return results
