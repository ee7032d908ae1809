"""Attribution graphs (interventions/attribution): exact direct effects on random models of every family,
each edge checked against removing its source in the frozen model, the influence-ranked selection,
circuit-tracer's pruning and scores on a graph small enough to do by hand, node ablations in the
real model, and `mechinterp trace` end to end with its bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from builders import PROMPT, random_transcoders, write_set

from extract.hooked import HookedModel
from extract.tiny_models import tiny_hf_model
from interventions.attribution import attribute as attr
from interventions.attribution import frozen
from interventions.attribution.attribute import AttributionConfig, attribute
from interventions.attribution.check import check_nodes
from interventions.attribution.prune import prune, scores
from interventions.sae import TorchSAE
from mechinterp.cli import main as cli
from mechinterp.formats.attribution_graph import load_graph


def torch_set(model, **kw) -> dict[int, TorchSAE]:
    return {L: TorchSAE(w, c, f"random/{L}") for L, (w, c) in random_transcoders(model.d_model, model.n_layers, **kw).items()}


@pytest.fixture(scope="module")
def tok():
    from extract.models import gpt2_tokenizer

    return gpt2_tokenizer()


def hooked(family, tok):
    return HookedModel(tiny_hf_model(family), tok, name=f"tiny-{family}", bos_token_id=tok.eos_token_id)


@pytest.mark.parametrize("family", ["llama", "gpt2", "gemma3"])
@pytest.mark.parametrize("arch,skip", [("jumprelu", False), ("topk", True)])
def test_every_target_is_the_sum_of_its_edges_plus_its_bias(family, arch, skip, tok):
    model = hooked(family, tok)
    tcs = torch_set(model, arch=arch, skip=skip)
    toks = model.to_tokens(PROMPT)
    g = attribute(model, tcs, toks, AttributionConfig(batch=32), progress=False)
    ex = g.meta["exactness"]
    # the frozen replay reproduces the real forward, and rows + bias give each target's value
    assert ex["value_vs_real_forward"] < 1e-5 * max(1.0, ex["max_abs_value"])
    assert ex["max_abs_residual"] < 1e-4 * max(1.0, ex["max_abs_value"])
    n = len(g.adjacency)
    assert g.n_features == g.meta["n_active_features"] > 0
    assert n == g.n_features + g.n_errors + g.n_pos + len(g.logit_tokens)
    assert not g.adjacency[g.n_features:n - len(g.logit_tokens)].any()  # errors and tokens have no inputs
    assert not g.adjacency[:, n - len(g.logit_tokens):].any()            # logits feed nothing
    L = g.features[:, 0]
    assert not g.adjacency[:g.n_features, :g.n_features][L[:, None] <= L[None, :]].any()  # only earlier layers
    assert np.isclose(g.logit_probs.sum(), 0.95, atol=0.2) or len(g.logit_tokens) == 10


def test_each_edge_is_the_change_when_its_source_is_removed(tok):
    """Remove one source's write in the frozen model: its target moves by exactly the edge."""
    model = hooked("llama", tok)
    tcs = torch_set(model, arch="jumprelu", skip=True)
    toks = model.to_tokens(PROMPT)
    g = attribute(model, tcs, toks, AttributionConfig(batch=32), progress=False)
    cache = frozen.record(model, toks)
    prompt = attr._features(model, tcs, cache)
    logit_ids, _, logit_vecs = attr.logit_targets(model, cache.logits, 10, 0.95)
    base = attr._Frozen(model, tcs, cache, cache.embed.float(), prompt.writes, 1).values(prompt, tcs, logit_vecs)
    rng = np.random.default_rng(0)
    n_logit = len(logit_ids)
    checked = 0
    for src in rng.choice(g.n_features, 4, replace=False).tolist() + [g.n_features + 1 * g.n_pos + 3,
                                                                       g.n_features + g.n_errors + 2]:
        kind, where = g.node_kind(src)
        embed, writes = cache.embed.float().clone(), {k: v.clone() for k, v in prompt.writes.items()}
        if kind == "feature":
            L, p, f = where
            writes[L][p] -= float(g.activations[src]) * tcs[L].W_dec[f]
        elif kind == "error":
            L, p = where
            writes[L][p] -= prompt.errors[L, p]
        else:
            embed[0, where[0]] = 0
        moved = attr._Frozen(model, tcs, cache, embed, writes, 1).values(prompt, tcs, logit_vecs)
        # rows of g: features in the same order as prompt.features (all of them fit), then logits
        change = (base - moved).numpy()
        rows = np.concatenate([g.adjacency[:g.n_features, src], g.adjacency[-n_logit:, src]])
        assert np.abs(change - rows).max() < 1e-4 * max(1.0, np.abs(change).max()), (kind, where)
        checked += int(np.abs(rows).max() > 1e-3)
    assert checked >= 4


