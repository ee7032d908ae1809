"""Labels: the token counts behind them equal a brute-force count, the offline rules find planted
features, the scorer measures what it claims (detection and fuzzing against known truths, the
baselines), the labels file round-trips and refuses damage, supernodes group what belongs together,
and the Neuronpedia-style graph file carries every node's label."""

from __future__ import annotations

import json

import numpy as np
import pytest
from builders import make_sae

from interventions.attribution.supernodes import suggest_supernodes
from interventions.labels.excerpts import Excerpts, cut
from interventions.labels.offline import LabelConfig, offline_labels
from interventions.labels.score import ScoreConfig, rule_simulator, scorable, score_labels, shuffled, top_token
from mechinterp.formats.labels import LabelError, label_texts, labels_path, load_labels, save_labels
from mechinterp.formats.neuronpedia_graph import neuronpedia_graph
from mechinterp.formats.sae import encode_np, load_export
from mechinterp.formats.store import open_store
from sae_jax.features import FeatureStatsConfig, compute_feature_stats
from sae_jax.synthetic import write_synthetic_store


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    return write_synthetic_store(tmp_path_factory.mktemp("lab") / "store", d_in=16, n_windows=24, ctx=33, seed=3)


def test_token_counts_equal_brute_force(tmp_path, store_path):
    sae = make_sae(tmp_path, store_path, "standard", d_sae=40)
    st = compute_feature_stats(sae, store_path, FeatureStatsConfig(chunk_rows=100, label_tokens=5, contexts=False))
    w, c = load_export(sae)
    store = open_store(store_path)
    f = encode_np(w, c, store.read_windows(np.arange(store.n_windows)))
    toks = np.stack([np.asarray(store.window_tokens(i)) for i in range(store.n_windows)])
    tok, prev = toks[:, 1:].ravel(), toks[:, :-1].ravel()
    pos = np.tile(np.arange(toks.shape[1] - 1), store.n_windows)
    np.testing.assert_array_equal(st["corpus_token_count"][:100], np.bincount(tok, minlength=100)[:100])
    np.testing.assert_array_equal(st["corpus_prev_count"][:100], np.bincount(prev, minlength=100)[:100])
    for s in range(f.shape[1]):
        fires = f[:, s] > 0
        np.testing.assert_array_equal(st["pos_count"][s], np.bincount(pos[fires], minlength=toks.shape[1] - 1))
        for ids_key, count_key, side in (("tok_ids", "tok_count", tok), ("prev_ids", "prev_count", prev)):
            want = np.bincount(side[fires], minlength=100)
            got_ids, got = st[ids_key][s], st[count_key][s]
            k = int((got > 0).sum())
            assert k == min(5, int((want > 0).sum()))
            # the kept tokens are the most frequent ones (ties: lower id first), with their counts
            order = np.lexsort((np.arange(len(want)), -want))[:k]
            np.testing.assert_array_equal(got_ids[:k], order)
            np.testing.assert_array_equal(got[:k], want[order])
            mass = st["tok_mass" if ids_key == "tok_ids" else "prev_mass"][s][:k]
            np.testing.assert_allclose(mass, [f[fires & (side == t), s].sum() for t in order], rtol=1e-5)


def planted_stats(n_rows=20_000, vocab=50, rpw=32, seed=0):
    """Statistics of four planted latents over random tokens: 0 fires on tokens 7 and 9, 1 after
    token 3, 2 at the first two positions, 3 never."""
    rng = np.random.default_rng(seed)
    tok = rng.integers(0, vocab, n_rows)
    prev = np.r_[-1, tok[:-1]]
    pos = np.arange(n_rows) % rpw
    fires = [np.isin(tok, [7, 9]), prev == 3, pos < 2, np.zeros(n_rows, bool)]
    S = len(fires)
    arr = {"count": np.array([f.sum() for f in fires]), "n_tokens": np.int64(n_rows),
           "freq": np.array([f.mean() for f in fires]),
           "corpus_token_count": np.bincount(tok, minlength=vocab),
           "corpus_prev_count": np.bincount(prev[prev >= 0], minlength=vocab),
           "corpus_position_count": np.bincount(pos, minlength=rpw), "pos_first": np.int64(1),
           "pos_count": np.stack([np.bincount(pos[f], minlength=rpw) for f in fires])}
    for key, side in (("tok", tok), ("prev", prev)):
        ids, cnt = np.full((S, 8), -2 if key == "prev" else -1), np.zeros((S, 8), np.int64)
        for s, f in enumerate(fires):
            c = np.bincount(side[f & (side >= 0)], minlength=vocab)
            top = np.argsort(-c, kind="stable")[:8]
            top = top[c[top] > 0]
            ids[s, :len(top)], cnt[s, :len(top)] = top, c[top]
        arr[f"{key}_ids"], arr[f"{key}_count"] = ids, cnt
    return arr, tok, prev, pos, fires


