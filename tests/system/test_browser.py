"""The feature browser: the static page in headless Chromium (Playwright), the logit tables, the
live server and the script end to end."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from builders import ARTIFACTS, browser_page, make_sae
from conftest import run_script

from sae_jax.features import FeatureStatsConfig, compute_feature_stats
from sae_jax.synthetic import write_synthetic_store

WORDS = ("the cat sat on a mat and dog ran to park in rain while bird sang over tree near river but sun "
         "set so we went home for tea with milk after long day at work where boss said no yes maybe then "
         "night came stars shone moon rose owl flew quiet town slept dream of sea ship sail wind storm wave "
         "rock shore sand shell fish net boat oar rope knot map gold key door lock box lid jar cup").split()


class WordTokenizer:
    """Token id -> a readable word (the synthetic store's ids are 0..99)."""

    def decode(self, ids):
        return "".join((" " if i % 7 else "\n") + WORDS[i % len(WORDS)] for i in ids)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from interventions.browser.page import build_page

    tmp = tmp_path_factory.mktemp("browser")
    store = write_synthetic_store(tmp / "store", d_in=16, n_windows=24, ctx=33, seed=1)
    sae = make_sae(tmp, store, "standard", d_sae=300, dead=(3, 17), dense=(5,))
    stats = compute_feature_stats(sae, store, FeatureStatsConfig(top_n=8, per_band=3, ctx_before=8, ctx_after=3))
    stats.save(tmp / "site")
    build_page(tmp / "site", tmp / "site", sae, tokenizer=WordTokenizer(), chunk=16)
    return tmp / "site", stats


def test_page_in_headless_chromium(site):
    out, stats = site
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    requests = []
    with browser_page(out / "index.html", 1400, 900, requests) as page:
        page.wait_for_selector("body[data-ready='1']")
        # the list renders (virtualised: only the visible rows exist)
        assert page.inner_text("#count") == "300 of 300 features"
        assert page.locator("#spacer .item").count() > 10
        # clicking a feature shows its windows with the highlighted token
        live = int(np.flatnonzero(~stats["dead"] & ~stats["dense"])[0])
        page.click(f"#spacer .item[data-id='{live}']")
        page.wait_for_selector("#card .top .ex .tok.hl")
        assert page.get_attribute("#card", "data-feature") == str(live)
        n_top = int((stats["top_rows"][live] >= 0).sum())
        assert page.locator("#card .top .ex").count() == n_top
        assert page.locator("#card .top .ex .tok.hl").count() == n_top
        hl = float(page.get_attribute("#card .top .ex >> nth=0 >> .tok.hl", "data-act"))
        assert hl == pytest.approx(float(stats["max"][live]), rel=2e-3)
        title = page.get_attribute("#card .top .ex >> nth=0 >> .tok.hl", "title")
        assert title and ":" in title                       # hover shows the value
        assert page.locator("#card svg.hist rect").count() > 0
        assert page.locator("#card .bands .ex").count() > 0
        page.screenshot(path=str(ARTIFACTS / "browser.png"))
        # search by token filters the list
        word = page.inner_text("#card .top .ex >> nth=0 >> .tok.hl").strip()
        page.fill("#search", word)
        n = int(page.inner_text("#count").split()[0])
        assert 0 < n < 300
        texts = page.locator("#spacer .item .ftoks").all_inner_texts()
        assert texts and all(word in t for t in texts)
        page.fill("#search", f"#{live}")
        assert page.locator("#spacer .item").count() >= 1
        page.fill("#search", "zzzz-no-such-token")
        assert page.inner_text("#count").startswith("0 of")
        page.fill("#search", "")
        # sort by max activation; dead and dense flagged, and can be hidden
        page.select_option("#sort", "max-desc")
        first = int(page.get_attribute("#spacer .item >> nth=0", "data-id"))
        assert first == int(np.argmax(stats["max"]))
        page.select_option("#sort", "id")
        assert page.locator("#spacer .item[data-id='3'] .badge.dead").count() == 1
        assert page.locator("#spacer .item[data-id='5'] .badge.dense").count() == 1
        page.check("#hide-dead")
        assert page.inner_text("#count").startswith(f"{300 - int(stats['dead'].sum())} of")
        # a feature in another chunk loads lazily
        page.goto((out / "index.html").as_uri() + "#f=250")
        page.wait_for_selector("#card[data-feature='250'] h2")
    chunks_loaded = {u.rsplit("/", 1)[-1] for u in requests if "/features/" in u}
    assert len(chunks_loaded) < len(list((out / "data" / "features").iterdir()))   # lazily, not all


@pytest.fixture(scope="module")
def labelled_site(tmp_path_factory):
    """A page whose export has offline labels (made from the statistics, as mechinterp browse does)."""
    from interventions.browser.page import build_page
    from interventions.labels.make import label_export

    tmp = tmp_path_factory.mktemp("labelled")
    store = write_synthetic_store(tmp / "store", d_in=16, n_windows=24, ctx=33, seed=1)
    sae = make_sae(tmp, store, "standard", d_sae=64, dead=(3,), dense=(5,))
    compute_feature_stats(sae, store, FeatureStatsConfig(top_n=5, per_band=2)).save(tmp / "site")
    _, labels, _ = label_export(sae, tmp / "site", tokenizer=WordTokenizer())
    build_page(tmp / "site", tmp / "site", sae, tokenizer=WordTokenizer(), chunk=16)
    return tmp / "site", labels


def test_labels_in_the_list_the_card_and_the_search(labelled_site):
    out, labels = labelled_site
    with browser_page(out / "index.html", 1400, 900) as page:
        page.wait_for_selector("body[data-ready='1']")
        assert page.inner_text("#listhead .ftoks") == "label"
        assert page.inner_text("#spacer .item[data-id='0'] .ftoks").endswith(labels[0]["label"])
        assert page.inner_text("#spacer .item[data-id='3'] .ftoks").endswith("dead")
        live = next(lab for lab in labels if '"' in lab["label"] and lab["i"] > 5)   # random data: a "mixed" label
        page.click(f"#spacer .item[data-id='{live['i']}']")
        page.wait_for_selector("#card .panel.label")
        assert page.inner_text("#card .labeltext") == live["label"]
        assert page.locator("#card table.evidence").count() >= 1
        assert f"{live['kind']} rule" in page.inner_text("#card .panel.label")
        page.screenshot(path=str(ARTIFACTS / "browser_labels.png"))
        # search finds a latent by a word of its label, and every hit's label or tokens hold the word
        word = live["label"].split('"')[1].strip()
        page.fill("#search", word)
        hits = [int(i) for i in page.locator("#spacer .item").evaluate_all("rs => rs.map(r => r.dataset.id)")]
        assert live["i"] in hits and len(hits) < 64


def test_page_data_matches_statistics(site):
    out, stats = site
    index = json.loads((out / "data" / "index.js").read_text()[len("window.__index="):-2])
    assert index["d_sae"] == 300 and index["flag"][3] == 1 and index["flag"][5] == 2
    text = (out / "data" / "features" / "c0001.js").read_text()
    chunk = json.loads(text[text.index(",") + 1:-3])
    f = chunk["f"][2]                                    # feature 18
    assert f["i"] == 18 and f["n"] == int(stats["count"][18])
    assert len(f["top"]) == int((stats["top_rows"][18] >= 0).sum())
    ex = f["top"][0]
    assert ex[0] == int(stats["top_rows"][18, 0])
    assert ex[2][ex[3]] == pytest.approx(float(stats["max"][18]), rel=2e-3)
    assert sum(f["h"][1]) == int(stats["count"][18])


def test_logit_tables_match_feature_logit_effects(smollm2):
    from interventions.browser.page import logit_tables
    from interventions.sae import TorchSAE
    from interventions.steer import feature_logit_effects

    torch.manual_seed(0)
    d, s = smollm2.d_model, 40
    w = {"W_enc": torch.randn(d, s), "b_enc": torch.zeros(s), "W_dec": torch.randn(s, d), "b_dec": torch.zeros(d)}
    sae = TorchSAE(w, {"architecture": "standard", "d_in": d, "d_sae": s})
    tab = logit_tables(smollm2, sae.W_dec, top=5, batch=16)
    ref = feature_logit_effects(smollm2, sae, [0, 17, 39], top=5)
    for r in ref:
        i = r["feature"]
        assert [t["id"] for t in r["promoted"]] == tab["up_ids"][i].tolist()
        np.testing.assert_allclose([t["logit"] for t in r["suppressed"]], tab["down"][i], rtol=1e-4, atol=1e-4)


def test_live_server(tiny_model_factory):
    from interventions.browser.live import make_server
    from interventions.sae import TorchSAE

    model = tiny_model_factory("llama")
    torch.manual_seed(0)
    d, s = model.d_model, 32
    w = {"W_enc": torch.randn(d, s), "b_enc": torch.zeros(s), "W_dec": torch.randn(s, d), "b_dec": torch.zeros(d)}
    sae = TorchSAE(w, {"architecture": "standard", "d_in": d, "d_sae": s, "hook_name": "blocks.1.hook_resid_pre"})
    server = make_server(model, sae, port=0, timeout=1.0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert b"Live SAE features" in urllib.request.urlopen(url + "/", timeout=30).read()
        req = urllib.request.Request(url + "/api/encode", data=json.dumps({"text": "Hello there world"}).encode(),
                                     headers={"Content-Type": "application/json"})
        res = json.loads(urllib.request.urlopen(req, timeout=60).read())
        assert res["hook"] == "blocks.1.hook_resid_pre"
        assert res["n_tokens"] == model.to_tokens("Hello there world").shape[1]
        _, cache = model.run_with_cache(model.to_tokens("Hello there world"), names=["blocks.1.hook_resid_pre"])
        f = sae.encode(cache["blocks.1.hook_resid_pre"][0])
        top = res["tokens"][-1]["features"][0]
        assert top[0] == int(f[-1].argmax()) and top[1] == pytest.approx(float(f[-1].max()), rel=1e-3)
        _served_beside_idle_clients(url, server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def _post(port: int, body: bytes, length: str | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("POST", "/api/encode")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", length if length is not None else str(len(body)))
    conn.endheaders(body)
    r = conn.getresponse()
    out = r.status, json.loads(r.read())
    conn.close()
    return out


def _served_beside_idle_clients(url: str, port: int) -> None:
    """Idle connections hold up nobody and are closed after the timeout; bad bodies get 400."""
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    with ThreadPoolExecutor(8) as pool:
        pages = list(pool.map(lambda _: urllib.request.urlopen(url + "/", timeout=10).status, range(16)))
    assert pages == [200] * 16
    for s in idle:                       # the server closed them after its 1 s timeout
        s.settimeout(10)
        assert s.recv(1024) == b""
        s.close()
    assert _post(port, b"[]") == (400, {"error": 'send a JSON object {"text": "..."} with a non-empty text'})
    assert _post(port, b'{"text": 3}')[0] == 400
    assert _post(port, b"{not json")[0] == 400
    status, body = _post(port, b'{"text": "hi"}', length="abc")
    assert status == 400 and "is not a byte count" in body["error"]


@pytest.mark.slow  # fresh interpreters in subprocesses
def test_browse_features_script(tmp_path):
    store = write_synthetic_store(tmp_path / "store", d_in=16, n_windows=16, ctx=17, seed=2)
    sae = make_sae(tmp_path, store, "topk", d_sae=40, k=4)
    r = run_script("scripts/browse_features.py", "--sae", str(sae), "--out", str(tmp_path / "page"), "--no_model",
                   "--top_n", "5", timeout=300)
    assert r.returncode == 0, r.stderr
    for f in ("index.html", "app.js", "style.css", "data/index.js", "data/features/c0000.js", "feature_stats.npz"):
        assert (tmp_path / "page" / f).exists()
    r = run_script("scripts/browse_features.py", "--sae", str(tmp_path / "nope"))
    assert r.returncode == 2 and "not an SAE export" in r.stderr
