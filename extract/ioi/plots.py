"""Heatmaps: PNG (matplotlib, labelled axes and token labels) and a self-contained HTML page
(inline SVG, hover a cell for its value; no scripts from anywhere)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mechinterp.views.html import page


def heatmap_png(values, path: Path, title: str, xlabels: Sequence[str], ylabels: Sequence[str],
                xlabel: str, ylabel: str, cbar: str = "", center: float | None = 0.0) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    v = np.asarray(values, dtype=float)
    lim = np.nanmax(np.abs(v - (center or 0))) or 1.0
    w = min(16, 2.5 + 0.45 * v.shape[1])
    h = min(14, 1.8 + 0.22 * v.shape[0])
    fig, ax = plt.subplots(figsize=(w, h))
    kw = dict(vmin=(center or 0) - lim, vmax=(center or 0) + lim) if center is not None else {}
    im = ax.imshow(v, aspect="auto", cmap="RdBu" if center is not None else "viridis", **kw)
    ax.set_xticks(range(len(xlabels)), list(xlabels), rotation=60, ha="right", fontsize=7)
    step = max(1, len(ylabels) // 40)
    ax.set_yticks(range(0, len(ylabels), step), list(ylabels)[::step], fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label=cbar)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _colour(x: float, lim: float) -> str:
    t = 0.0 if not np.isfinite(x) else max(-1.0, min(1.0, x / lim))
    if t >= 0:  # white -> blue
        r, g, b = 255 - int(200 * t), 255 - int(150 * t), 255
    else:  # white -> red
        r, g, b = 255, 255 - int(200 * -t), 255 - int(200 * -t)
    return f"rgb({r},{g},{b})"


def heatmap_svg(values, title: str, xlabels, ylabels, xlabel: str, ylabel: str, center: float = 0.0) -> str:
    v = np.asarray(values, dtype=float)
    lim = float(np.nanmax(np.abs(v - center))) or 1.0
    cw, ch, left, top = 34, 14, 150, 40
    bottom = 110
    W, H = left + cw * v.shape[1] + 20, top + ch * v.shape[0] + bottom
    e = html.escape
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="10">',
           f'<text x="{left}" y="16" font-size="13">{e(title)}</text>']
    for i in range(v.shape[0]):
        out.append(f'<text x="{left - 4}" y="{top + ch * i + 10}" text-anchor="end">{e(str(ylabels[i]))}</text>')
        for j in range(v.shape[1]):
            val = v[i, j]
            out.append(f'<rect x="{left + cw * j}" y="{top + ch * i}" width="{cw}" height="{ch}" '
                       f'fill="{_colour(val - center, lim)}"><title>{e(str(ylabels[i]))} | {e(str(xlabels[j]))}: '
                       f'{val:.4f}</title></rect>')
    for j, lab in enumerate(xlabels):
        x, y = left + cw * j + cw / 2, top + ch * v.shape[0] + 6
        out.append(f'<text x="{x}" y="{y}" transform="rotate(60 {x} {y})">{e(str(lab))}</text>')
    out.append(f'<text x="{left + cw * v.shape[1] / 2}" y="{H - 6}" text-anchor="middle">{e(xlabel)}</text>')
    out.append(f'<text x="12" y="{top + ch * v.shape[0] / 2}" transform="rotate(-90 12 {top + ch * v.shape[0] / 2})" '
               f'text-anchor="middle">{e(ylabel)}</text></svg>')
    return "\n".join(out)


def html_page(title: str, sections: list[tuple[str, str]], path: Path) -> Path:
    """sections: (heading, svg or html). One self-contained file."""
    body = "\n".join(f"<h2>{html.escape(h)}</h2>\n{s}" for h, s in sections)
    css = "body{font-family:sans-serif;margin:20px} rect:hover{stroke:#000;stroke-width:1.5}"
    Path(path).write_text(page([f"<h1>{html.escape(title)}</h1>",
                                "<p>Hover a cell for its value. Blue: positive, red: negative.</p>", body], title, css))
    return Path(path)
