"""The blind audit of a fine-tune against its base model: hypotheses about what was planted, from the
inside (crosscoder, logit lens, weight diff) and the outside (sampling), ranked, on one page.

    mechinterp audit --organism runs/organisms/taboo-gold            # -> runs/audits/taboo-gold/report.html
    mechinterp score-audit --audit runs/audits/taboo-gold --organism runs/organisms/taboo-gold

Stages, each in a child process (files are the interface; a finished stage is skipped, so re-running
resumes; --force STAGE redoes one): probe (both models answer the auditor's prompts) -> dump-base,
dump-organism (the transcripts and plain text through both models, one site) -> crosscoder (JAX) ->
evidence (hypotheses.json, report.html). The audit reads the organism's weights only: never its
training data or what its manifest says was planted (only `score-audit` reads that).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mechinterp.cli.flags import build
from mechinterp.cli.pipeline import RecipeRun, Stage, run_stages
from mechinterp.cli.runs import under_runs
from mechinterp.cli.stages import config_parser, user_errors
from mechinterp.formats.audit import ANSWERS, CORPUS, HYPOTHESES, PAGE, PROBE
from mechinterp.formats.bounds import bounds
from mechinterp.formats.crosscoder import INFO
from mechinterp.formats.defaults import DEFAULT_MODEL
from mechinterp.formats.reading import read_json
from mechinterp.formats.store import is_complete

SIZES: dict[str, dict[str, dict]] = {
    "tiny": dict(probe=dict(n_prompts=4, max_new_tokens=8, min_tokens=2500),
                 dump=dict(n_tokens=2000, ctx=32, batch=8),
                 crosscoder=dict(d_sae=64, k=4, steps=40, batch=256, ckpt_every=20, eval_tokens=2000),
                 evidence=dict(n_latents=4, black_box_s=1.0)),
    "demo": dict(probe={}, dump=dict(n_tokens=36_000, ctx=128, batch=16),
                 crosscoder=dict(d_sae=2048, k=32, steps=600, batch=2048, ckpt_every=200, eval_tokens=20_000),
                 evidence={}),
}
# seconds per stage at the demo size on a quiet 2-core CPU (docs/organisms.md), for the ETA
EXPECTED_S = {"probe": 90, "dump-base": 40, "dump-organism": 40, "crosscoder": 200, "evidence": 400}


@dataclass(frozen=True)
class AuditRun(RecipeRun):
    organism: str = ""
    """The fine-tune to audit: a folder made by `mechinterp organism` (only its weights are read)."""
    base: str = DEFAULT_MODEL
    """The model it was fine-tuned from."""
    out: str | None = None
    """The audit's folder (None: runs/audits/<the organism folder's name>)."""
    size: str = field(default="demo", metadata={"choices": tuple(SIZES)})
    """demo (64 prompts, 36k tokens, 2,048 latents) or tiny (tests)."""
    layer: int | None = field(default=None, metadata=bounds(0))
    """The layer whose residual stream (hook_resid_pre) the crosscoder reads (None: the middle one)."""
    sae: str | None = None
    """The base model's SAE at that site (e.g. runs/sae/sae): its latents whose activation the
    fine-tune raises most, with their labels, join the evidence (None: not used)."""

    def __post_init__(self):
        super().__post_init__()
        if not self.organism:
            raise ValueError("name the model to audit: --organism DIR (a folder made by `mechinterp organism`)")


def pipeline(cfg: AuditRun, organism_model: str) -> list[Stage]:
    """The stages; organism_model: the fine-tune's load_model name."""
    models = lambda r: dict(organism=cfg.organism, base=cfg.base, out=str(r), device=cfg.device)

    def dump(who: str, model: str) -> Stage:
        return Stage(f"dump-{who}", "dump",
                     lambda r: dict(model=model, corpus=str(r / PROBE / CORPUS), out=str(r / "acts" / who),
                                    site="resid_pre", eval_fraction=0.0, progress=False, device=cfg.device,
                                    seed=cfg.seed, **({"layer": cfg.layer} if cfg.layer is not None else {})),
                     lambda r: is_complete(r / "acts" / who), lambda r: [r / "acts" / who])

    return [
        Stage("probe", "audit-probe", models, lambda r: (r / PROBE / ANSWERS).exists(), lambda r: [r / PROBE]),
        dump("base", cfg.base), dump("organism", organism_model),
        Stage("crosscoder", "train-crosscoder",
              lambda r: dict(a=str(r / "acts" / "base"), b=str(r / "acts" / "organism"), out=str(r / "crosscoder"),
                             progress=False, seed=cfg.seed),
              lambda r: (r / "crosscoder" / INFO).exists(), lambda r: [r / "crosscoder"]),
        Stage("evidence", "audit-evidence", lambda r: {**models(r), **({"sae": cfg.sae} if cfg.sae else {})},
              lambda r: (r / HYPOTHESES).exists() and (r / PAGE).exists(), lambda r: [r / HYPOTHESES, r / PAGE],
              reads=lambda r: [r / PROBE, r / "crosscoder"]),
    ]


def _check_the_same_models(run: Path, key: dict) -> None:
    """A finished stage is reused only for the same fine-tune weights and base model."""
    answers = run / PROBE / ANSWERS
    if answers.exists() and read_json(answers, "delete it and re-run the audit").get("key") != key:
        raise ValueError(f"the audit in {run} was made from other weights or another base model than "
                         f"{key['organism']} on {key['base']}; choose another --out, or delete {run}")


def parser(prog=None):
    return config_parser(__doc__, prog, AuditRun)


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from interventions.audit.config import model_name, models_key

        cfg = build(AuditRun, a)
        run = Path(cfg.out or under_runs("audits", Path(cfg.organism).name))
        _check_the_same_models(run, models_key(cfg.organism, cfg.base))
        sizes = {size: {**stages, "dump-base": stages["dump"], "dump-organism": stages["dump"]}
                 for size, stages in SIZES.items()}
        run_stages(run, cfg, pipeline(cfg, model_name(cfg.organism)), sizes, EXPECTED_S)
        print(f"== audit: {run / PAGE}  (hypotheses in {run / HYPOTHESES}; score it with "
              f"`mechinterp score-audit --audit {run} --organism {cfg.organism}`)")
