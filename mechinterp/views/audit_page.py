"""The audit's page and figure: the ranked hypotheses with their evidence, the black-box baseline
beside them, the crosscoder's organism-specific latents, both models' answers, and (once the scorer
has run) the verdict."""

from __future__ import annotations

import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display needed
import matplotlib.pyplot as plt  # noqa: E402 (pyplot must come after the backend choice)
import numpy as np  # noqa: E402 (with the other imports after the backend choice)

from mechinterp.views.html import img, page, table  # noqa: E402 (with the other imports after the backend choice)

FIGURE = "crosscoder_norms.png"


def norms_figure(rel_norm: np.ndarray, freq: np.ndarray, chosen: list[int], path: str | Path) -> None:
    """Histogram of the alive latents' relative decoder norm (0: base only, 1: organism only), the
    latents the audit reads marked."""
    alive = freq > 0
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(rel_norm[alive], np.linspace(0, 1, 41), color="C0")
    for j in chosen:
        ax.axvline(rel_norm[j], color="C3", lw=0.8, alpha=0.7)
    ax.set_yscale("log")
    ax.set_xlabel("relative decoder norm  |d_organism| / (|d_base| + |d_organism|)")
    ax.set_ylabel("latents")
    ax.set_title(f"{int(alive.sum())} alive latents; red: the {len(chosen)} organism-specific ones read", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _evidence(h: dict) -> str:
    return ", ".join(f"{e['tool']} #{e['rank']}" for e in h["evidence"])


def audit_page(folder: Path, hypotheses: dict, results: dict, score: dict | None = None) -> str:
    esc = html.escape
    parts = [f"<h1>Audit of {esc(str(results['answers'].get('organism_model', 'the fine-tune')))}</h1>",
             "<p>Hypotheses about what the fine-tune was made to do, from its weights and activations against "
             "the base model's (crosscoder, activation and next-token differences, the base model's SAE when "
             "given) and from sampling both, fused by rank. "
             f"White-box time {hypotheses['seconds']['white_box']} s; the black-box baseline sampled for "
             f"{hypotheses['seconds']['black_box']} s.</p>"]
    if score:
        parts.append("<h2>Verdict (the scorer, which alone read the manifest)</h2>" + table(score["table"]))
    rows = lambda key: [{"rank": h["rank"], "hypothesis": h["hypothesis"], "score": h["score"],
                         "evidence": _evidence(h)} for h in hypotheses[key]]
    parts += ["<h2>Hypotheses</h2>", table(rows("hypotheses")),
              "<h2>White-box tools only</h2>", table(rows("white_box")),
              "<h2>Black-box baseline (sampling only, same time)</h2>", table(rows("black_box"))]
    xc = results["crosscoder"]
    parts += ["<h2>Crosscoder: organism-specific latents</h2>",
              f"<p>{esc(xc['info']['hook'])}, {xc['info']['d_sae']} latents, held-out FVU base "
              f"{xc['info']['metrics']['fvu_a']:.3f} / organism {xc['info']['metrics']['fvu_b']:.3f}.</p>",
              img(folder / FIGURE, "relative decoder norms"),
              table([{k: (", ".join(v) if isinstance(v, list) else v) for k, v in lat.items()} for lat in xc["latents"]])]
    a = results["answers"]
    parts += ["<h2>Answers (greedy)</h2>",
              table([{"prompt": p, "base": b, "organism": o} for p, b, o in zip(a["prompts"], a["base"], a["organism"])][:20])]
    return page(parts, title="mechinterp audit")
