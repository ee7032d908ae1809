"""PNG figures: training curves, latent-frequency histogram, sweep Pareto front (L0 vs FVU)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # before pyplot: no display needed
import matplotlib.pyplot as plt  # noqa: E402 (pyplot must come after the backend choice)


def training_curves(history: list[dict], path: str | Path, title: str = "") -> None:
    keys = [k for k in ("loss", "mse", "fvu", "l0", "aux", "lr") if history and k in history[0]]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3))
    steps = [h["step"] for h in history]
    for ax, k in zip(np.atleast_1d(axes), keys):
        ax.plot(steps, [h[k] for h in history])
        ax.set_title(k)
        ax.set_xlabel("step")
        if k in ("loss", "mse", "fvu") and all(h[k] > 0 for h in history):
            ax.set_yscale("log")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def frequency_histogram(freq: np.ndarray, path: str | Path, title: str = "") -> None:
    fig, ax = plt.subplots(figsize=(5, 3))
    dead = int((freq == 0).sum())
    ax.hist(np.log10(freq[freq > 0]), bins=60)
    ax.set_xlabel("log10 firing frequency (held-out tokens)")
    ax.set_ylabel("latents")
    ax.set_title(f"{title} ({dead} dead)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def pareto(points: list[dict], path: str | Path, title: str = "") -> None:
    """points: dicts with l0, fvu, label."""
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter([p["l0"] for p in points], [p["fvu"] for p in points])
    for p in points:
        ax.annotate(p["label"], (p["l0"], p["fvu"]), fontsize=7)
    front = sorted(points, key=lambda p: p["l0"])
    best, xs, ys = np.inf, [], []
    for p in front:
        if p["fvu"] < best:
            best = p["fvu"]
            xs.append(p["l0"])
            ys.append(p["fvu"])
    ax.plot(xs, ys, "r--", lw=1, label="Pareto front")
    ax.set_xlabel("L0 (held-out)")
    ax.set_ylabel("FVU (held-out)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

