"""The attribution graph page (interventions.attribution.page): one self-contained HTML file, driven in
headless Chromium (Playwright) as tests/system/test_browser.py drives the feature browser: the layout,
the node cards, pins, supernodes, and the annotation saved, reloaded and loaded back."""

from __future__ import annotations

import json
import random

import pytest
from builders import ARTIFACTS, PROMPT, browser_page, write_set

from interventions.attribution.page import write_graph_page

TOKENS = ["<bos>", "When", " Mary", " and", " John", " went"]
N_LAYERS = 3
LOGITS = [(" John", 0.41), (" Mary", 0.12), (" the", 0.05)]
# feature nodes: (layer, pos, latent)
FEATURES = [(0, 1, 311), (0, 2, 1021), (0, 2, 88), (0, 4, 1021), (0, 4, 5), (1, 2, 640), (1, 3, 17), (1, 4, 2048),
            (1, 5, 901), (2, 2, 77), (2, 4, 1500), (2, 5, 3), (2, 5, 512), (2, 5, 1999), (1, 5, 444)]
PICKED = "f:2:5:512"                       # the feature the test clicks on
TRICKY = "</script><b>x</b> & <!--"         # a token string that must not break the page


def make_graph() -> dict:
    rng = random.Random(0)
    nodes = [{"id": f"t:{p}", "kind": "token", "layer": -1, "pos": p, "feature": None, "activation": None,
              "influence": round(0.05 + 0.1 * rng.random(), 3), "label": repr(t), "card": {"token": t}}
             for p, t in enumerate(TOKENS)]
    for layer, pos, f in FEATURES:
        card = {"logits_pos": [[w, round(2 - 0.3 * i, 2)] for i, w in enumerate([" John", " him", " his", TRICKY])],
                "logits_neg": [[w, round(-1.5 + 0.2 * i, 2)] for i, w in enumerate([" Mary", " her", " she"])],
                "examples": [{"tokens": ["Then", " John", " gave", " it", " to"], "acts": [0.0, 0.4, 2.5, 0.1, 0.0]},
                             {"tokens": ["so", " Mary", " said"], "acts": [0.2, 1.1, 0.0]}], "note": ""}
        if f == 3:
            card = {"logits_pos": [], "logits_neg": [], "examples": [], "note": "no feature statistics"}
        nodes.append({"id": f"f:{layer}:{pos}:{f}", "kind": "feature", "layer": layer, "pos": pos, "feature": f,
                      "activation": round(0.5 + 4 * rng.random(), 3), "influence": round(rng.random() * 0.3, 3),
                      "label": f"L{layer} #{f}", "card": card})
    for layer, pos in [(0, 2), (1, 4), (2, 5), (2, 4)]:
        nodes.append({"id": f"e:{layer}:{pos}", "kind": "error", "layer": layer, "pos": pos, "feature": None,
                      "activation": None, "influence": round(rng.random() * 0.1, 3), "label": f"err L{layer}",
                      "card": {"norm": round(1 + rng.random(), 3)}})
    for i, (tok, prob) in enumerate(LOGITS):
        nodes.append({"id": f"l:{i}", "kind": "logit", "layer": N_LAYERS, "pos": len(TOKENS) - 1, "feature": None,
                      "activation": None, "influence": 0.0, "label": repr(tok), "card": {"token": tok, "prob": prob}})
    rank = {"token": -1, "logit": N_LAYERS}
    level = {n["id"]: rank.get(n["kind"], n["layer"]) for n in nodes}
    pairs = [(s, t) for s in level for t in level if level[s] < level[t] and not s.startswith("l:")
             and byid_pos(nodes, s) <= byid_pos(nodes, t)]
    edges, seen = [], set()
    for s, t in [(PICKED, "l:0"), ("f:1:2:640", PICKED), ("e:2:5", "l:1")]:
        seen.add((s, t))
        edges.append({"source": s, "target": t, "weight": 1.5})
    while len(edges) < 40:
        s, t = rng.choice(pairs)
        if (s, t) not in seen:
            seen.add((s, t))
            edges.append({"source": s, "target": t, "weight": round(rng.choice([1, 1, -1]) * (0.05 + rng.random()), 3)})
    return {"title": "IOI: When Mary and John went", "prompt": "When Mary and John went", "model": "smollm2-135m",
            "tokens": TOKENS, "n_layers": N_LAYERS,
            "scores": {"replacement": 0.83, "completeness": 0.91, "pruned_replacement": 0.71, "pruned_completeness": 0.88},
            "nodes": nodes, "edges": edges}


