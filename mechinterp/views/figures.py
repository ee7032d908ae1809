"""Figures either framework draws (matplotlib, numpy; no torch, no jax)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display needed
import matplotlib.pyplot as plt  # noqa: E402 (pyplot must come after the backend choice)
import numpy as np  # noqa: E402 (with the other imports after the backend choice)


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


def graph_png(data: dict, path: str | Path) -> None:
    """A pruned attribution graph (the page's data) drawn flat: x = position, y = layer (tokens at
    the bottom, logits on top), marker size by influence, edges blue (+) / orange (-) by |weight|."""
    nodes, n_layers, tokens = data["nodes"], data["n_layers"], data["tokens"]
    cells: dict[tuple, list] = {}
    for n in nodes:
        cells.setdefault((n["layer"], n["pos"]), []).append(n["id"])
    xy = {}
    for (layer, pos), ids in cells.items():
        for j, i in enumerate(ids):
            xy[i] = (pos + (j + 1) / (len(ids) + 1) - 0.5, layer)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.7 * len(tokens)), max(4.0, 0.25 * n_layers + 2)))
    w_max = max((abs(e["weight"]) for e in data["edges"]), default=1.0) or 1.0
    for e in sorted(data["edges"], key=lambda e: abs(e["weight"])):
        (x0, y0), (x1, y1) = xy[e["source"]], xy[e["target"]]
        ax.plot([x0, x1], [y0, y1], color="tab:blue" if e["weight"] > 0 else "tab:orange",
                lw=0.2 + 2.5 * abs(e["weight"]) / w_max, alpha=0.25 + 0.6 * abs(e["weight"]) / w_max, zorder=1)
    colours = {"feature": "tab:green", "error": "tab:gray", "token": "black", "logit": "tab:red"}
    markers = {"feature": "o", "error": "D", "token": "s", "logit": "s"}
    for kind in colours:
        mine = [n for n in nodes if n["kind"] == kind]
        if mine:
            ax.scatter([xy[n["id"]][0] for n in mine], [xy[n["id"]][1] for n in mine], marker=markers[kind],
                       s=[12 + 400 * n["influence"] for n in mine], color=colours[kind], label=kind, zorder=2)
    for n in nodes:
        if n["kind"] == "logit":
            ax.annotate(n["label"], xy[n["id"]], fontsize=7, rotation=30, xytext=(0, 6), textcoords="offset points")
    ax.set_xticks(range(len(tokens)), [repr(t)[1:-1] for t in tokens], rotation=60, fontsize=7)
    ax.set_yticks([-1, *range(0, n_layers, max(1, n_layers // 10)), n_layers])
    ax.set_ylabel("layer (tokens -1, logits on top)")
    sc = data.get("scores", {})
    ax.set_title(f"{data.get('title', '')[:90]}\nreplacement {sc.get('replacement', float('nan')):.2f}, "
                 f"completeness {sc.get('completeness', float('nan')):.2f} (pruned "
                 f"{sc.get('pruned_replacement', float('nan')):.2f} / {sc.get('pruned_completeness', float('nan')):.2f})",
                 fontsize=8)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def prediction_scatter(rows: list[dict], path: str | Path, title: str = "") -> dict:
    """The graph's linear prediction of each intervention against what it did, with attention and norms
    frozen as in the graph and with everything live. Returns the axis limit and how many measured
    values lie beyond it."""
    fig, ax = plt.subplots(figsize=(4.5, 4))
    x = np.array([r["linear"] for r in rows], float)
    # the axes follow the graph's predictions; a measured change far beyond them (a frozen model whose
    # values explode) is drawn at the edge as a triangle and counted, not allowed to squash the rest
    lim = 1.5 * max(float(np.abs(x).max()) if len(x) else 0.0, 1e-6)
    beyond = 0
    for key, colour, label in (("measured_frozen", "tab:green", "attention, norms frozen"),
                               ("measured", "tab:orange", "real model (all live)")):
        y = np.array([r[key] for r in rows], float)
        out = ~(np.abs(y) <= lim)
        beyond += int(out.sum())
        ax.scatter(x[~out], y[~out], s=14, color=colour, label=label)
        ax.scatter(x[out], np.clip(np.nan_to_num(y[out], nan=lim), -lim, lim), s=30, marker="^", color=colour)
    ax.plot([-lim, lim], [-lim, lim], color="gray", lw=0.8, ls="--")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim * 1.05, lim * 1.05)
    ax.set_xlabel("graph's prediction (linear)")
    ax.set_ylabel("measured change of the top logit")
    if beyond:
        title = f"{title}\n{beyond} measured value(s) beyond the axes, drawn at the edge (triangles)"
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return dict(lim=lim, beyond=beyond)


def concept_alignment_bars(table: dict[str, dict[str, dict]], path: str | Path, title: str = "",
                           panels: tuple[tuple[str, str], ...] = (("aligned", "InterPLM's F1"),
                                                                  ("aligned_residue", "per-residue F1"))) -> None:
    """Per concept, the number of aligned units of each kind (SAE latents, neurons, ...): grouped bars,
    log scale, one panel per count (key, label)."""
    concepts = list(table)
    kinds = list(next(iter(table.values())))
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(8.0, 0.45 * len(concepts)), 2.2 + 2.6 * len(panels)),
                             sharex=True, squeeze=False)
    width = 0.8 / len(kinds)
    for ax, (key, label) in zip(axes[:, 0], panels):
        for i, kind in enumerate(kinds):
            counts = [table[c][kind][key] for c in concepts]
            ax.bar([x + i * width for x in range(len(concepts))], [n + 0.5 for n in counts], width, bottom=0.5,
                   label=kind.replace("_", " "))
        ax.set_yscale("log")
        ax.set_ylabel(f"units aligned (+1, log)\n{label}", fontsize=8)
        ax.legend(fontsize=8)
    axes[0, 0].set_title(title, fontsize=9)
    axes[-1, 0].set_xticks([x + 0.4 - width / 2 for x in range(len(concepts))], concepts, rotation=60, ha="right",
                           fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def patching_maps(results: list[dict], path: str | Path) -> None:
    """One heatmap per patching target: share of the metric restored by (layer, position offset)."""
    import numpy as np

    fig, axes = plt.subplots(len(results), 1, figsize=(11, 1.6 + 0.35 * len(results[0]["sites"]) * len(results)),
                             squeeze=False)
    for ax, r in zip(axes[:, 0], results):
        m = np.array(r["restored"], float)
        im = ax.imshow(m, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest",
                       extent=(r["offsets"][0] - 0.5, r["offsets"][-1] + 0.5, len(m) - 0.5, -0.5))
        ax.set_yticks(range(len(m)), [f"L{i}" if i < len(m) - 1 else "out" for i in range(len(m))], fontsize=7)
        ax.axvline(0, color="k", lw=0.5, ls=":")
        ax.set_title(f"{r['target']}: clean run patched into the corrupted one ({len(r['pairs'])} pairs)", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.02, pad=0.01, label="restored")
    axes[-1, 0].set_xlabel("position relative to the masked residue")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def concept_effects(ablation: dict[str, dict], steering: dict, path: str | Path, region: str = "") -> None:
    """Left: CE rise from ablating each concept's latents against as many random latents, at the
    concept's residues, masked and unmasked. Right: steering's shift fraction against alpha for the
    region latent and a random one."""
    import numpy as np

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [3, 2]})
    names = list(ablation)
    x, w = np.arange(len(names)), 0.2
    bars = [(mode, key, f"{who}, {mode} residues") for mode in ("masked", "unmasked")
            for key, who in (("concept_rise", "concept latents"), ("random_rise", "random latents"))]
    for i, (mode, key, label) in enumerate(bars):
        a.bar(x + (i - 1.5) * w, [ablation[n][mode][key] for n in names], w, label=label)
    a.set_xticks(x, names, fontsize=7, rotation=20)
    a.set_ylabel("rise in the true residue's CE (nats)")
    a.set_title("ablation, at the concept's residues", fontsize=9)
    a.legend(fontsize=7)
    for key in ("region_latent", "random_latent"):
        b.plot(steering["alphas"], steering[key]["shift_fraction"], marker="o",
               label=f"{key.replace('_', ' ')} {steering[key]['latent']}")
    b.axhline(1.0, color="gray", ls=":", label=f"{region} composition itself")
    b.set_xlabel("alpha (x mean firing value)")
    b.set_ylabel(f"shift towards {region}'s composition")
    b.set_title(f"steering with a {region} latent, outside {region}", fontsize=9)
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def alignment_by_layer(results: dict, path: str | Path) -> None:
    """Left: units aligned with >= 1 concept per layer, one line per kind of unit. Right: per concept and
    layer, SAE latents aligned (colour, log) and 'latents/neurons' written in the cell."""
    import numpy as np

    layers, kinds, concepts = results["layers"], results["kinds"], list(results["per_concept"])
    fig, (ax, hm) = plt.subplots(1, 2, figsize=(6 + 0.9 * len(layers), 0.3 * len(concepts) + 2.5),
                                 gridspec_kw=dict(width_ratios=(1, 1.6)))
    for kind in kinds:
        rows = results["per_layer"]
        ax.plot(layers, [r["units_aligned"][kind] for r in rows], "o-",
                label=f"{kind.replace('_', ' ')} (of {rows[0]['units'][kind]:,})")
    ax.set_xticks(layers)
    ax.set_xlabel("layer")
    ax.set_ylabel("units aligned with >= 1 concept")
    ax.legend(fontsize=8)
    first, last = "sae_latents", results["baseline"]
    counts = np.array([[results["per_concept"][c][first][str(L)]["aligned"] for L in layers] for c in concepts])
    hm.imshow(np.log1p(counts), aspect="auto", cmap="viridis")
    for i, c in enumerate(concepts):
        for j, L in enumerate(layers):
            other = results["per_concept"][c][last][str(L)]["aligned"]
            hm.text(j, i, f"{counts[i, j]}/{other}", ha="center", va="center", fontsize=6,
                    color="white" if counts[i, j] < counts.max() / 4 else "black")
    hm.set_xticks(range(len(layers)), layers)
    hm.set_yticks(range(len(concepts)), concepts, fontsize=7)
    hm.set_xlabel("layer")
    hm.set_title(f"{first.replace('_', ' ')} / {last.replace('_', ' ')} aligned (F1 >= {results['min_f1']})",
                 fontsize=9)
    fig.suptitle(f"{results['model']}: concept alignment by layer (InterPLM's F1)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fvu_curves(curves: dict[int, list], path: str | Path, title: str = "", fit: dict | None = None) -> None:
    """Held-out FVU against training tokens, one line per layer (log-log), the mean in black and the
    power law fitted to it dashed. curves: layer -> [[tokens, fvu], ...], every layer at the same tokens."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    cmap = plt.get_cmap("viridis")
    layers = sorted(curves)
    for j, L in enumerate(layers):
        pts = np.array([p for p in curves[L] if p[0] > 0], float).reshape(-1, 2)
        ax.plot(pts[:, 0], pts[:, 1], color=cmap(j / max(1, len(layers) - 1)), lw=0.8, alpha=0.7,
                label=f"layer {L}" if j in (0, len(layers) - 1) else None)
    every = np.array([curves[L] for L in layers], float)  # [layers, points, (tokens, fvu)]: the same tokens
    tokens, mean = every[0, :, 0], every[:, :, 1].mean(0)
    ax.plot(tokens[tokens > 0], mean[tokens > 0], color="black", lw=2, label="mean")
    if fit:
        t = np.geomspace(fit["from_tokens"], tokens.max(), 50)
        ax.plot(t, fit["a"] * t ** -fit["b"], "k--", lw=1, label=f"{fit['a']:.3g} x tokens^-{fit['b']:.3f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training tokens per layer")
    ax.set_ylabel("held-out FVU")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def score_distributions(series: dict[str, list[float]], path: str | Path, title: str = "") -> None:
    """Histograms of per-latent scores in [0, 1], one outline per series, its mean marked."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    bins = np.linspace(0, 1, 21)
    for i, (name, values) in enumerate(series.items()):
        v = np.asarray([x for x in values if x is not None and np.isfinite(x)], np.float64)
        if not len(v):
            continue
        color = f"C{i}"
        ax.hist(v, bins, histtype="step", lw=1.6, color=color, label=f"{name} (mean {v.mean():.3f}, n={len(v)})")
        ax.axvline(v.mean(), color=color, ls="--", lw=1)
    ax.set_xlabel("balanced accuracy per latent")
    ax.set_ylabel("latents")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
