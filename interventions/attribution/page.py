"""The attribution graph page: one prompt's pruned attribution graph -> ONE self-contained HTML
file that works from file:// (no server, no CDN, no network; the data are inlined).

    write_graph_page(data, "runs/graph/ioi.html")         # data: the dict below

The page shows the graph as an SVG: x = token position (the prompt's tokens along the bottom),
y = layer (token embeddings at the bottom, layers 0..n_layers-1, the logits on top). Features are
circles, error nodes diamonds, tokens and logits labelled boxes; a node's size follows its
influence on the logits, an edge's width its |direct effect| (blue positive, orange negative).
Clicking a node opens its card (activation, influence, logit tables, top examples with per-token
highlight, strongest incoming and outgoing edges). Nodes can be pinned (card button or
shift-click), shown alone ("pinned only"), grouped into labelled supernodes, and the annotation
saved as graph_annotation.json / loaded back from such a file. The header shows the title, the
prompt, the model and the replacement / completeness scores (full and pruned).

data = {"title", "prompt", "model", "tokens": [str per position], "n_layers": int,
        "scores": {"replacement", "completeness", "pruned_replacement", "pruned_completeness"},
        "nodes": [{"id", "kind": feature|error|token|logit, "layer", "pos", "feature", "activation",
                   "influence", "label", "clerp", "card": {...}}],
        "edges": [{"source": id, "target": id, "weight": float}],
        "suggested_supernodes": [{"label", "members": [id, ...], "similarity"}]}
`label` is the node's short name (L12 #345), `clerp` what it means (the feature's label; shown on
hover and on the card). The "suggest supernodes" button adds the suggested groups (undo removes
them again); a supernode can be renamed, and a member taken out of it.
Token nodes sit at layer -1, logit nodes at layer n_layers. Cards by kind: feature {"logits_pos":
[[tok, v]...], "logits_neg": [...], "examples": [{"tokens": [...], "acts": [...]}], "note"};
logit {"token", "prob"}; error {"norm"}; token {"token"}.
"""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path

