"""An attribution graph as the JSON that circuit-tracer writes for Neuronpedia's graph viewer
(stdlib only; the owner of that layout here): OUT/graph.neuronpedia.json.

    {"metadata": {"slug", "scan", "prompt", "prompt_tokens", "node_threshold"?, ...},
     "qParams": {"pinnedIds": [], "supernodes": [], "linkType": "both"},
     "nodes": [{"node_id", "feature", "layer", "ctx_idx", "feature_type", "jsNodeId", "clerp",
                "activation", "influence", "token_prob", "is_target_logit"}, ...],
     "links": [{"source": node_id, "target": node_id, "weight"}, ...]}

Node ids: a feature "{layer}_{latent}_{pos}", an error "{layer}_err_{pos}", a token
"E_{token id}_{pos}", a logit "L_{token id}_{pos}"; feature_type "cross layer transcoder" (the
viewer's name for transcoder features, per-layer ones included), "mlp reconstruction error",
"embedding", "logit". `clerp` is each node's label (the feature's label from EXPORT/labels.json).
Written from the graph page's data (interventions/attribution/page.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from mechinterp.formats.atomic import atomic_write_text

NEURONPEDIA_JSON = "graph.neuronpedia.json"
FEATURE_TYPES = {"feature": "cross layer transcoder", "error": "mlp reconstruction error",
                 "token": "embedding", "logit": "logit"}


def _node_id(n: dict, ids: dict) -> str:
    kind, L, p = n["kind"], n["layer"], n["pos"]
    if kind == "feature":
        return f"{L}_{n['feature']}_{p}"
    if kind == "error":
        return f"{L}_err_{p}"
    return f"{'E' if kind == 'token' else 'L'}_{ids[n['id']]}_{p}"


def neuronpedia_graph(data: dict, token_ids: list[int], logit_tokens: list[int], slug: str = "graph") -> dict:
    """The layout above from the page's data (nodes with kind, layer, pos, feature, clerp, ...)."""
    ids = {}
    for n in data["nodes"]:
        if n["kind"] == "token":
            ids[n["id"]] = token_ids[n["pos"]]
        elif n["kind"] == "logit":
            ids[n["id"]] = logit_tokens[int(n["id"].split(":")[1])]
    out_nodes, names = [], {}
    for n in data["nodes"]:
        nid = _node_id(n, ids)
        names[n["id"]] = nid
        card = n.get("card") or {}
        out_nodes.append({
            "node_id": nid, "jsNodeId": nid, "feature": n.get("feature"),
            "layer": "E" if n["kind"] == "token" else str(n["layer"]), "ctx_idx": n["pos"],
            "feature_type": FEATURE_TYPES[n["kind"]], "clerp": n.get("clerp") or n.get("label") or "",
            "activation": n.get("activation"), "influence": n.get("influence"),
            "token_prob": card.get("prob", 0.0) if n["kind"] == "logit" else 0.0,
            "is_target_logit": n["kind"] == "logit" and int(n["id"].split(":")[1]) == 0})
    links = [{"source": names[e["source"]], "target": names[e["target"]], "weight": e["weight"]} for e in data["edges"]]
    meta = {"slug": slug, "scan": data.get("model", ""), "prompt": data.get("prompt", ""),
            "prompt_tokens": data.get("tokens", []), "scores": data.get("scores", {})}
    return {"metadata": meta, "qParams": {"pinnedIds": [], "supernodes": [], "linkType": "both"},
            "nodes": out_nodes, "links": links}


def write_neuronpedia_graph(path: str | Path, data: dict, ids: dict) -> Path:
    doc = neuronpedia_graph(data, ids["token_ids"], ids["logit_tokens"], Path(path).parent.name or "graph")
    atomic_write_text(path, json.dumps(doc, ensure_ascii=False))
    return Path(path)
