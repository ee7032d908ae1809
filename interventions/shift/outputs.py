"""SHIFT's files: table.md, results.json, latents.json and shift.png."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from interventions.shift.experiment import ShiftResult
from mechinterp.formats.results import RESULTS


def markdown_table(result: ShiftResult) -> str:
    lines = [f"SHIFT on {result.config['model']}, probe at `{result.hook}`, SAE `{result.sae_hook}` "
             f"({result.sae_path}); ablated latents ({result.selection.method}): {result.selection.features}", "",
             "| row | ablated | profession acc | gender acc | worst-group acc |", "|---|---:|---:|---:|---:|"]
    for r in result.rows:
        pm = (lambda k: f" ± {r[k + '_std']:.3f}" if k + "_std" in r else "")
        lines.append(f"| {r['row']} | {r['n_ablated']} | {r['profession_acc']:.3f}{pm('profession_acc')} | "
                     f"{r['gender_acc']:.3f}{pm('gender_acc')} | {r['worst_group_acc']:.3f}{pm('worst_group_acc')} |")
    lines += ["", "Balanced held-out set (held-out templates and names); gender acc = the profession prediction "
              "read as a gender (professor = male), 0.5 = no reliance on gender; worst group = lowest profession "
              "accuracy over the four (profession, gender) groups."]
    return "\n".join(lines) + "\n"


def bar_plot(result: ShiftResult, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [("profession_acc", "profession"), ("gender_acc", "gender"), ("worst_group_acc", "worst group")]
    names = [r["row"] for r in result.rows]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(8, 1.1 * len(names)), 4.5))
    for j, (k, label) in enumerate(keys):
        vals = [r[k] for r in result.rows]
        errs = [r.get(k + "_std", 0.0) for r in result.rows]
        ax.bar(x + (j - 1) * 0.27, vals, 0.27, yerr=errs, label=label, capsize=2)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("accuracy on the balanced set")
    ax.set_title(f"SHIFT: {result.config['model']} {result.hook}, {len(result.selection.features)} latents ablated")
    ax.legend(fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.45))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(result: ShiftResult, out: str | Path) -> dict[str, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"table": out / "table.md", "json": out / RESULTS, "plot": out / "shift.png",
             "latents": out / "latents.json"}
    paths["table"].write_text(markdown_table(result))
    paths["json"].write_text(json.dumps(result.to_json(), indent=1, default=_jsonable))
    paths["latents"].write_text(json.dumps(result.ranked, indent=1))
    bar_plot(result, paths["plot"])
    return paths


def _jsonable(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o) if math.isfinite(o) else None
    if isinstance(o, torch.Tensor):
        return o.tolist()
    raise TypeError(type(o))

