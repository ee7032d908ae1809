"""Numbers that could not be trusted are not given: a trace of special tokens alone (whose replacement
and completeness are 1.0 by construction) is refused, and bio-causal's ablation effect is read
against the spread of its random draws, with no ratio to a random mean that cannot be told from 0."""

from __future__ import annotations

import numpy as np
import pytest
from builders import PROMPT, random_transcoders, write_set
from scipy import stats

from interventions.attribution.attribute import AttributionConfig, attribute
from interventions.attribution.prune import scores
from interventions.attribution.trace import TraceConfig, _tokens
from interventions.bio.concept_effects import against_random
from interventions.sae import TorchSAE
from mechinterp.cli import main as cli

SPECIAL_ONLY = ("<|endoftext|>", "<|endoftext|><|endoftext|>")


def test_a_prompt_of_special_tokens_only_scores_one_and_is_refused(tiny_model_factory):
    """The graph of '<|endoftext|>' (BOS + the same token) scores replacement = completeness = 1.0
    whatever the transcoders: there is nothing for them to explain. _tokens refuses it and its like."""
    model = tiny_model_factory("llama")
    tcs = {L: TorchSAE(w, c, f"random/{L}") for L, (w, c) in random_transcoders(model.d_model, model.n_layers).items()}
    g = attribute(model, tcs, model.to_tokens(SPECIAL_ONLY[0]), AttributionConfig(batch=32), progress=False)
    assert scores(g.adjacency, g.n_features, g.n_errors, g.logit_probs) == {"replacement": 1.0, "completeness": 1.0}
    real = attribute(model, tcs, model.to_tokens(PROMPT), AttributionConfig(batch=32), progress=False)
    assert scores(real.adjacency, real.n_features, real.n_errors, real.logit_probs)["replacement"] < 0.99

    for prompt in SPECIAL_ONLY:
        with pytest.raises(ValueError) as e:
            _tokens(model, TraceConfig(prompt=prompt))
        assert str(e.value) == (f"--prompt {prompt!r} has no ordinary token after the BOS, only special tokens of "
                                "tiny-llama's tokenizer; pass text whose next token the graph should explain")
    assert _tokens(model, TraceConfig(prompt="<|endoftext|>The")).tolist() == [[50256, 50256, 464]]
    assert _tokens(model, TraceConfig(prompt=PROMPT)).shape == (1, 15)  # BOS + 14 words


def test_trace_refuses_special_tokens_alone_in_one_line_and_writes_nothing(tiny_dir, tmp_path, capfd):
    set_dir = write_set(tmp_path / "set", str(tiny_dir), 64, 2)
    out = tmp_path / "graph"
    with pytest.raises(SystemExit) as e:
        cli(["trace", "--set", str(set_dir), "--prompt", "<|endoftext|>", "--out", str(out), "--device", "cpu"])
    err = capfd.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: --prompt '<|endoftext|>' has no ordinary token after the BOS"), err
    assert not out.exists()


def test_ablation_effect_against_the_spread_of_random_draws():
    """z, the interval 95% of random draws fall in and the ratio, on draws from a known distribution."""
    rng = np.random.default_rng(0)
    draws = rng.normal(0.02, 0.004, 5)
    r = against_random(0.3, draws)
    s = draws.std(ddof=1)
    assert r["z_vs_random"] == pytest.approx((0.3 - draws.mean()) / s, rel=1e-12)
    t = stats.t.ppf(0.975, 4)
    assert t == pytest.approx(2.7764, abs=1e-4)
    assert r["random_rise_interval95"] == pytest.approx([draws.mean() - t * s * np.sqrt(1.2),
                                                         draws.mean() + t * s * np.sqrt(1.2)], rel=1e-12)
    assert r["outside_random_interval95"] is True
    # the random mean (0.02 +- 0.005) is told apart from 0: the ratio is to it, with no floor
    assert r["ratio_vs_random"] == pytest.approx(0.3 / draws.mean(), rel=1e-12) and r["ratio_vs_random_null"] is None


def test_the_interval_holds_95_percent_of_new_random_draws():
    """Coverage measured: over 4,000 baselines of 5 draws each, a sixth draw falls inside in 95% +- 1%."""
    rng = np.random.default_rng(1)
    trials = rng.normal(0.0, 1e-4, (4000, 6))
    inside = []
    for d in trials:
        lo, hi = against_random(0.0, d[:5])["random_rise_interval95"]
        inside.append(lo <= d[5] <= hi)
    assert np.mean(inside) == pytest.approx(0.95, abs=0.01)


def test_no_ratio_to_a_random_mean_indistinguishable_from_zero():
    """The case that read 1,019,161x: random draws that cancel (mean ~1e-7 against a spread ~1e-4).
    The old divisor max(|mean| + s.d., 1e-6) gave a ratio of millions; here the ratio is null, with
    the reason, and the z-score carries the comparison."""
    rng = np.random.default_rng(2)
    draws = rng.normal(0.0, 1e-4, 5)
    draws -= draws.mean() - 1e-7
    assert 4.17 / max(abs(draws.mean()) + draws.std(), 1e-6) > 1e4  # the old divisor
    r = against_random(4.17, draws)
    assert r["ratio_vs_random"] is None
    assert r["ratio_vs_random_null"].startswith("the random draws' mean rise +1e-07 is within ")
    assert "(its 95% interval over 5 draws): a ratio to it would be noise; read z_vs_random" in r["ratio_vs_random_null"]
    assert r["z_vs_random"] == pytest.approx((4.17 - draws.mean()) / draws.std(ddof=1), rel=1e-12)
    assert r["outside_random_interval95"] is True

    one = against_random(0.5, np.array([1e-7]))
    assert one == dict(n_random=1, z_vs_random=None, random_rise_interval95=None, outside_random_interval95=None,
                       ratio_vs_random=None,
                       ratio_vs_random_null="one random draw has no spread to judge it by; pass --n_random 2 or more")