def byid_pos(nodes: list[dict], nid: str) -> int:
    return next(n["pos"] for n in nodes if n["id"] == nid)


def page_nodes(result: dict) -> int:
    return result["pruned"]["nodes"]


def _node(nid: str) -> str:
    return f"#graph g.node[data-id='{nid}']"


def test_graph_page_in_headless_chromium(tmp_path):
    data = make_graph()
    assert len(data["nodes"]) == 28 and len(data["edges"]) == 40
    assert any(e["weight"] < 0 for e in data["edges"]) and any(e["weight"] > 0 for e in data["edges"])
    out = write_graph_page(data, tmp_path / "graph.html")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with browser_page(out, 1500, 900, accept_downloads=True) as page:
        page.wait_for_selector("body[data-ready='1']")
        # header, and one SVG element per node and per edge
        assert page.inner_text("#title") == data["title"]
        assert "smollm2-135m" in page.inner_text("#meta") and page.inner_text("#prompt") == data["prompt"]
        assert "0.830" in page.inner_text("#scores [data-score='replacement']")
        assert page.locator("#graph g.node").count() == len(data["nodes"])
        assert page.locator("#graph path.edge").count() == len(data["edges"])
        assert page.locator("#graph path.edge.neg").count() == sum(e["weight"] < 0 for e in data["edges"])
        for kind, n in (("feature", 15), ("error", 4), ("token", 6), ("logit", 3)):
            assert page.locator(f"#graph g.node.{kind}").count() == n
        # token nodes at the bottom, logits on top, layer 0 below layer 2
        y = lambda nid: page.locator(_node(nid)).bounding_box()["y"]
        assert y("t:0") > y("f:0:1:311") > y("f:2:2:77") > y("l:0")
        # click a feature: its card, its edges highlighted, the rest faded
        page.click(_node(PICKED))
        page.wait_for_selector(f"#card[data-id='{PICKED}']")
        card = page.inner_text("#card")
        assert PICKED in card and "#512" in card and "L2" in card
        assert " John" in page.inner_text("#card .logit-table") and " her" in page.inner_text("#card .logit-table")
        assert TRICKY in page.inner_text("#card .logit-table")             # escaped in the data, shown as text
        assert page.locator("#card .examples .ex").count() == 2
        assert page.inner_text("#card .examples .ex >> nth=0") == "Then John gave it to"
        assert page.inner_text("#card .examples .ex >> nth=0 >> .tok.hl") == " gave"
        degree = sum(PICKED in (e["source"], e["target"]) for e in data["edges"])
        assert page.locator("#graph path.edge.hi").count() == degree
        downstream, stack = set(), [PICKED]  # every edge on a path from the node to the logits
        while stack:
            nid = stack.pop()
            for i, e in enumerate(data["edges"]):
                if e["source"] == nid and i not in downstream:
                    downstream.add(i)
                    stack.append(e["target"])
        assert page.locator("#graph path.edge.path").count() == len(downstream) > 0
        assert any(data["edges"][i]["target"].startswith("l:") for i in downstream)
        lit = {i for i, e in enumerate(data["edges"]) if PICKED in (e["source"], e["target"])} | downstream
        assert page.locator("#graph path.edge.faded").count() == len(data["edges"]) - len(lit)
        assert "L1 #640" in page.inner_text("#card .incoming") and "l:0" in page.inner_text("#card .outgoing")
        # a feature without statistics says so
        page.click(_node("f:2:5:3"))
        page.wait_for_selector("#card[data-id='f:2:5:3'] .note")
        assert "no feature statistics" in page.inner_text("#card .note")
        # pin two nodes: from the card, and by shift-click
        page.click(_node(PICKED))
        page.click("#pin-btn")
        assert page.inner_text("#pin-btn") == "unpin"
        page.click(_node("f:1:2:640"), modifiers=["Shift"])
        assert page.locator("#pinned li").count() == 2
        page.check("#show-pinned")
        assert page.locator("#graph g.node:not(.hidden)").count() == 2
        assert page.locator("#graph path.edge:not(.hidden)").count() == 1      # 640 -> 512
        page.uncheck("#show-pinned")
        # group them into a supernode
        page.check(f"#pinned li[data-id='{PICKED}'] input")
        page.check("#pinned li[data-id='f:1:2:640'] input")
        page.fill("#group-label", "John mover")
        page.click("#group-btn")
        assert page.locator("#supernodes > li").count() == 1
        assert page.text_content("#graph g.supernode text") == "John mover"
        page.screenshot(path=str(ARTIFACTS / "graph_page.png"))
        # save: the download is the annotation
        with page.expect_download() as dl:
            page.click("#save-btn")
        assert dl.value.suggested_filename == "graph_annotation.json"
        saved = json.loads(open(dl.value.path(), encoding="utf-8").read())
        assert saved == page.evaluate("window.__annotation()")
        assert saved == {"graph": data["title"], "pinned": [PICKED, "f:1:2:640"],
                         "supernodes": [{"label": "John mover", "members": [PICKED, "f:1:2:640"]}]}
        (tmp_path / "graph_annotation.json").write_text(json.dumps(saved))
        # reload: nothing kept; load the file: the pins and the supernode are back
        page.reload()
        page.wait_for_selector("body[data-ready='1']")
        assert page.locator("#supernodes > li").count() == 0 and page.locator("#graph g.supernode").count() == 0
        page.set_input_files("#load-file", str(tmp_path / "graph_annotation.json"))
        page.wait_for_selector("#graph g.supernode")
        assert page.text_content("#graph g.supernode text") == "John mover"
        assert page.locator("#pinned li").count() == 2 and "John mover" in page.inner_text("#supernodes")
        assert page.evaluate("window.__annotation()") == saved
        # ids not in this graph are dropped, with a visible notice
        other = {"graph": "another", "pinned": ["t:1", "f:9:9:9"],
                 "supernodes": [{"label": "gone", "members": ["f:9:9:9"]}, {"label": "tok", "members": ["t:1", "x"]}]}
        (tmp_path / "other.json").write_text(json.dumps(other))
        page.set_input_files("#load-file", str(tmp_path / "other.json"))
        page.wait_for_selector("#notice.warn")
        note = page.inner_text("#notice")
        assert "ignored 2 id(s)" in note and "f:9:9:9, x" in note and "another" in note
        assert page.evaluate("window.__annotation()")["supernodes"] == [{"label": "tok", "members": ["t:1"]}]
        page.click("#supernodes > li button.rm")                              # supernodes are removable
        assert page.locator("#graph g.supernode").count() == 0 and page.evaluate("window.__annotation()")["supernodes"] == []
        # not an annotation at all: a notice, no exception
        (tmp_path / "bad.json").write_text("[1, 2")
        page.set_input_files("#load-file", str(tmp_path / "bad.json"))
        # a locator, not wait_for_function: the page's CSP forbids the eval that one needs
        page.locator("#notice", has_text="cannot load").wait_for()


