"""IOI circuit lab on the embedded smollm2-135m-q4 (small prompt counts; CPU-fast)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from conftest import REPO as ROOT

from extract import patching as P
from extract.ioi.dla import direct_logit_attribution
from extract.ioi.metrics import ld_metric, normalised, target_logprobs
from extract.ioi.path_patching import path_patch
from extract.ioi.prompts import make_ioi

N = 4


@pytest.fixture(scope="module")
def smollm(smollm2):
    return smollm2


@pytest.fixture(scope="module")
def ioi(smollm):
    ds = make_ioi(smollm, N, seed=0)
    metric = ld_metric(ds.io_tok, ds.s_tok)
    clean = metric(P.forward_end(smollm, ds.tokens))
    corrupt = metric(P.forward_end(smollm, ds.s2_swap.tokens))
    return ds, metric, float(clean.mean()), float(corrupt.mean())


def test_prompt_sets_align_and_are_seeded(smollm):
    ds = make_ioi(smollm, 6, seed=3)
    again = make_ioi(smollm, 6, seed=3)
    assert ds.texts == again.texts and torch.equal(ds.tokens, again.tokens)
    assert make_ioi(smollm, 6, seed=4).texts != ds.texts
    assert ds.order == ["ABBA", "BABA"] * 3
    for s in (ds, ds.s2_swap, ds.abc):
        assert s.tokens.shape == ds.tokens.shape
    assert (ds.pos["S2"] == ds.pos["S2"][0]).all() and (ds.pos["end"] == ds.tokens.shape[1] - 1).all()
    rows = torch.arange(6)
    assert torch.equal(ds.tokens[rows, ds.pos["IO"]], ds.io_tok)
    assert torch.equal(ds.tokens[rows, ds.pos["S1"]], ds.s_tok)
    assert torch.equal(ds.tokens[rows, ds.pos["S2"]], ds.s_tok)
    # S2-swap: only S2 changes, to the IO name; ABC: three distinct names, none the answer pair
    diff = (ds.tokens != ds.s2_swap.tokens).nonzero()[:, 1]
    assert (diff == ds.pos["S2"][0]).all() and torch.equal(ds.s2_swap.tokens[rows, ds.pos["S2"]], ds.io_tok)
    for i in range(6):
        names = {int(ds.abc.tokens[i, p]) for p in (ds.pos["IO"][i], ds.pos["S1"][i], ds.pos["S2"][i])}
        assert len(names) == 3 and not names & {int(ds.io_tok[i]), int(ds.s_tok[i])}
    assert bos_first(smollm, ds)


def bos_first(model, ds):
    return bool((ds.tokens[:, 0] == model.bos_token_id).all())


def test_clean_positive_corrupted_negative(ioi, smollm):
    ds, metric, clean, corrupt = ioi
    assert clean > 1.0, clean
    assert corrupt < -1.0, corrupt
    lp = target_logprobs(P.forward_end(smollm, ds.tokens), ds.io_tok, ds.s_tok)
    assert (lp["io"] > lp["s"]).float().mean() >= 0.75 and (lp["io"] <= 0).all()


def test_full_residual_at_last_layer_end_recovers(ioi, smollm):
    ds, metric, clean, corrupt = ioi
    L = smollm.n_layers
    name = f"blocks.{L - 1}.hook_resid_post"
    _, cache = smollm.run_with_cache(ds.tokens, names=[name])
    for base, src_cache, target in ((ds.s2_swap.tokens, cache, 1.0),):
        out = P.run_copies(smollm, base, [[P.Edit(name, (-1,))]], src_cache, metric)
        assert abs(normalised(float(out["values"][0]), clean, corrupt) - target) < 1e-4
        assert abs(normalised(out["base"], clean, corrupt)) < 1e-4


def test_layer0_s2_moves_the_metric(ioi, smollm):
    ds, metric, clean, corrupt = ioi
    cache = P.cache_sites(smollm, ds.tokens, ["hook_resid_pre"])
    s2, end = int(ds.pos["S2"][0]), int(ds.pos["end"][0])
    out = P.run_copies(smollm, ds.s2_swap.tokens, [[P.Edit("blocks.0.hook_resid_pre", (s2,))],
                                                   [P.Edit("blocks.0.hook_resid_pre", (end,))]], cache, metric)
    moved, unmoved = (normalised(float(v), clean, corrupt) for v in out["values"])
    assert moved > 0.9  # S2's token is the only difference: patching it restores the clean run
    assert abs(unmoved) < 1e-4


def test_dla_parts_sum_to_logit_diff(ioi, smollm):
    ds, metric, clean, _ = ioi
    d = direct_logit_attribution(smollm, ds.tokens, ds.io_tok, ds.s_tok)
    parts = d["embed"] + d["heads"].sum((1, 2)) + d["attn_bias"].sum(1) + d["mlp"].sum(1) + d["final_bias"]
    assert (parts - d["total"]).abs().max() < 1e-3
    assert (d["heads"].sum(2) + d["attn_bias"] - d["attn"]).abs().max() < 1e-3
    assert abs(float(d["total"].mean()) - clean) < 1e-3


def test_batched_patching_equals_one_at_a_time(ioi, smollm):
    ds, metric, clean, corrupt = ioi
    cache = P.cache_sites(smollm, ds.tokens, ["hook_resid_pre", "hook_mlp_out", "attn.hook_z", "attn.hook_v",
                                              "attn.hook_pattern"])
    copies = [[P.Edit("blocks.2.hook_resid_pre", (int(ds.pos["S2"][0]),))],
              [P.Edit("blocks.14.hook_resid_pre", (int(ds.pos["end"][0]),))],
              [P.Edit("blocks.9.hook_mlp_out", (int(ds.pos["S2"][0]),))],
              [P.Edit("blocks.20.attn.hook_z", (slice(None), 4))],
              [P.Edit("blocks.17.attn.hook_z", (ds.pos["IO"], 2))],
              [P.Edit("blocks.6.attn.hook_v", (slice(None), 1))],
              [P.Edit("blocks.23.attn.hook_pattern", (3,))],
              # clean and S2-swap prompts agree before S2 and, at the embedding, after it:
              [P.Edit("blocks.12.hook_resid_pre", (1,))], [P.Edit("blocks.0.hook_resid_pre", (-1,))]]
    batched = P.run_copies(smollm, ds.s2_swap.tokens, copies, cache, metric, max_rows=3 * N)  # chunks of 2 copies
    assert batched["unchanged"].tolist() == [False] * 4 + [True] + [False] * 2 + [True, True]  # IO is before S2 too
    one = torch.stack([P.run_one(smollm, ds.s2_swap.tokens, c, cache, metric) for c in copies])
    norm = lambda x: normalised(x, clean, corrupt)
    assert (norm(batched["per_prompt"]) - norm(one)).abs().max() < 1e-5
    # plain stacking; growing without the suffix trick and without skipping unchanged copies
    for kw in ({"grow": False}, {"suffix": False, "skip_unchanged": False}):
        other = P.run_copies(smollm, ds.s2_swap.tokens, copies, cache, metric, **kw)
        assert (norm(other["per_prompt"]) - norm(one)).abs().max() < 1e-5


def test_path_patching_with_clean_sender_is_a_no_op(ioi, smollm):
    ds, metric, clean, _ = ioi
    senders = [(3, 0), (10, 4), (21, 7)]
    same = path_patch(smollm, ds.tokens, ds.tokens, senders, [(23, 3), (23, 0)], metric, inputs="qkv")
    assert abs(same["base"] - clean) < 1e-4
    assert (same["values"] - clean).abs().max() < 1e-4
    # a real corruption through a sender does move it (or at least runs to a finite value)
    moved = path_patch(smollm, ds.tokens, ds.abc.tokens, senders, "logits", metric)
    assert torch.isfinite(moved["values"]).all()


def test_heatmaps_written(tmp_path):
    from extract.ioi import plots

    v = torch.randn(3, 4).numpy()
    png = plots.heatmap_png(v, tmp_path / "h.png", "t", ["'a'", "'b' (S2)", "c", "d"], ["L0", "L1", "L2"], "position", "layer")
    page = plots.html_page("x", [("t", plots.heatmap_svg(v, "t", list("abcd"), ["L0", "L1", "L2"], "pos", "layer"))],
                           tmp_path / "h.html")
    assert png.stat().st_size > 1000
    text = page.read_text()
    assert "<svg" in text and "<title>" in text and "http" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")


@pytest.mark.slow  # fresh interpreters in subprocesses
def test_script_user_errors_exit_2():
    """The script, as a real process, exits 2 with one `error:` line (test_bad_inputs.py covers the
    stage's other bad inputs in-process, an unknown model among them)."""
    for args in (["--n_prompts", "0"],):
        p = subprocess.run([sys.executable, str(ROOT / "scripts/ioi.py"), *args, "--out", "/tmp/ioi_never"],
                           capture_output=True, text=True, cwd=ROOT)
        assert p.returncode == 2, p.stderr
        assert p.stderr.startswith("error: "), p.stderr
