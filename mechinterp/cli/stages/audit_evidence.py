"""The audit's last stage: the crosscoder's organism-specific latents, the logit lens and the weight
diff, fused into ranked hypotheses, beside a black-box baseline given the same time; the page.

    mechinterp audit-evidence --organism runs/organisms/taboo-gold --out runs/audits/taboo-gold

Reads OUT/probe/answers.json and OUT/crosscoder; writes OUT/hypotheses.json, OUT/results.json and
OUT/report.html. Usually run by `mechinterp audit`.
"""

from __future__ import annotations

from pathlib import Path

from mechinterp.cli.flags import build
from mechinterp.cli.stages import config_parser, user_errors
from mechinterp.formats.reading import read_json


def parser(prog=None):
    from interventions.audit.config import AuditModels, EvidenceConfig

    return config_parser(__doc__, prog, AuditModels, EvidenceConfig)


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        import numpy as np

        from extract.models import load_model
        from interventions.audit.conclude import conclude
        from interventions.audit.config import AuditModels, EvidenceConfig
        from mechinterp.formats.audit import ANSWERS, HYPOTHESES, MEAN_DIFF, PAGE, PROBE, write
        from mechinterp.formats.crosscoder import load_crosscoder
        from mechinterp.formats.results import RESULTS
        from mechinterp.views.audit_page import FIGURE, audit_page, norms_figure

        models, cfg = build(AuditModels, a), build(EvidenceConfig, a)
        out = Path(models.out)
        answers = read_json(out / PROBE / ANSWERS, "re-run `mechinterp audit` (its probe stage)")
        base, organism = load_model(models.base, device=models.device), load_model(models.organism_model, device=models.device)
        hypotheses, results, mean_diff = conclude(base, organism, out / "crosscoder", answers, cfg, _earlier_seconds(out))
        w, _ = load_crosscoder(out / "crosscoder")
        norms_figure(w["rel_norm"], w["freq"], [lat["latent"] for lat in results["crosscoder"]["latents"]], out / FIGURE)
        np.save(out / MEAN_DIFF, mean_diff)
        write(out / RESULTS, results)
        write(out / HYPOTHESES, hypotheses)
        (out / PAGE).write_text(audit_page(out, hypotheses, results))
        for h in hypotheses["hypotheses"][:10]:
            tools = ", ".join(f"{e['tool']} #{e['rank']}" for e in h["evidence"])
            print(f"  {h['rank']:>2}. {h['hypothesis']:<16} {h['score']:.3f}  {tools}")
        print(f"wrote {out / PAGE}")


def _earlier_seconds(out: Path) -> float:
    """The white-box stages' time so far (the dumps and the crosscoder), from the recipe's record."""
    record = out / "stages.json"
    if not record.exists():
        return 0.0
    done = read_json(record, "delete it (the stages' outputs are kept)")
    return float(sum(done.get(s, {}).get("seconds", 0.0) for s in ("dump-base", "dump-organism", "crosscoder")))