def test_labels_and_suggested_supernodes(tmp_path):
    data = make_graph()
    for n in data["nodes"]:
        if n["kind"] == "feature":
            n["clerp"] = f'" John" / " him" (#{n["feature"]})'
    names = ["f:0:2:1021", "f:0:4:1021", "f:1:2:640"]
    data["suggested_supernodes"] = [{"label": "john / him", "members": names, "similarity": 0.8},
                                    {"label": "window start", "members": ["f:0:1:311", "f:1:3:17"], "similarity": 0.6}]
    out = write_graph_page(data, tmp_path / "graph.html")
    with browser_page(out, 1500, 900) as page:
        page.wait_for_selector("body[data-ready='1']")
        assert "(#512)" in page.text_content(_node(PICKED) + " title")          # the label on hover
        page.click(_node(PICKED))
        page.wait_for_selector(f"#card[data-id='{PICKED}'] .clerp")
        assert page.inner_text("#card .clerp") == '" John" / " him" (#512)'
        # suggest: the groups appear; rename one, take a member out of it; undo removes them all
        assert page.inner_text("#suggest-btn") == "suggest supernodes (2)"
        page.click("#suggest-btn")
        assert page.locator("#graph g.supernode").count() == 2
        assert page.evaluate("window.__annotation()")["supernodes"] == [
            {"label": "john / him", "members": names}, {"label": "window start", "members": ["f:0:1:311", "f:1:3:17"]}]
        page.once("dialog", lambda d: d.accept("the name John"))
        page.click("#supernodes > li >> nth=0 >> button.rename")
        page.click("#supernodes > li >> nth=0 >> details.members summary")
        page.click("#supernodes > li >> nth=0 >> details.members li >> nth=2 >> button.out")
        assert page.evaluate("window.__annotation()")["supernodes"][0] == {"label": "the name John", "members": names[:2]}
        assert page.text_content("#graph g.supernode >> nth=0 >> text") == "the name John"
        page.click("#undo-btn")
        assert page.locator("#graph g.supernode").count() == 0 and page.evaluate("window.__annotation()")["supernodes"] == []
        assert page.is_disabled("#undo-btn")


