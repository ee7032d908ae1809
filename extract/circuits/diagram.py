"""The chosen circuit drawn as a graph: layers top (input) to bottom (logits), one row per layer,
heads labelled with their IOI role. Only the strongest edges are drawn (a 1,000-edge circuit is
a hairball otherwise); the page says how many. PNG, and one self-contained HTML page (inline
SVG: hovering a node or an edge shows its values; no script, no network).
"""

from __future__ import annotations

import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (after matplotlib's backend is chosen)

from extract.circuits.roles import ROLE_ABBREV  # noqa: E402 (after matplotlib's backend is chosen)
from mechinterp.views.html import page  # noqa: E402 (after matplotlib's backend is chosen)

ROLE_COLOURS = {"name mover": "#2a9d8f", "negative name mover": "#e76f51", "S-inhibition": "#e9c46a",
                "induction": "#8e7dbe", "duplicate token": "#6a994e", "previous token": "#7aa6c2", None: "#bbbbbb"}


def layout(edges: list[dict], n_layers: int) -> dict[str, tuple[float, float]]:
    """Node name -> (x, y): y = layer row (input -1 at the top, logits n_layers at the bottom)."""
    names = {e["from"] for e in edges} | {_node(e["to"]) for e in edges}
    rows: dict[int, list[str]] = {}
    for name in names:
        rows.setdefault(_layer(name, n_layers), []).append(name)
    pos = {}
    for row, members in rows.items():
        members.sort(key=lambda s: (s[0] != "m", int(s.split(".h")[1]) if ".h" in s else 0))
        for i, name in enumerate(members):
            pos[name] = (i - (len(members) - 1) / 2, row)
    return pos


def _node(down: str) -> str:
    """A downstream input's node: 'a3.h2<q>' -> 'a3.h2'; a key/value group stays itself ('a3.g0')."""
    return down.split("<")[0]


def _layer(name: str, n_layers: int) -> int:
    if name == "input":
        return -1
    if name == "logits":
        return n_layers
    return int(name[1:].split(".")[0])


def _label(name: str, roles: dict) -> str:
    if name.startswith("a") and ".h" in name:
        layer, head = name[1:].split(".h")
        role = roles.get(name, {}).get("role")
        return f"L{layer}H{head}" + (f" {ROLE_ABBREV[role]}" if role else "")
    if name.startswith("a"):
        layer, group = name[1:].split(".g")
        return f"L{layer} kv{group}"
    return f"MLP{name[1:]}" if name.startswith("m") else name


def draw(edges: list[dict], n_layers: int, roles: dict, png: Path, page: Path, title: str, total_edges: int) -> list[str]:
    pos = layout(edges, n_layers)
    top = max((abs(e["score"]) for e in edges), default=1.0) or 1.0
    fig_h = max(5.0, 0.28 * (n_layers + 2))
    width = max(6.0, 0.9 * max(sum(1 for p in pos.values() if p[1] == r) for r in {p[1] for p in pos.values()}))
    fig, ax = plt.subplots(figsize=(width, fig_h))
    for e in edges:
        (x0, y0), (x1, y1) = pos[e["from"]], pos[_node(e["to"])]
        ax.plot([x0, x1], [y0, y1], color="#1f77b4" if e["score"] < 0 else "#d62728",
                lw=0.3 + 2.5 * abs(e["score"]) / top, alpha=0.55, zorder=1)
    for name, (x, y) in pos.items():
        role = roles.get(name, {}).get("role")
        ax.scatter([x], [y], s=60, c=ROLE_COLOURS[role] if name.startswith("a") else "#dddddd", edgecolors="k",
                   linewidths=0.5, zorder=2)
        ax.text(x, y + 0.35, _label(name, roles), ha="center", va="top", fontsize=6, zorder=3)
    ax.invert_yaxis()
    ax.set_yticks(range(-1, n_layers + 1), ["input", *[f"layer {i}" for i in range(n_layers)], "logits"], fontsize=6)
    ax.set_xticks([])
    ax.set_title(f"{title}\n{len(edges)} strongest of {total_edges} edges; blue: patching the edge lowers the metric",
                 fontsize=8)
    for s in ("top", "right", "bottom"):
        ax.spines[s].set_visible(False)
    fig.tight_layout()
    fig.savefig(png, dpi=130)
    plt.close(fig)
    page.write_text(_page(edges, pos, roles, n_layers, title, total_edges, top))
    return [str(png), str(page)]


def _page(edges, pos, roles, n_layers, title, total_edges, top) -> str:
    xs = [p[0] for p in pos.values()] or [0.0]
    sx, sy, pad = 70.0, 34.0, 60.0
    w = (max(xs) - min(xs)) * sx + 2 * pad + 80

    def at(name):
        x, y = pos[name]
        return (x - min(xs)) * sx + pad + 80, (y + 1) * sy + pad

    parts = []
    for e in edges:
        (x0, y0), (x1, y1) = at(e["from"]), at(_node(e["to"]))
        colour = "#1f77b4" if e["score"] < 0 else "#d62728"
        parts.append(f'<line class="edge" x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" stroke="{colour}" '
                     f'stroke-width="{0.5 + 3 * abs(e["score"]) / top:.2f}"><title>{html.escape(e["from"])} -&gt; '
                     f'{html.escape(e["to"])}: score {e["score"]:+.4f}</title></line>')
    for name in pos:
        x, y = at(name)
        info = roles.get(name, {})
        role = info.get("role")
        detail = "" if not info else f"\nrole: {role or 'none of the IOI classes'}\nDLA on IO-S: {info['dla']:+.3f}\n" + \
            "\n".join(f"attention {k}: {v:.2f}" for k, v in info["attention"].items())
        fill = ROLE_COLOURS[role] if name.startswith("a") else "#dddddd"
        parts.append(f'<g class="node" data-name="{html.escape(name)}"><circle cx="{x:.1f}" cy="{y:.1f}" r="7" '
                     f'fill="{fill}" stroke="#333"/><text x="{x:.1f}" y="{y - 10:.1f}">{html.escape(_label(name, roles))}'
                     f'</text><title>{html.escape(name + detail)}</title></g>')
    for row in range(-1, n_layers + 1):
        label = "input" if row == -1 else "logits" if row == n_layers else f"layer {row}"
        parts.append(f'<text class="row" x="6" y="{(row + 1) * sy + pad + 4:.1f}">{label}</text>')
    legend = " ".join(f'<span style="background:{c}">{html.escape(r)}</span>' for r, c in ROLE_COLOURS.items() if r)
    h = (n_layers + 2) * sy + 2 * pad
    css = ("body{font:13px sans-serif;margin:16px} svg text{font-size:9px;text-anchor:middle} "
           "svg text.row{text-anchor:start;fill:#666} .edge{opacity:.5} .edge:hover{opacity:1} "
           ".node:hover circle{stroke-width:3} .legend span{padding:2px 6px;margin-right:4px}")
    return page([f"<h3>{html.escape(title)}</h3>",
                 f"<p>{len(edges)} strongest of the circuit's {total_edges} edges (red: patching the edge raises the "
                 "metric, blue: lowers it; width: |score|). Hover a node or an edge for its values.</p>",
                 f'<p class="legend">{legend}</p>',
                 f'<svg width="{w:.0f}" height="{h:.0f}" xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'],
                title, css)
