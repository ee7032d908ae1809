"""Edge-level circuits: the split-input forward is exact, EAP is the first-order term of edge
patching, pruning and the MIB areas by hand (the discovery stage on SmolLM2 IOI: tests/model/test_circuit_stage.py)."""

from __future__ import annotations

import math

import pytest
import torch

from extract.circuits.edge_graph import CircuitGraph
from extract.circuits.faithfulness import areas, monotonicity
from extract.circuits.scores import edge_scores, patch_edges
from extract.circuits.split import SplitForward, node_writes

FAMILIES = ["gpt2", "llama", "gemma3", "neox"]


def _prompts(seed=1, n=3, pos=10):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 50000, (n, pos), generator=g), torch.randint(0, 50000, (n, pos), generator=g)


def _metric(logits, part):
    return logits[:, -1, 11] - logits[:, -1, 22]


@pytest.mark.parametrize("family", FAMILIES)
def test_split_forward_keeps_the_model_and_all_edges_removed_is_the_corrupted_run(tiny_model_factory, family):
    m = tiny_model_factory(family)
    g = CircuitGraph.of(m)
    clean, corrupt = _prompts()
    with torch.no_grad():
        base, corrupted = m.run_with_hooks(clean)[:, -1], m.run_with_hooks(corrupt)[:, -1]
        writes = node_writes(m, g, clean)
        resid = m.run_with_cache(clean, names=[f"blocks.{m.n_layers - 1}.hook_resid_post"])[1]
        assert torch.allclose(writes.sum(0), resid[f"blocks.{m.n_layers - 1}.hook_resid_post"], atol=1e-5)
        split = SplitForward(m, g, leaves=True).run(clean)[:, -1]  # every attention input split, zero leaves
        removed = torch.stack([torch.zeros_like(g.valid), g.valid])  # keep all / remove all
        both = SplitForward(m, g, removed=removed, ref=node_writes(m, g, corrupt)).run(clean.repeat(2, 1))[:, -1]
    assert (corrupted - base).abs().max() > 0.3
    assert torch.allclose(split, base, atol=2e-5)
    assert torch.allclose(both[:3], base, atol=2e-5)
    assert torch.allclose(both[3:], corrupted, atol=2e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_circuits_that_differ_late_join_the_batch_late_and_match_the_plain_batch(tiny_model_factory, family):
    m = tiny_model_factory(family)
    g = CircuitGraph.of(m)
    clean, corrupt = _prompts(n=3, seed=5)
    ref = node_writes(m, g, corrupt)
    # variants of a random circuit, each less one edge read at layer 0, 1, 2 or by the logits
    drop = torch.tensor([(0, g.attn_inputs(1).start), (0, g.mlp_input(1)), (0, g.attn_inputs(2).start + 1),
                         (0, g.logits), (g.head(0, 1), g.mlp_input(2)), (0, g.mlp_input(0))])
    circuit = g.valid & (torch.rand(g.valid.shape, generator=torch.Generator().manual_seed(0)) < 0.7)
    circuit[drop[:, 0], drop[:, 1]] = True
    removed = (g.valid & ~circuit).expand(len(drop) + 1, -1, -1).clone()  # the circuit, and it less one edge
    removed[torch.arange(1, len(drop) + 1), drop[:, 0], drop[:, 1]] = True
    seen = []
    first = m._layers[0].register_forward_pre_hook(
        lambda mod, args, kwargs: seen.append(kwargs.get("hidden_states", args[0] if args else None).shape[0]),
        with_kwargs=True)
    try:
        grown_forward = SplitForward(m, g, removed=removed, ref=ref)
        grown = grown_forward.run(clean.repeat(len(removed), 1))[:, -1]
    finally:
        first.remove()
    plain = SplitForward(m, g, removed=removed, ref=ref, grow=False).run(clean.repeat(len(removed), 1))[:, -1]
    alone = torch.cat([SplitForward(m, g, removed=r[None], ref=ref).run(clean)[:, -1] for r in removed])
    reader_layer = drop[:, 1] // g.per_layer_in
    assert seen == [3 * (1 + int((reader_layer == 0).sum()))]  # the circuit and the layer-0 variants only
    assert int(grown_forward.fork.max()) == int(reader_layer.max()) > 0
    assert (plain[3:] - plain[:3].repeat(len(drop), 1)).abs().max() > 1e-3  # the variants change the output
    assert torch.allclose(grown, plain, atol=2e-5) and torch.allclose(grown, alone, atol=2e-5)


@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_eap_is_the_first_order_term_of_patching_each_edge(tiny_model_factory, family):
    m = tiny_model_factory(family)
    g = CircuitGraph.of(m)
    clean, corrupt = _prompts(n=4)
    scores = edge_scores(m, g, clean, corrupt, _metric, steps=1, batch=2)
    assert scores[~g.valid].abs().max() == 0
    wc, wx = node_writes(m, g, clean), node_writes(m, g, corrupt)
    edges = g.valid.nonzero()[torch.randperm(g.n_edges, generator=torch.Generator().manual_seed(0))[:30]]
    removed = torch.zeros(len(edges), g.n_up, g.n_down, dtype=torch.bool)
    removed[torch.arange(len(edges)), edges[:, 0], edges[:, 1]] = True
    eps = 1e-2  # central difference of patching towards the corrupted write
    plus = patch_edges(m, g, clean, wc + eps * (wx - wc), removed, _metric).mean(1)
    minus = patch_edges(m, g, clean, wc - eps * (wx - wc), removed, _metric).mean(1)
    est = scores[edges[:, 0], edges[:, 1]]
    assert est.abs().max() > 0.01
    assert torch.allclose((plus - minus) / (2 * eps), est, atol=2e-5 + 1e-3 * float(est.abs().max()))


def test_integrated_gradients_track_exact_patching_better_than_one_step(tiny_model_factory):
    m = tiny_model_factory("llama")
    g = CircuitGraph.of(m)
    clean, corrupt = _prompts(n=4, seed=3)
    eap = edge_scores(m, g, clean, corrupt, _metric, steps=1)
    ig = edge_scores(m, g, clean, corrupt, _metric, steps=16)
    edges = g.valid.nonzero()
    removed = torch.zeros(len(edges), g.n_up, g.n_down, dtype=torch.bool)
    removed[torch.arange(len(edges)), edges[:, 0], edges[:, 1]] = True
    exact = patch_edges(m, g, clean, node_writes(m, g, corrupt), removed, _metric, max_rows=256).mean(1)
    exact = exact - _metric(m.run_with_hooks(clean), None).mean()
    err_eap = (eap[edges[:, 0], edges[:, 1]] - exact).abs().mean()
    err_ig = (ig[edges[:, 0], edges[:, 1]] - exact).abs().mean()
    assert err_ig < err_eap


def test_acdc_prunes_by_real_patching_and_resumes(tiny_model_factory):
    from extract.circuits.acdc import ACDCState, acdc, acdc_order

    m = tiny_model_factory("llama")
    g = CircuitGraph.of(m)
    clean, corrupt = _prompts(n=4, seed=3)
    ref = node_writes(m, g, corrupt)

    def faith(circuit):
        m_c, m_empty, m_full = patch_edges(m, g, clean, ref, torch.stack(
            [g.valid & ~circuit, g.valid, torch.zeros_like(g.valid)]), _metric).mean(1)
        return float((m_c - m_empty) / (m_full - m_empty))

    order = acdc_order(g, g.valid)
    assert len(order) == g.n_edges and order[0, 1] == g.logits and order[0, 0] == g.n_up - 1
    assert (order[:, 1].diff() <= 0).all()  # from the logits back

    keep_all = acdc(m, g, clean, ref, g.valid, _metric, threshold=0.0)  # only removals that help go
    assert keep_all.faithfulness >= 1.0 - 1e-5 and keep_all.faithfulness == pytest.approx(faith(keep_all.kept), abs=1e-5)
    assert acdc(m, g, clean, ref, g.valid, _metric, threshold=10.0).kept.sum() == 0

    tau = 0.02
    run = acdc(m, g, clean, ref, g.valid, _metric, threshold=tau)
    removed = run.trials - int(run.kept.sum())
    assert 0 < run.kept.sum() < g.n_edges and run.trials <= g.n_edges
    assert run.faithfulness == pytest.approx(faith(run.kept), abs=1e-5)
    assert run.faithfulness > 1.0 - removed * tau  # each removal cost less than tau
    assert (run.deltas[run.kept] >= tau).all()  # each kept edge was tested and cost at least tau
    one_at_a_time = acdc(m, g, clean, ref, g.valid, _metric, threshold=tau, speculate=1)
    assert torch.equal(one_at_a_time.kept, run.kept) and one_at_a_time.trials == run.trials
    assert torch.allclose(one_at_a_time.deltas, run.deltas, atol=1e-5)
    assert one_at_a_time.discarded == 0 < run.discarded  # some speculative trials were run again

    saved = []

    def interrupt(state):
        saved.append(ACDCState(**{k: v.clone() if torch.is_tensor(v) else v for k, v in state.as_dict().items()}))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        acdc(m, g, clean, ref, g.valid, _metric, threshold=tau, save=interrupt, save_every=10)
    assert 10 <= saved[0].next < 10 + 4  # saved once 10 edges are behind it (up to 4 trials per forward)
    resumed = acdc(m, g, clean, ref, g.valid, _metric, threshold=tau, state=saved[0])
    assert torch.equal(resumed.kept, run.kept) and resumed.trials == run.trials


def test_graph_sizes_pruning_and_head_circuits():
    g = CircuitGraph(n_layers=2, n_heads=2, n_kv_heads=1)
    assert (g.n_up, g.n_down) == (7, 11)
    # layer 0 attention (q0 q1 k v) reads the input; mlp0 input + 2 heads; layer 1 attention 4 nodes; mlp1 7 - 1; logits 7
    assert g.n_edges == 4 * 1 + 3 + 4 * 4 + 6 + 7
    kept = torch.zeros_like(g.valid)
    kept[0, g.attn_inputs(0).start] = True      # input -> a0.h0 q
    kept[g.head(0, 0), g.logits] = True         # a0.h0 -> logits: a path
    kept[g.head(0, 1), g.logits] = True         # a0.h1 has no input: dropped
    kept[0, g.mlp_input(1)] = True              # input -> m1, and m1 writes nowhere: dropped
    pruned = g.prune(kept)
    assert pruned.sum() == 2 and pruned[0, g.attn_inputs(0).start] and pruned[g.head(0, 0), g.logits]
    kept[0, g.attn_inputs(0).start + 2] = True  # input -> the shared key: a0.h1 now has an input
    assert g.prune(kept)[g.head(0, 1), g.logits]
    circuit = g.head_circuit([(1, 0)])
    names = {(e["from"], e["to"]) for e in g.edges_json(circuit)}
    assert ("a1.h0", "logits") in names and not any("a1.h1" in a or "a0.h" in a for a, _ in names)
    assert ("input", "a1.h0<q>") in names and ("m0", "a1.g0<k>") in names
    with pytest.raises(ValueError, match="asked for"):
        g.top_edges(torch.ones(g.n_up, g.n_down), g.n_edges + 1)


def test_greedy_grows_from_the_logits():
    g = CircuitGraph(n_layers=2, n_heads=2, n_kv_heads=1)
    scores = torch.zeros(g.n_up, g.n_down)
    scores[g.head(0, 1), g.mlp_input(1)] = 9.0   # the best edge, but m1 reaches the logits only through a weak edge
    scores[g.mlp(1), g.logits] = 0.5
    scores[0, g.attn_inputs(0).start + 1] = 0.1  # input -> a0.h1 q
    scores[0, g.logits] = 1.0
    top = g.top_edges(scores, 2)                 # a0.h1 -> m1 and input -> logits: the first dangles
    assert top.sum() == 1 and top[0, g.logits]
    greedy = g.greedy_edges(scores, 4)           # input -> logits, m1 -> logits, a0.h1 -> m1, input -> a0.h1
    assert greedy.sum() == 4 and greedy[g.head(0, 1), g.mlp_input(1)] and greedy[0, g.attn_inputs(0).start + 1]


def test_cpr_and_cmd_by_hand():
    assert areas([10, 100, 1000], [0.5, 0.5, 0.5]) == pytest.approx((0.5, 0.5))
    # trapezoids over log x: [0, 1] on the first half of the log range, [1, 1] on the second
    cpr, cmd = areas([10, 100, 1000], [0.0, 1.0, 1.0])
    assert cpr == pytest.approx(0.75) and cmd == pytest.approx(0.25)
    cpr, _ = areas([1, 10], [0.2, 0.6])
    assert cpr == pytest.approx(0.4) and math.isfinite(cpr)
    # per-prompt faithfulness at three sizes: the last step falls by 0.1 on every prompt (no noise) ...
    steady = monotonicity(torch.tensor([[0.1, 0.3], [0.5, 0.7], [0.4, 0.6]]))
    assert not steady["monotone_within_noise"] and steady["largest_fall"] == pytest.approx(0.1)
    # ... here it falls by 0.1 on average but the paired differences are +0.5 / -0.3: within 2 SE
    noisy = monotonicity(torch.tensor([[0.1, 0.3], [0.5, 0.7], [0.0, 1.0]]))
    assert noisy["monotone_within_noise"] and noisy["largest_fall"] == pytest.approx(0.1)


def test_saved_scores_of_other_weights_are_not_reused(tiny_model_factory, tmp_path):
    """The circuit stage's score cache is keyed on the weights' content: weights changed in place
    under the same model name and path drop the saved scores, with a line saying why."""
    from types import SimpleNamespace

    from extract.circuits.discover import _key
    from extract.circuits.methods import ScoreCache

    model = tiny_model_factory("llama")
    cfg = SimpleNamespace(task="ioi", n_prompts=4, ig_steps=2, intervention="patching", selection="greedy", seed=0,
                          batch=4)
    path, said = tmp_path / "scores.pt", []
    ScoreCache(path, _key(model, cfg)).put("eap", {"scores": torch.ones(2, 2)})
    assert ScoreCache(path, _key(model, cfg), said.append).get("eap") is not None and not said
    with torch.no_grad():
        next(model.model.parameters()).mul_(1.01)
    assert ScoreCache(path, _key(model, cfg), said.append).get("eap") is None
    assert said == [f"  {path} holds scores for another weights_fingerprint: recomputing"]