def test_a_crowded_graph_opens_fitted_and_stacked(tmp_path):
    """30 layers, 24 positions and 60 features in one cell (the dense stack a real graph has at its first
    token): the page opens with every node inside the panel, no scroll bar, the crowded cell stacked in
    a compact block; "1:1" shows the drawing at full size, larger than the panel."""
    data = make_graph()
    data["n_layers"], data["tokens"] = 30, [f" w{p}" for p in range(24)]
    for n in data["nodes"]:
        if n["kind"] == "logit":
            n["layer"], n["pos"] = 30, 23
    data["nodes"] += [{"id": f"f:0:1:{f}", "kind": "feature", "layer": 0, "pos": 1, "feature": f, "activation": 1.0,
                       "influence": 0.001 * (f % 7), "label": f"L0 #{f}", "card": {}} for f in range(1000, 1060)]
    out = write_graph_page(data, tmp_path / "graph.html")
    with browser_page(out, 1200, 700) as page:
        page.wait_for_selector("body[data-ready='1']")
        panel = page.locator("#graph").bounding_box()
        assert page.evaluate("document.querySelector('#graph svg').dataset.fitted") == "1"
        assert page.evaluate("(g => g.scrollWidth <= g.clientWidth && g.scrollHeight <= g.clientHeight)"
                             "(document.getElementById('graph'))")
        boxes = [page.locator(_node(n["id"])).bounding_box() for n in data["nodes"]]
        for b in boxes:
            assert panel["x"] <= b["x"] and b["x"] + b["width"] <= panel["x"] + panel["width"] + 1
            assert panel["y"] <= b["y"] and b["y"] + b["height"] <= panel["y"] + panel["height"] + 1
        crowded = boxes[-60:]
        xs, ys = [b["x"] for b in crowded], [b["y"] for b in crowded]
        assert len({round(y) for y in ys}) > 1                      # stacked in rows, not one long line,
        assert max(xs) - min(xs) < panel["width"] / 4                 # a compact block
        assert max(ys) - min(ys) < panel["height"] / 32               # inside its own layer's row
        page.click("#fit-btn")
        assert page.evaluate("(g => g.scrollWidth > g.clientWidth || g.scrollHeight > g.clientHeight)"
                             "(document.getElementById('graph'))")


