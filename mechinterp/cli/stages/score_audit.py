"""Score a blind audit against the truth: the only stage that reads what the organism's manifest says
was planted. The rank of the first hypothesis naming it, for the whole audit, its white-box tools and
the black-box baseline; with --confirm, the causal check (interventions.audit.confirm: the top
organism-specific crosscoder latents ablated, or the mean activation difference subtracted from the
organism and added to the base, against random edits, on its held-out probe prompts).

    mechinterp score-audit --audit runs/audits/taboo-gold --organism runs/organisms/taboo-gold --confirm

Writes AUDIT/score.json and adds the verdict to AUDIT/report.html.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mechinterp.cli.flags import build
from mechinterp.cli.stages import config_parser, user_errors
from mechinterp.formats.bounds import bounds, check_bounds


@dataclass(frozen=True)
class ScoreRun:
    audit: str = ""
    """The audit's folder (`mechinterp audit --out`)."""
    organism: str = ""
    """The organism it audited (its manifest holds the truth)."""
    confirm: bool = False
    """Also run the causal check (a few minutes: the organism answers its probe prompts 5 times)."""
    n_ablate: int = field(default=5, metadata=bounds(1))
    """Latents ablated in the causal check, top and random alike."""
    n_random: int = field(default=3, metadata=bounds(1))
    """Draws of random latents in the causal check."""
    device: str = "auto"

    def __post_init__(self):
        check_bounds(self)
        if not self.audit or not self.organism:
            raise ValueError("give both: --audit DIR (the audit) --organism DIR (the organism it audited)")


def parser(prog=None):
    return config_parser(__doc__, prog, ScoreRun)


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from interventions.audit.score import score
        from mechinterp.formats.audit import PAGE, SCORE, read_hypotheses, write
        from mechinterp.formats.organism import read_manifest
        from mechinterp.formats.reading import read_json
        from mechinterp.formats.results import RESULTS
        from mechinterp.views.audit_page import audit_page

        run = build(ScoreRun, a)
        folder = Path(run.audit)
        hypotheses, manifest = read_hypotheses(folder), read_manifest(run.organism)
        verdict = score(hypotheses, manifest)
        results = read_json(folder / RESULTS, "re-run the audit's evidence stage")
        if run.confirm:
            verdict["confirm"] = _confirm(run, manifest, folder, results)
        verdict["table"] = _table(verdict)
        write(folder / SCORE, verdict)
        (folder / PAGE).write_text(audit_page(folder, hypotheses, results, verdict))
        print(json.dumps({k: v for k, v in verdict.items() if k != "table"}))
        print(f"wrote {folder / SCORE}")


def _confirm(run: ScoreRun, manifest: dict, folder: Path, results: dict) -> dict:
    """The top organism-specific crosscoder latents' organism decoder vectors projected out against random
    alive latents'; without such latents, the mean activation difference subtracted from the organism and
    added to the base, against random directions of its norm."""
    import numpy as np

    from extract.models import load_model
    from extract.organisms.train import OrganismConfig
    from interventions.audit.confirm import confirm_difference, confirm_latents
    from mechinterp.formats.audit import MEAN_DIFF
    from mechinterp.formats.crosscoder import decoder, load_crosscoder

    w, info = load_crosscoder(folder / "crosscoder")
    dec = decoder(w, "b")
    latents = [lat["latent"] for lat in results["crosscoder"]["latents"]][:run.n_ablate]
    cfg = OrganismConfig(**{k: v for k, v in manifest["config"].items() if k in OrganismConfig.__dataclass_fields__})
    organism = load_model(f"organism:{run.organism}", device=run.device)
    if latents:
        pool = dec[np.setdiff1d(np.flatnonzero(w["freq"] > 0), latents)]
        return confirm_latents(organism, cfg, info["hook"], dec[latents], pool, run.n_random)
    base = load_model(manifest["base_model"], device=run.device)
    return confirm_difference(organism, base, cfg, info["hook"], np.load(folder / MEAN_DIFF), run.n_random)


def _table(v: dict) -> list[dict]:
    rows = [{"ranked by": key.replace("_", "-"), "truth's rank": v[key]["rank"], "top 1": v[key]["top1"],
             "top 5": v[key]["top5"], "parts": json.dumps(v[key]["parts"])} for key in ("hypotheses", "white_box", "black_box")]
    c = v.get("confirm", {})
    for side, who in (("off", "organism"), ("on", "base model")):
        if side in c:
            m = c[side]
            rows.append({"ranked by": f"causal check ({who})", "truth's rank": None, "top 1": None, "top 5": None,
                         "parts": f"{m['edit']}: planted rate {m['rate']:.2f} (text loss {m['text_loss']:.2f}) -> "
                                  f"{m['rate_edited']:.2f} ({m['text_loss_edited']:.2f}); random " +
                                  ", ".join(f"{r:.2f} ({x:.2f})" for r, x in zip(m["rate_random"], m["text_loss_random"]))})
    return rows