ASSETS = Path(__file__).with_name("assets")
JS_PARTS = ("graph_kit.js", "graph_layout.js", "graph_panels.js", "graph_actions.js")   # one scope, in this order
KINDS = ("feature", "error", "token", "logit")
SCORES = ("replacement", "completeness", "pruned_replacement", "pruned_completeness")
NODE_DEFAULTS = {"feature": None, "activation": None, "influence": 0.0, "label": None, "clerp": "", "card": None}


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def check_graph_data(data: dict) -> dict:
    """Raise ValueError (saying what is wrong, and where) unless `data` follows the schema above;
    return a copy with the optional fields filled in (title, prompt, model, scores, node defaults)."""
    if not isinstance(data, dict):
        raise ValueError(f"graph data must be a dict, not {type(data).__name__}")
    for key in ("nodes", "edges", "tokens"):
        if not isinstance(data.get(key), list):
            got = "missing" if key not in data else f"a {type(data[key]).__name__}"
            raise ValueError(f"graph data needs a {key!r} list ({key!r} is {got})")
    n_layers, n_pos = data.get("n_layers"), len(data["tokens"])
    if not _is_int(n_layers) or n_layers < 1:
        raise ValueError(f"graph data needs 'n_layers', a positive int (got {n_layers!r})")
    if not n_pos or not all(isinstance(t, str) for t in data["tokens"]):
        raise ValueError("graph data 'tokens' must be a non-empty list of strings (one per position)")
    nodes, ids = [], set()
    for i, n in enumerate(data["nodes"]):
        if not isinstance(n, dict) or not isinstance(n.get("id"), str) or not n["id"]:
            raise ValueError(f"nodes[{i}] has no string 'id'")
        nid, kind = n["id"], n.get("kind")
        if nid in ids:
            raise ValueError(f"node id {nid!r} appears twice")
        ids.add(nid)
        if kind not in KINDS:
            raise ValueError(f"node {nid!r}: kind {kind!r} is not one of {', '.join(KINDS)}")
        layer, pos = n.get("layer"), n.get("pos")
        fixed = {"token": -1, "logit": n_layers}.get(kind)
        if not _is_int(layer) or (layer != fixed if fixed is not None else not 0 <= layer < n_layers):
            want = f"{fixed}" if fixed is not None else f"0..{n_layers - 1}"
            raise ValueError(f"node {nid!r}: layer {layer!r} (a {kind} node's layer must be {want})")
        if not _is_int(pos) or not 0 <= pos < n_pos:
            raise ValueError(f"node {nid!r}: pos {pos!r} is not a position 0..{n_pos - 1}")
        infl = n.get("influence")
        if infl is not None and not _is_num(infl):
            raise ValueError(f"node {nid!r}: influence {infl!r} is not a finite number")
        node = {**NODE_DEFAULTS, **n}
        node["label"] = node["label"] if isinstance(node["label"], str) else nid
        node["clerp"] = node["clerp"] if isinstance(node["clerp"], str) else ""
        node["card"] = node["card"] if isinstance(node["card"], dict) else {}
        node["influence"] = node["influence"] or 0.0
        nodes.append(node)
    for i, e in enumerate(data["edges"]):
        if not isinstance(e, dict):
            raise ValueError(f"edges[{i}] is not a dict")
        for end in ("source", "target"):
            if not isinstance(e.get(end), str) or e[end] not in ids:
                raise ValueError(f"edges[{i}]: {end} {e.get(end)!r} is not the id of a node")
        if not _is_num(e.get("weight")):
            raise ValueError(f"edges[{i}] ({e['source']} -> {e['target']}): weight {e.get('weight')!r} is not a finite number")
    scores = data.get("scores") or {}
    suggested = data.get("suggested_supernodes") or []
    for s in suggested:
        members = s.get("members", [None]) if isinstance(s, dict) else [None]
        if not isinstance(s, dict) or not isinstance(s.get("label"), str) or \
                not all(isinstance(m, str) and m in ids for m in members):
            raise ValueError(f"suggested supernode {s!r:.80}: needs a str label and members that are node ids")
    return {**data, "title": str(data.get("title") or "attribution graph"), "prompt": str(data.get("prompt") or ""),
            "model": str(data.get("model") or ""), "scores": {k: scores.get(k) for k in SCORES}, "nodes": nodes,
            "suggested_supernodes": suggested}


def _script_json(obj) -> str:
    """JSON that is safe inside <script>: no '<', '>' or '&' left raw (so no '</script>' or '<!--'
    in a token string can end the script), nor the JS-unsafe line separators."""
    try:
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError as err:
        raise ValueError(f"graph data holds NaN or infinity, which JSON cannot carry ({err})") from None
    for raw, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, esc)
    return text


def render_graph_page(data: dict) -> str:
    """The page's HTML text (write_graph_page writes it)."""
    graph = check_graph_data(data)
    css = (ASSETS / "graph.css").read_text(encoding="utf-8")
    js = "(function () {\n  \"use strict\";\n" + "".join((ASSETS / f).read_text(encoding="utf-8") for f in JS_PARTS) + "})();\n"
    if "</style" in css.lower() or "</script" in js.lower():
        raise RuntimeError("an asset of the graph page would close its own <style>/<script> tag")
    parts = {"title": html.escape(graph["title"]), "css": css, "js": js, "data": _script_json(graph)}
    template = (ASSETS / "graph.html").read_text(encoding="utf-8")
    # one pass: what is put in is never searched for placeholders again
    return re.sub(r"\{\{(\w+)\}\}", lambda m: parts[m.group(1)], template)


def write_graph_page(data: dict, out: str | Path) -> Path:
    """Write the self-contained page for `data` to `out` (an .html path; a directory gets
    graph.html inside it) and return the path. ValueError if `data` does not follow the schema."""
    text = render_graph_page(data)
    out = Path(out)
    if out.is_dir():
        out = out / "graph.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