def test_write_graph_page_refuses_bad_data(tmp_path):
    data = make_graph()
    with pytest.raises(ValueError, match="needs a 'nodes' list"):
        write_graph_page({k: v for k, v in data.items() if k != "nodes"}, tmp_path / "a.html")
    bad = {**data, "edges": data["edges"] + [{"source": "f:0:1:311", "target": "f:7:7:7", "weight": 0.5}]}
    with pytest.raises(ValueError, match=r"edges\[40\]: target 'f:7:7:7' is not the id of a node"):
        write_graph_page(bad, tmp_path / "b.html")
    bad = {**data, "nodes": data["nodes"] + [dict(data["nodes"][0])]}
    with pytest.raises(ValueError, match="appears twice"):
        write_graph_page(bad, tmp_path / "c.html")
    bad = {**data, "edges": [{**data["edges"][0], "weight": float("nan")}]}
    with pytest.raises(ValueError, match="not a finite number"):
        write_graph_page(bad, tmp_path / "d.html")
    assert not list(tmp_path.iterdir())


def test_page_is_self_contained_and_escaped(tmp_path):
    data = make_graph()
    out = write_graph_page(data, tmp_path)                    # a directory: graph.html inside it
    assert out == tmp_path / "graph.html"
    text = out.read_text(encoding="utf-8")
    assert "<script src" not in text and "<link" not in text and "http://" not in text.replace(
        "http://www.w3.org/2000/svg", "") and "https://" not in text
    assert text.count("</script>") == 2 and TRICKY not in text
    _, rest = text.split("window.__graph = ", 1)
    back = json.loads(rest[:rest.index(";</script>")])
    assert back["nodes"][7]["card"]["logits_pos"][3][0] == TRICKY
    assert [n["id"] for n in back["nodes"]] == [n["id"] for n in data["nodes"]] and back["edges"] == data["edges"]


@pytest.mark.slow  # the stage end to end
def test_the_trace_stage_page_of_a_real_graph_in_headless_chromium(tiny_dir, tmp_path):
    """The page `mechinterp trace` writes (a tiny model, random transcoders): it draws, a feature's card opens."""

    from mechinterp.cli import main as cli
    from mechinterp.formats.labels import labels_path, save_labels
    from mechinterp.formats.transcoder_set import layer_export

    set_dir = write_set(tmp_path / "set", str(tiny_dir), 64, 2)
    for L in (0, 1):      # labels as `mechinterp label --set` writes them: the graph's nodes carry them
        labels = [{"i": i, "label": f"L{L} latent {i}"} for i in range(64)]
        save_labels(labels_path(layer_export(set_dir, L)), labels, "offline", 64)
    cli(["trace", "--set", str(set_dir), "--prompt", PROMPT, "--out", str(tmp_path / "g"), "--device", "cpu",
         "--n_checks", "2", "--batch", "32"])
    result = json.loads((tmp_path / "g" / "results.json").read_text())
    with browser_page(tmp_path / "g" / "graph.html", 1500, 900) as page:
        page.wait_for_selector("body[data-ready='1']")
        assert page.locator("#graph g.node.feature").count() == result["pruned"]["features"] > 0
        assert page.locator("#graph g.node.token").count() == len(result["tokens"])
        first = page.locator("#graph g.node.feature").first.get_attribute("data-id")
        page.click(_node(first))
        page.wait_for_selector(f"#card[data-id='{first}']")
        assert "promoted" in page.inner_text("#card") and page.locator("#card .logit-table").count() == 1
        L, f = first.split(":")[1], first.split(":")[3]
        assert page.inner_text("#card .clerp") == f"L{L} latent {f}"
    np_graph = json.loads((tmp_path / "g" / "graph.neuronpedia.json").read_text())
    assert len(np_graph["nodes"]) == page_nodes(result) and all(n["clerp"] for n in np_graph["nodes"])