def test_influence_ranked_selection_keeps_the_graph_exact(tok, capfd):
    model = hooked("gpt2", tok)
    tcs = torch_set(model, arch="jumprelu")
    toks = model.to_tokens(PROMPT)
    full = attribute(model, tcs, toks, AttributionConfig(batch=16), progress=False)
    capfd.readouterr()
    part = attribute(model, tcs, toks, AttributionConfig(batch=16, max_feature_nodes=64, update_interval=1), progress=True)
    assert part.n_features == 64 < full.n_features
    assert (f"{full.n_features:,} features are active; the graph gives rows to the 64 of most influence "
            f"(--max_feature_nodes); the other {full.n_features - 64:,} are left out of it") in capfd.readouterr().err
    assert part.meta["exactness"]["max_abs_residual"] < 1e-4 * max(1.0, part.meta["exactness"]["max_abs_value"])
    # the 64 chosen carry most of the full graph's feature influence on the logits
    from interventions.attribution.prune import influence, logit_weights, normalize

    inf = influence(normalize(full.adjacency), logit_weights(len(full.adjacency), full.logit_probs))[:full.n_features]
    key = {tuple(f): i for i, f in enumerate(full.features.tolist())}
    chosen = [key[tuple(f)] for f in part.features.tolist()]
    top64 = np.sort(inf)[::-1][:64].sum()
    assert inf[chosen].sum() > 0.8 * top64


def test_pruning_and_scores_on_a_graph_done_by_hand():
    # nodes [f0, f1, e0, e1, t0, t1, logit]: logit <- f0 (2), e0 (2); f0 <- t0 (1), f1 (tiny); f1 <- t1
    A = np.zeros((7, 7), np.float32)
    A[6, 0], A[6, 2] = 2.0, -2.0
    A[0, 4], A[0, 1] = 1.0, 1e-4
    A[1, 5] = 1.0
    probs = np.array([1.0], np.float32)
    s = scores(A, n_features=2, n_errors=2, logit_probs=probs)
    # influence: f0 .5, e0 .5, t0 .5 (through f0), f1 ~5e-5; replacement = .5 / (.5 + .5)
    assert s["replacement"] == pytest.approx(0.5, abs=1e-3)
    # completeness: nodes f0, e0, t0 fully explained, the logit half error: (.5 + .5 + .5 + .5) / 2.5
    assert s["completeness"] == pytest.approx(0.8, abs=1e-3)
    p = prune(A, n_features=2, n_tokens=2, logit_probs=probs, node_threshold=0.8, edge_threshold=0.98)
    assert p.node_mask.tolist() == [True, False, True, False, True, True, True]
    assert p.edge_mask[6, 0] and p.edge_mask[0, 4] and not p.edge_mask[0, 1] and not p.edge_mask[1, 5]
    # a pruned graph counts its pruned features as errors
    s2 = scores(A, 2, 2, probs, as_error=np.array([True, False]))
    assert s2["replacement"] == pytest.approx(0.5 / 1.5, abs=1e-3)  # t0 .5 / (t0 .5 + f0 .5 + e0 .5)


def test_the_edge_cut_is_summed_exactly():
    """The 98% cut over millions of float32 edge scores lands where an exact running sum puts it
    (a float32 running sum drifts by a few tenths of a percent and keeps too many edges)."""
    import itertools
    import math

    from interventions.attribution.prune import _threshold

    scores = np.random.default_rng(0).exponential(1.0, 3_000_000).astype(np.float32)
    desc = np.sort(scores)[::-1]
    total = math.fsum(desc.tolist())
    exact = next(i for i, c in enumerate(itertools.accumulate(desc.tolist()))
                 if c / total >= 0.98)
    assert _threshold(scores, 0.98) == float(desc[exact])
    drifted = np.cumsum(desc) / desc.sum()  # what a float32 running sum gives
    assert int(np.searchsorted(drifted, 0.98)) != exact


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_a_small_change_of_a_last_layer_feature_moves_the_logit_as_its_edge_says(family, tok):
    """With no later feature and no later attention, only the live final norm separates the real
    derivative from the graph's edge (whose norm scale is frozen): same signs, strongly correlated."""
    model = hooked(family, tok)
    tcs = torch_set(model, arch="jumprelu")
    toks = model.to_tokens(PROMPT)
    g = attribute(model, tcs, toks, AttributionConfig(batch=32), progress=False)
    last = np.flatnonzero((g.features[:, 0] == model.n_layers - 1) & (g.features[:, 1] == g.n_pos - 1))
    logit_row = len(g.adjacency) - len(g.logit_tokens)
    strongest = last[np.argsort(-np.abs(g.adjacency[logit_row, last]))[:8]]
    res = check_nodes(model, tcs, g, strongest.tolist(), factor=0.999)
    assert len(res["rows"]) == 8
    for r in res["rows"]:
        assert r["direct"] == pytest.approx(r["linear"], rel=1e-6)  # nothing downstream
        # attention and norms frozen as in the graph, the edge is the change
        assert r["measured_frozen"] == pytest.approx(r["direct"], rel=1e-3, abs=1e-6)
    live = res["direct_vs_measured"]
    assert live["sign_agreement"] == 1.0 and live["pearson"] > 0.85