def test_offline_rules_find_planted_features():
    arr, *_ = planted_stats()
    labels = offline_labels(arr, lambda t: f"w{t}", None, LabelConfig(excerpt=32))
    assert [lab["kind"] for lab in labels] == ["token", "after", "position", "dead"]
    assert sorted(labels[0]["rule"]["tokens"]) == [7, 9] and labels[0]["label"] in ('"w7" / "w9"', '"w9" / "w7"')
    assert labels[1]["rule"]["after"] == [3] and labels[1]["label"] == 'after "w3"'
    assert labels[2]["rule"]["positions"] == [1, 2] and "window start" in labels[2]["label"]
    assert labels[0]["expected"]["tpr"] == 1.0 and labels[0]["tokens"][0][3] == 1.0      # precision 1


def excerpts_of(tok, prev, pos, fires, length=32):
    n = len(tok) // length * length
    e, o = np.divmod(np.arange(n), length)
    parts = [(e[f[:n]], o[f[:n]], np.full(f[:n].sum(), s), np.ones(f[:n].sum(), np.float32)) for s, f in enumerate(fires)]
    cat = [np.concatenate([p[k] for p in parts]) for k in range(4)]
    shape = (-1, length)
    return Excerpts(tok[:n].reshape(shape), prev[:n].reshape(shape), pos[:n].reshape(shape) + 1,
                    cat[0].astype(np.int32), cat[1].astype(np.int16), cat[2].astype(np.int32), cat[3])


def test_scores_of_planted_labels_and_baselines():
    arr, tok, prev, pos, fires = planted_stats(seed=1)
    labels = offline_labels(arr, str, None)
    held, htok, hprev, hpos, hfires = planted_stats(seed=2)        # other text, the same features
    ex = excerpts_of(htok, hprev, hpos, hfires, length=16)        # half the excerpts start a window
    cfg = ScoreConfig(n_examples=20, min_active=5)
    lat = scorable(ex, labels, cfg)
    assert list(lat) == [0, 1, 2]                                    # the dead latent is not scored
    r = score_labels(labels, ex, held["freq"], cfg=cfg, latents=lat)
    for i in lat:                                                    # an exact rule scores 1 on both
        assert r["per_latent"][int(i)]["detection"] == 1.0 and r["per_latent"][int(i)]["fuzzing"] == 1.0
    assert r["summary"]["detection"] == 1.0 and r["summary"]["n"] == 3
    assert sum(b["n"] for b in r["summary"]["by_density"]) == 3
    # wrong latents' labels do worse; so does the top token alone (it misses token 9 of latent 0)
    worse = score_labels(shuffled(labels, lat), ex, held["freq"], cfg=cfg, latents=lat)["summary"]
    assert worse["detection"] < 0.8
    alone = score_labels(top_token(labels, np.array([7, 3, 5, -1])), ex, held["freq"], cfg=cfg, latents=lat)
    assert alone["per_latent"][0]["fuzzing"] < 0.9 and alone["per_latent"][0]["detection"] < 1.0
    # the simulator reads only the rule
    assert rule_simulator({"rule": {"tokens": [7]}}, np.array([[7, 1]]), np.array([[0, 7]]), np.array([[1, 2]])).tolist() \
        == [[True, False]]


def test_excerpts_cut_and_round_trip(tmp_path):
    windows = np.arange(2 * 9).reshape(2, 9)
    tok, prev, pos, where = cut(windows, 1, 4)
    assert tok.tolist() == [[1, 2, 3, 4], [5, 6, 7, 8], [10, 11, 12, 13], [14, 15, 16, 17]]
    assert prev[0].tolist() == [0, 1, 2, 3] and pos[2].tolist() == [1, 2, 3, 4]
    assert where.tolist() == [[0, 1], [0, 5], [1, 1], [1, 5]]
    ex = Excerpts(tok, prev, pos, np.array([1, 0]), np.array([2, 0]), np.array([5, 3]), np.array([0.5, 2.0], np.float32))
    back = Excerpts.load(ex.save(tmp_path / "h.npz"))
    e, o, v = back.firing(5)
    assert e.tolist() == [1] and o.tolist() == [2] and v.tolist() == [0.5]
    with pytest.raises(ValueError, match="no excerpt"):
        cut(windows, 1, 20)


