"""Score a blind audit against the truth: the only stage that reads what the organism's manifest says
was planted. The rank of the first hypothesis naming it, for the whole audit, its white-box tools and
the black-box baseline; with --confirm, the causal check (the top organism-specific crosscoder
latents ablated in the organism vs random latents, on its held-out probe prompts).

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
    """The top organism-specific crosscoder latents' organism decoder vectors against random alive
    latents'; without such latents, the mean activation difference against random latents' vectors."""
    import numpy as np

    from extract.models import load_model
    from extract.organisms.train import OrganismConfig
    from interventions.audit.confirm import confirm
    from mechinterp.formats.audit import MEAN_DIFF
    from mechinterp.formats.crosscoder import decoder, load_crosscoder

    w, info = load_crosscoder(folder / "crosscoder")
    dec = decoder(w, "b")
    latents = [lat["latent"] for lat in results["crosscoder"]["latents"]][:run.n_ablate]
    top = dec[latents] if latents else np.load(folder / MEAN_DIFF)[None]
    pool = dec[np.setdiff1d(np.flatnonzero(w["freq"] > 0), latents)]
    cfg = OrganismConfig(**{k: v for k, v in manifest["config"].items() if k in OrganismConfig.__dataclass_fields__})
    organism = load_model(f"organism:{run.organism}", device=run.device)
    out = confirm(organism, cfg, info["hook"], top, pool, run.n_random)
    return {"ablated": "crosscoder latents" if latents else "mean activation difference", **out}


def _table(v: dict) -> list[dict]:
    rows = [{"ranked by": key.replace("_", "-"), "truth's rank": v[key]["rank"], "top 1": v[key]["top1"],
             "top 5": v[key]["top5"], "parts": json.dumps(v[key]["parts"])} for key in ("hypotheses", "white_box", "black_box")]
    if "confirm" in v:
        c = v["confirm"]
        rows.append({"ranked by": "causal check", "truth's rank": None, "top 1": None, "top 5": None,
                     "parts": f"planted rate {c['rate']:.2f} (text loss {c['text_loss']:.2f}); {c['directions']} x "
                              f"{c['ablated']} ablated {c['rate_top_ablated']:.2f} ({c['text_loss_top_ablated']:.2f}); "
                              "random " + ", ".join(f"{r:.2f} ({x:.2f})" for r, x in
                                                    zip(c['rate_random_ablated'], c['text_loss_random_ablated']))})
    return rows
