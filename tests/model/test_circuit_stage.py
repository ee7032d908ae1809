"""The circuit-discovery stage on SmolLM2 IOI: EAP-IG and ACDC, the curves, the chosen circuit, its
roles, its saved scores, and the diagram page in headless Chromium."""

from __future__ import annotations

import json

import pytest
import torch
from builders import browser_page


def test_circuit_stage_on_smollm2_ioi(smollm2, tmp_path):
    from extract.circuits.discover import CircuitConfig, discover

    cfg = CircuitConfig(methods="eap_ig,acdc", n_prompts=4, n_heldout=4, ig_steps=2, batch=4, acdc_candidates=0.0005,
                        out=str(tmp_path))
    r = discover(smollm2, cfg, log=lambda s: None)
    assert r["clean_metric"] > 1.0
    acdc = r["methods"]["acdc"]["circuit"]  # ACDC pruned EAP-IG's top 35 edges
    assert 0 < acdc["edges"] <= acdc["candidates"] <= 35 and acdc["trials"] <= acdc["candidates"]
    assert -1 < acdc["faithfulness"] < 1.5 and -1 < acdc["heldout"] < 1.5
    for c in r["methods"].values():
        f = c["faithfulness"]
        assert f[-1] == pytest.approx(1.0, abs=1e-4)  # all edges kept: the model
        assert max(f[:-1]) > 0.3 and 0 < c["cpr"] < 1 and 0 < c["cmd"] < 1
        assert c["edges"] == sorted(c["edges"]) and c["edges"][-1] == r["graph"]["edges"]
    ch = r["chosen"]
    assert ch["edges"] == len(ch["edge_list"]) and -1 < ch["heldout"] < 1.5
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["chosen"]["faithfulness"] == ch["faithfulness"] and (tmp_path / "faithfulness.png").stat().st_size > 10_000
    saved = torch.load(tmp_path / "scores.pt", weights_only=False)
    assert set(saved["methods"]) == {"eap_ig", "acdc"} and "curve" in saved["methods"]["eap_ig"]
    assert saved["methods"]["acdc"]["acdc_state"]["next"] == acdc["candidates"]  # finished, saved
    roles = ch["roles"]
    assert roles and all(set(r["attention"]) >= {"end->IO", "S2->S1"} for r in roles.values())
    for r in roles.values():  # each assigned role meets its own test
        a = r["attention"]
        if r["role"] in ("name mover", "negative name mover"):
            assert a["end->IO"] >= 0.2 and (r["dla"] > 0.1) == (r["role"] == "name mover")
        if r["role"] == "S-inhibition":
            assert r["si_effect"] < 0
    _check_diagram_page(tmp_path / "circuit.html", min(cfg.diagram_edges, ch["edges"]), roles)


def _check_diagram_page(path, n_edges, roles):
    with browser_page(path) as page:
        assert page.locator("line.edge").count() == n_edges
        nodes = page.locator("g.node")
        names = [nodes.nth(i).get_attribute("data-name") for i in range(nodes.count())]
        assert "logits" in names and set(roles) <= set(names)
        head = next(iter(roles))
        title = page.locator(f"g.node[data-name='{head}'] title").text_content()
        assert "DLA on IO-S" in title and "attention end->IO" in title  # what hovering shows