def test_labels_file_round_trip_and_refusals(tmp_path):
    labels = [{"i": 1, "label": "b"}, {"i": 0, "label": "a", "kind": "token"}]
    path = save_labels(labels_path(tmp_path), labels, "offline", 3)
    assert path.name == "labels.json" and labels_path(tmp_path, "http://host:8000/v1").name == "labels.host_8000_v1.json"
    assert label_texts(tmp_path) == ["a", "b", ""]
    assert [lab["i"] for lab in load_labels(path)["labels"]] == [0, 1]
    with pytest.raises(LabelError, match="needs an int 'i'"):
        save_labels(path, [{"i": "x", "label": 3}], "offline", 1)
    assert label_texts(tmp_path) == ["a", "b", ""]                    # a refused write keeps the file
    path.write_text('{"format": 1, "labels": ')
    with pytest.raises(LabelError, match="re-run mechinterp label"):
        load_labels(path)
    with pytest.raises(LabelError, match="mechinterp label --sae"):
        load_labels(tmp_path / "nowhere")


def test_concept_labels_name_aligned_latents_and_keep_offline_ones():
    from interventions.labels.concepts import concept_labels

    f1 = np.array([[0.9, 0.1], [0.05, 0.2], [0.1, 0.5]])
    offline = {0: {"i": 0, "label": '"C"', "kind": "token"}, 1: {"i": 1, "label": "mixed: x", "kind": "mixed"}}
    got = concept_labels(["conserved:Cys23", "region:CDR3"], f1, offline)
    assert got[0]["label"] == 'conserved:Cys23 (F1 0.90) · "C"' and got[0]["kind"] == "concept"
    assert got[0]["concepts"] == [["conserved:Cys23", 0.9], ["region:CDR3", 0.1]]
    assert got[1] == {"i": 1, "label": "mixed: x", "kind": "mixed"}          # below min_f1: the offline label
    assert got[2]["label"] == "region:CDR3 (F1 0.50)"


def test_supernodes_group_by_label_and_decoder():
    rng = np.random.default_rng(0)
    name, sink = rng.standard_normal(8), rng.standard_normal(8)
    dec = np.stack([name + 0.1 * rng.standard_normal(8) for _ in range(3)] + [sink + 0.1 * rng.standard_normal(8) for _ in range(2)]
                   + [rng.standard_normal(8)])
    text = {1: " Mary", 2: " John", 3: "<bos>"}.get
    labels = [{"rule": {"tokens": [1, 2]}}, {"rule": {"tokens": [1]}}, {"rule": {"tokens": [2, 1]}},
              {"rule": {"positions": [1, 1]}}, {"rule": {"positions": [1, 2]}}, {"rule": {"tokens": [3]}}]
    groups = suggest_supernodes([f"n{i}" for i in range(6)], dec, labels, text)
    assert [sorted(g["members"]) for g in groups] == [["n0", "n1", "n2"], ["n3", "n4"]]
    assert groups[0]["label"] in ("mary / john", "john / mary") and groups[1]["label"] == "window start"
    assert suggest_supernodes(["a"], dec[:1], labels[:1], text) == []


def test_neuronpedia_graph_names_every_node():
    data = {"prompt": "When Mary", "model": "m", "tokens": ["<bos>", "When", " Mary"], "scores": {},
            "nodes": [{"id": "t:2", "kind": "token", "layer": -1, "pos": 2, "clerp": "the input token ' Mary'"},
                      {"id": "f:0:2:5", "kind": "feature", "layer": 0, "pos": 2, "feature": 5, "clerp": '" Mary"',
                       "activation": 1.5, "influence": 0.2},
                      {"id": "e:0:2", "kind": "error", "layer": 0, "pos": 2, "clerp": "err"},
                      {"id": "l:0", "kind": "logit", "layer": 1, "pos": 2, "clerp": "the logit", "card": {"prob": 0.7}}],
            "edges": [{"source": "t:2", "target": "f:0:2:5", "weight": 0.5}, {"source": "f:0:2:5", "target": "l:0", "weight": 1.0}]}
    g = neuronpedia_graph(data, [1, 50, 99], [42])
    assert [n["node_id"] for n in g["nodes"]] == ["E_99_2", "0_5_2", "0_err_2", "L_42_2"]
    assert [n["feature_type"] for n in g["nodes"]] == ["embedding", "cross layer transcoder", "mlp reconstruction error", "logit"]
    assert all(n["clerp"] for n in g["nodes"]) and g["nodes"][3]["is_target_logit"] and g["nodes"][3]["token_prob"] == 0.7
    assert g["links"] == [{"source": "E_99_2", "target": "0_5_2", "weight": 0.5},
                          {"source": "0_5_2", "target": "L_42_2", "weight": 1.0}]
    json.dumps(g)


