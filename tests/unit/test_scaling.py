"""The power law fitted to a training curve, and what it projects."""

import numpy as np

from sae_jax.scaling import power_law, tokens_to


def test_power_law_recovers_a_known_law_and_projects_it():
    tokens = np.geomspace(1e4, 1e7, 12)
    fvu = 3.0 * tokens ** -0.2 * np.exp(np.random.default_rng(0).normal(0, 0.01, 12))
    fit = power_law(np.r_[0, tokens], np.r_[5.0, fvu], from_tokens=1e5)  # the point at 0 tokens and the warm-up left out
    assert abs(fit["b"] - 0.2) < 0.01 and abs(fit["a"] / 3.0 - 1) < 0.1 and fit["points"] == 8
    assert abs(tokens_to(fit, 0.15) / (3.0 / 0.15) ** 5 - 1) < 0.3
    assert power_law([1e4, 1e5], [0.5, 0.4]) is None  # too few points
    assert tokens_to(power_law([1e4, 1e5, 1e6], [0.3, 0.4, 0.5]), 0.15) is None  # a curve that rises projects nothing
