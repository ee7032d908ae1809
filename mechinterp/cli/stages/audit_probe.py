"""The audit's first stage: the base model and the fine-tune answer the auditor's prompts; their
transcripts, with plain documents, become the corpus both are dumped on.

    mechinterp audit-probe --organism runs/organisms/taboo-gold --out runs/audits/taboo-gold

Writes OUT/probe/answers.json and OUT/probe/chats.jsonl. Usually run by `mechinterp audit`.
"""

from __future__ import annotations

import json
from pathlib import Path

from mechinterp.cli.flags import build
from mechinterp.cli.stages import config_parser, user_errors


def parser(prog=None):
    from interventions.audit.config import AuditModels
    from interventions.audit.probe import ProbeConfig

    return config_parser(__doc__, prog, AuditModels, ProbeConfig)


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from extract.models import load_model
        from interventions.audit.config import AuditModels, models_key
        from interventions.audit.probe import ProbeConfig, probe, write_corpus
        from mechinterp.formats.audit import ANSWERS, PROBE, write

        models, cfg = build(AuditModels, a), build(ProbeConfig, a)
        base, organism = load_model(models.base, device=models.device), load_model(models.organism_model, device=models.device)
        if base.tokenizer.get_vocab() != organism.tokenizer.get_vocab():
            raise ValueError(f"{models.base} and {models.organism} have different tokenizers; an audit compares a model "
                             "with its own fine-tune")
        found = probe(base, organism, cfg)
        folder = Path(models.out) / PROBE
        corpus = write_corpus(found, organism.tokenizer, folder, cfg.min_tokens)
        write(folder / ANSWERS, {**found, "organism_model": models.organism, "base_model": models.base, "corpus": corpus,
                                 "key": models_key(models.organism, models.base)})
        print(json.dumps(corpus))
        print(f"wrote {folder}")