class _Words:
    def decode(self, ids):
        return "".join(f" w{i}" for i in ids)


@pytest.fixture
def endpoint():
    """A local OpenAI-style endpoint in three moods: /ok answers, /slow never answers in time,
    /garbage answers something else. Stands in for a user's server; only the failures are its point."""
    import http.server
    import threading
    import time

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path.startswith("/slow"):
                time.sleep(1.5)
            if self.path.startswith("/garbage"):
                reply = b"<html>502 bad gateway</html>"
            else:
                asked = body["messages"][0]["content"]
                answer = "Yes" if asked.startswith("A feature") else "w5 words"
                reply = json.dumps({"choices": [{"message": {"content": answer}}]}).encode()
            try:
                self.send_response(200)
                self.end_headers()
                self.wfile.write(reply)
            except OSError:
                pass                                        # the client gave up (the /slow case)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_an_endpoint_that_fails_is_recorded_per_latent_and_never_hangs(tmp_path, store_path, endpoint):
    import time

    from interventions.labels.llm import EndpointLM
    from interventions.labels.llm_run import explain, simulate

    sae = make_sae(tmp_path, store_path, "standard", d_sae=12)
    stats = compute_feature_stats(sae, store_path, FeatureStatsConfig(top_n=3, per_band=1))
    store = open_store(store_path)
    for mood, want in (("slow", "did not answer within 0.3s"), ("garbage", "not an OpenAI-style chat completion")):
        lm = EndpointLM(f"{endpoint}/{mood}/v1", timeout_s=0.3)
        t0 = time.perf_counter()
        got = explain(lm, [0, 1, 2], stats, store, _Words(), sae, progress=False)
        assert time.perf_counter() - t0 < 5
        assert all(want in got[i]["error"] and got[i]["label"] == "" for i in (0, 1, 2))
        saved = load_labels(labels_path(sae, lm.name))["labels"]
        assert len(saved) == 3 and all(want in lab["error"] for lab in saved)
    lm = EndpointLM(f"{endpoint}/ok/v1", timeout_s=5)
    good = explain(lm, [0, 1], stats, store, _Words(), sae, progress=False)
    assert good[0] == {"i": 0, "label": "w5 words"}                  # a later run fills what failed before
    ex = excerpts_of(*planted_stats(n_rows=3200, seed=4)[1:])
    per = simulate(lm, "row", {0: good[0]}, ex, [0], ScoreConfig(n_examples=5), _Words(), tmp_path / "sim.json", False)
    assert per[0]["tpr"] == 1.0 and per[0]["tnr"] == 0.0 and per[0]["detection"] == 0.5     # it says Yes to all
    assert json.loads((tmp_path / "sim.json").read_text())["row"]["0"]["detection"] == 0.5


def test_the_heldout_excerpts_are_recomputed_for_new_weights_in_the_same_folder(tmp_path, store_path, monkeypatch):
    from types import SimpleNamespace

    from interventions.labels import evaluate, heldout

    calls = []
    made = SimpleNamespace(n=2, tokens=np.zeros((2, 8)), save=lambda path: path.write_bytes(b"x"))
    monkeypatch.setattr(heldout, "heldout_windows", lambda *a: calls.append("made") or np.zeros((2, 33), np.int64))
    monkeypatch.setattr(heldout, "heldout_excerpts", lambda *a: [made])
    monkeypatch.setattr(evaluate.Excerpts, "load", classmethod(lambda cls, path: calls.append("cached") or made))
    cfg = SimpleNamespace(heldout_tokens=64)
    sae = make_sae(tmp_path, store_path, "standard", d_sae=12)
    for _ in range(2):
        evaluate._excerpts(None, None, sae, cfg, 8, tmp_path / "out")
    make_sae(tmp_path, store_path, "standard", d_sae=12, seed=5)          # retrained into the same folder
    evaluate._excerpts(None, None, sae, cfg, 8, tmp_path / "out")
    assert calls == ["made", "cached", "made"]


def test_labels_count_as_made_only_for_the_weights_they_were_made_from(tmp_path, store_path):
    from interventions.labels.make import labelled, weights_fingerprint

    sae = make_sae(tmp_path, store_path, "standard", d_sae=12)
    assert not labelled(sae)
    save_labels(labels_path(sae), [{"i": 0, "label": "x"}], "offline", 12, {"weights": weights_fingerprint(sae)})
    assert labelled(sae)
    make_sae(tmp_path, store_path, "standard", d_sae=12, seed=5)          # retrained into the same folder
    assert not labelled(sae)
