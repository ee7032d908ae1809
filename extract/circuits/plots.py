"""Faithfulness curves of every method on one plot (x: edges kept, log scale)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (after matplotlib's backend is chosen)

LABELS = {"eap_ig": "EAP-IG", "eap": "EAP", "nodes": "node patching (heads, MLPs)",
          "acdc": "ACDC on EAP-IG's candidates"}


def plot_curves(result: dict, path: Path) -> str:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for method, c in result["methods"].items():
        line, = ax.plot(c["edges"], c["faithfulness"], marker="o", ms=4,
                        label=f"{LABELS.get(method, method)}  CPR {c['cpr']:.2f}  CMD {c['cmd']:.2f}")
        if "circuit" in c:  # ACDC's own circuit: a point, not a ranking
            ax.scatter([c["circuit"]["edges"]], [c["circuit"]["faithfulness"]], marker="*", s=160, zorder=6,
                       color=line.get_color(), label=f"ACDC's circuit: {c['circuit']['edges']} edges, "
                       f"threshold {c['circuit']['threshold']}")
            if "heldout" in c["circuit"]:
                ax.scatter([c["circuit"]["edges"]], [c["circuit"]["heldout"]], marker="x", s=60, zorder=6,
                           color=line.get_color(), label=f"ACDC's circuit, held-out prompts: {c['circuit']['heldout']:.2f}")
    chosen = result["chosen"]
    ax.scatter([chosen["edges"]], [chosen["faithfulness"]], s=120, facecolors="none", edgecolors="k", zorder=5,
               label=f"chosen: {chosen['edges']} edges ({chosen['edge_fraction']:.1%})")
    if "heldout" in chosen:
        ax.scatter([chosen["edges"]], [chosen["heldout"]], marker="x", s=60, c="k", zorder=5,
                   label=f"same circuit, held-out prompts: {chosen['heldout']:.2f}")
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel(f"edges kept (of {result['graph']['edges']:,}), after pruning")
    ax.set_ylabel("faithfulness")
    ax.set_title(f"{result['model']} {result['task']}: faithfulness curves "
                 f"({result['config']['intervention']})")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)