def test_the_graph_predicts_small_changes_of_early_features_through_every_later_feature(tok):
    """A layer-0 feature moves the logit through chains of later features; with attention and norms
    frozen and a change small enough that no feature crosses its threshold, the graph's linear
    prediction is what happens."""
    model = hooked("gpt2", tok)
    tcs = torch_set(model, arch="jumprelu")
    g = attribute(model, tcs, model.to_tokens(PROMPT), AttributionConfig(batch=32), progress=False)
    first = np.flatnonzero(g.features[:, 0] == 0)[::37][:8]
    res = check_nodes(model, tcs, g, first.tolist(), factor=0.999)
    for r in res["rows"]:
        assert r["measured_frozen"] == pytest.approx(r["linear"], rel=0.1, abs=1e-5)
        assert abs(r["linear"]) > 10 * abs(r["direct"])  # most of the effect is indirect


def tiny_tokenizer_ids(model_dir, text: str) -> list[int]:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)(text, add_special_tokens=False)["input_ids"]


@pytest.mark.slow  # the stage end to end
def test_trace_command_end_to_end_and_its_bad_inputs(tiny_dir, tmp_path, capfd):
    set_dir = write_set(tmp_path / "set", str(tiny_dir), 64, 2)
    out = tmp_path / "graph"
    argv = ["trace", "--set", str(set_dir), "--prompt", PROMPT, "--out", str(out), "--device", "cpu",
            "--answer", " nowhere", "--n_checks", "5", "--batch", "32"]
    cli(argv)
    err = capfd.readouterr().err
    assert "does not answer ' nowhere'" in err and "the graph explains the logit of ' nowhere'" in err
    r = json.loads((out / "results.json").read_text())
    assert r["answered"] is False and r["exactness"]["max_abs_residual"] < 1e-4 * max(1, r["exactness"]["max_abs_value"])
    assert 0 <= r["scores"]["pruned_replacement"] <= r["scores"]["replacement"] + 1e-6 <= 1 + 1e-6
    assert len(r["interventions"]["rows"]) == 5 and r["pruned"]["features"] <= 500
    for name in ("graph.html", "graph.png", "interventions.png", "graph.npz", "graph.json"):
        assert (out / name).stat().st_size > 0
    g = load_graph(out)
    assert g.meta["prompt"] == PROMPT and g.n_layers == 2
    assert g.logit_tokens.tolist() == tiny_tokenizer_ids(tiny_dir, " nowhere")  # the asked token, not the top ones
    cli(argv)  # the same command again reuses the graph
    assert "reusing the graph" in capfd.readouterr().err

    def fails(extra_argv, needle):
        with pytest.raises(SystemExit) as e:
            cli(extra_argv)
        msg = capfd.readouterr().err.strip().splitlines()
        assert e.value.code == 2 and msg[-1].startswith("error:") and needle in msg[-1], msg
    before = (out / "graph.npz").read_bytes()
    fails(["trace", "--set", str(set_dir), "--prompt", "other words", "--out", str(out)],
          f"{out} holds the results of another --prompt")
    refused = tmp_path / "refused"
    fails(["trace", "--set", str(set_dir), "--prompt", "word " * 3000, "--out", str(refused)], "reads at most")
    fails(["trace", "--set", str(set_dir), "--prompt", "  ", "--out", str(refused)], "--prompt is empty")
    fails(["trace", "--set", str(set_dir), "--prompt", PROMPT, "--answer", " conscientiously", "--out", str(refused)],
          "--answer ' conscientiously' is 3 tokens")
    one = tmp_path / "one"
    write_set(one, str(tiny_dir), 64, 1)
    fails(["trace", "--set", str(one), "--prompt", PROMPT, "--out", str(refused)], "no transcoder for layer(s) 1")
    wide = write_set(tmp_path / "wide", str(tiny_dir), 32, 2)
    fails(["trace", "--set", str(wide), "--prompt", PROMPT, "--out", str(refused)], "does not fit")
    other = write_set(tmp_path / "other", str(tiny_dir), 64, 2)
    cfg_path = other / "layer_1" / "sae" / "cfg.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["model_name"] = cfg["metadata"]["model_name"] = "gpt2"
    cfg_path.write_text(json.dumps(cfg))
    fails(["trace", "--set", str(other), "--prompt", PROMPT, "--out", str(refused), "--device", "cpu"], "trained on 'gpt2'")
    fails(["trace", "--set", str(tmp_path / "nothing"), "--prompt", PROMPT], "no transcoders under")
    assert (out / "graph.npz").read_bytes() == before


def test_the_interventions_figure_keeps_the_graphs_scale_when_a_measured_value_explodes(tmp_path):
    from mechinterp.views.figures import prediction_scatter

    rows = [dict(linear=v, measured=0.9 * v, measured_frozen=v) for v in (-0.4, 0.1, 0.3, 0.5)]
    rows.append(dict(linear=0.2, measured=0.1, measured_frozen=4e6))  # a frozen model that exploded
    drawn = prediction_scatter(rows, tmp_path / "interventions.png", "5 nodes")
    assert drawn == {"lim": pytest.approx(0.75), "beyond": 1}
    assert (tmp_path / "interventions.png").stat().st_size > 5_000
