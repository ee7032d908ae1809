"""Figures either framework draws (matplotlib, numpy; no torch, no jax)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display needed
import matplotlib.pyplot as plt  # noqa: E402 (pyplot must come after the backend choice)


def by_layer(layers: list[int], series: dict[str, list[float]], path: str | Path, ylabel: str, title: str = "") -> None:
    """One bar group per layer, one bar per series (label -> values)."""
    fig, ax = plt.subplots(figsize=(max(4.0, 0.3 * len(layers) * len(series) + 2), 3))
    width = 0.8 / len(series)
    for i, (label, values) in enumerate(series.items()):
        ax.bar([L + (i - (len(series) - 1) / 2) * width for L in layers], values, width, label=label)
    ax.set_xlabel("layer")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(series) > 1:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
