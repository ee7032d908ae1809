"""The biographies of extract/biographies.py and the probe/attribution pieces of SHIFT (no SAE training)."""

from __future__ import annotations

import re

import pytest
import torch

from extract import biographies as bios
from extract import biography_templates as templates
from extract.biographies import BiosConfig, make_pools, make_splits


@pytest.fixture(scope="module")
def splits():
    return make_splits(BiosConfig(seed=0))


def test_template_and_name_counts():
    assert sum(len(t) for t in templates.TEMPLATE_SETS.values()) >= 80
    assert min(len(templates.NURSE), len(templates.PROFESSOR), len(templates.PERSONAL)) >= 25
    assert len(set(templates.FEMALE_NAMES)) >= 200 and len(set(templates.MALE_NAMES)) >= 200
    assert not set(templates.FEMALE_NAMES) & set(templates.MALE_NAMES)


def test_ambiguous_is_perfectly_correlated(splits):
    amb = splits["ambiguous"]
    assert len(amb) == 384
    assert amb.prof == amb.gender  # male professors and female nurses only
    assert sum(amb.prof) == len(amb) // 2


def test_balanced_has_four_equal_groups(splits):
    for name in ("balanced", "balanced_train"):
        groups = splits[name].groups()
        counts = {g: groups.count(g) for g in set(groups)}
        assert counts == {(0, 0): len(groups) // 4, (0, 1): len(groups) // 4, (1, 0): len(groups) // 4,
                          (1, 1): len(groups) // 4}
    go = splits["gender_only"]
    assert set(go.gender) == {0, 1} and sum(go.gender) == len(go) // 2


def test_gender_signal_is_names_and_pronouns(splits):
    for text, g in zip(splits["balanced"].texts, splits["balanced"].gender):
        words = set(re.findall(r"\b\w+\b", text))
        assert (words & {"he", "He", "his", "His", "him", "Mr"}) if g else (words & {"she", "She", "her", "Her", "Ms"})
        assert not (words & ({"she", "She", "her", "Her"} if g else {"he", "He", "his", "His", "him"}))


def test_heldout_templates_and_names_are_disjoint(splits):
    train, test = make_pools(0, 0.3)
    for key in templates.TEMPLATE_SETS:
        assert train.templates[key] and test.templates[key]
        assert not set(train.templates[key]) & set(test.templates[key])
    for g in ("male", "female"):
        assert not set(train.names[g]) & set(test.names[g])
    train_names = set(train.names["male"]) | set(train.names["female"])
    test_names = set(test.names["male"]) | set(test.names["female"])
    for k in ("ambiguous", "balanced_train", "gender_only", "balanced"):
        for t, name in zip(splits[k].texts, splits[k].first_names):
            assert name in (test_names if k == "balanced" else train_names)
            assert re.search(rf"\b{name}\b", t) or re.match(r"M[rs]\. ", t)
    # no held-out profession sentence appears in a training text and vice versa
    def fills(templates):
        return [re.escape(t.split("{")[0]).strip() for t in templates if len(t.split("{")[0]) > 25]
    for frag in fills(test.templates["nurse"] + test.templates["professor"]):
        assert not any(re.search(frag, t) for t in splits["ambiguous"].texts)


def test_reproducible_by_seed():
    a, b, c = make_splits(BiosConfig(seed=3)), make_splits(BiosConfig(seed=3)), make_splits(BiosConfig(seed=4))
    for k in a:
        assert a[k].texts == b[k].texts and a[k].prof == b[k].prof and a[k].gender == b[k].gender
    assert a["balanced"].texts != c["balanced"].texts


def test_bad_sizes_and_bias_in_bios_offline():
    with pytest.raises(ValueError, match="multiple of 4"):
        BiosConfig(n_ambiguous=10)
    with pytest.raises(bios.BiosUnavailable):  # no hub here: one clear error, fast
        bios.load_splits("bias_in_bios")
    with pytest.raises(ValueError, match="unknown biographies source"):
        bios.load_splits("nope")


def test_probe_is_deterministic_and_learns():
    from interventions.shift.probe import accuracies, train_probe

    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 16, generator=g)
    y = (x[:, 0] + 0.1 * x[:, 1] > 0).long()
    p1, p2 = train_probe(x, y), train_probe(x, y)
    assert torch.equal(p1.w, p2.w)
    assert (p1.predict(x) == y).float().mean() > 0.9
    acc = accuracies(torch.tensor([1, 1, 0, 0]), torch.tensor([1, 0, 1, 0]), torch.tensor([1, 1, 0, 0]))
    assert acc["profession_acc"] == 0.5 and acc["gender_acc"] == 1.0 and acc["worst_group_acc"] == 0.0


def test_roc_auc_matches_pairwise_definition():
    from interventions.shift.latents import roc_auc

    g = torch.Generator().manual_seed(1)
    s = torch.randint(0, 4, (60, 3), generator=g).float()  # many ties
    y = torch.randint(0, 2, (60,), generator=g)
    pos, neg = s[y == 1], s[y == 0]
    ref = ((pos[:, None] > neg[None]).float() + 0.5 * (pos[:, None] == neg[None]).float()).mean((0, 1))
    assert torch.allclose(roc_auc(s, y).float(), ref, atol=1e-6)
