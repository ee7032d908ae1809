"""Pages of the SAE evaluation suite, read from metrics.json files only (no torch, no jax):
one eval.html per SAE, and a comparison page across SAEs with one Pareto plot per metric against L0.
Both open from file:// with no network (figures inlined, plots as inline SVG with hover titles).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

from mechinterp.formats.results import RESULTS
from mechinterp.formats.sae import METRICS, read_sae_cfg
from mechinterp.views.html import img, load_json, page, table

# (key, label, higher is better, where in metrics.json)
SCALARS = (
    ("explained_variance_typical", "explained variance (no massive tokens)", True, ("core", "explained_variance_typical")),
    ("fvu", "FVU", False, ("core", "fvu")),
    ("shrinkage", "shrinkage ||x_hat|| / ||x||", True, ("core", "shrinkage")),
    ("ce_loss_recovered", "CE-loss recovered", True, ("ce_loss", "ce_loss_recovered")),
    ("kl", "KL(clean || SAE)", False, ("ce_loss", "kl_sae")),
    ("sparse_probing_top1", "sparse probing, top-1 latent accuracy", True, ("probing", "mean", "sae_top_1")),
    ("sparse_probing_top5", "sparse probing, top-5 latents accuracy", True, ("probing", "mean", "sae_top_5")),
    ("sparse_probing_saep_top1_auc", "sparse probing (sae-probes' protocol), top-1 latent AUC", True,
     ("probing_saep", "mean", "sae_top_1_auc")),
    ("absorption", "mean absorption fraction", False, ("absorption", "mean_absorption_fraction")),
    ("full_absorption", "full absorption rate", False, ("absorption", "mean_full_absorption_rate")),
    ("ground_truth_mcc", "ground-truth MCC", True, ("ground_truth", "mcc")),
)


def _get(d: dict, path: tuple):
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def summary(sae_dir: str | Path) -> dict:
    """The SAE's name, architecture, width, L0 and every scalar of SCALARS it has (None where not measured)."""
    sae_dir = Path(sae_dir)
    metrics = load_json(sae_dir / METRICS) or {}
    cfg = read_sae_cfg(sae_dir)  # a transcoder's numbers would sit beside SAEs' as if comparable
    ours = cfg.get("mechinterp", {})
    arch = ours.get("trained_architecture") or cfg.get("architecture")
    if ours.get("sae_config", {}).get("matryoshka"):
        arch = f"matryoshka-{arch}"
    l0 = _get(metrics, ("core", "l0"))
    row = {"sae": str(sae_dir), "architecture": arch,
           "d_sae": cfg.get("d_sae"), "l0": l0 if l0 is not None else metrics.get("l0")}
    for key, _, _, path in SCALARS:
        row[key] = _get(metrics, path)
    return row


# ---------------------------------------------------------------------------- one SAE


def _probing_figure(probing: dict, path: Path) -> None:
    from mechinterp.views.figures import plt

    sets = [s for s, v in probing.items() if isinstance(v, dict) and s != "mean"]
    fig, axes = plt.subplots(1, len(sets), figsize=(3.2 * len(sets), 2.8), squeeze=False)
    for ax, name in zip(axes[0], sets):
        r = probing[name]
        ks = sorted(int(k.split("_")[-1]) for k in r if k.startswith("sae_top_") and not k.endswith("latent"))
        ax.plot(ks, [r[f"sae_top_{k}"] for k in ks], "o-", label="SAE latents")
        ax.plot(ks, [r[f"llm_top_{k}"] for k in ks], "s--", label="raw dimensions")
        if "llm_full" in r:
            ax.axhline(r["llm_full"], color="gray", lw=0.8, ls=":", label="probe on every raw dim")
        ax.set_xscale("log")
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("k")
        ax.set_ylim(0.45, 1.02)
    axes[0][0].set_ylabel("test accuracy")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _absorption_figure(ab: dict, path: Path) -> None:
    from mechinterp.views.figures import plt

    letters = sorted(ab["letters"])
    fig, ax = plt.subplots(figsize=(9, 2.8))
    x = range(len(letters))
    ax.bar([i - 0.2 for i in x], [ab["letters"][c]["absorption_fraction"] for c in letters], 0.4,
           label="absorption fraction")
    ax.bar([i + 0.2 for i in x], [ab["letters"][c]["full_absorption_rate"] for c in letters], 0.4,
           label="full absorption rate")
    ax.plot(list(x), [ab["letters"][c]["probe_f1"] for c in letters], "k.", label="probe F1 (letters > 0.6 count)")
    ax.set_xticks(list(x), [c.upper() for c in letters])
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _probing_rows(probing: dict) -> list[dict]:
    return [{"set": k, **{c: x for c, x in v.items() if isinstance(x, float)}}
            for k, v in probing.items() if isinstance(v, dict)]


def write_sae_page(sae_dir: str | Path) -> Path:
    """eval.html (+ probing.png, absorption.png) beside the SAE's metrics.json."""
    sae_dir = Path(sae_dir)
    m = load_json(sae_dir / METRICS) or {}
    s = summary(sae_dir)
    parts = [f"<h1>SAE evaluation: {html.escape(str(sae_dir))}</h1>",
             table([{k: s[k] for k in ("architecture", "d_sae", "l0")}])]
    if "core" in m:
        core, jax_side = m["core"], m["core"].get("jax_at_training", {})
        parts += ["<h2>Core (held-out windows)</h2>",
                  table([{"metric": k, "torch (this run)": core.get(k), "JAX at training": jax_side.get(k)}
                          for k in ("fvu", "explained_variance", "explained_variance_typical", "massive_tokens",
                                    "shrinkage", "rel_error_p50", "rel_error_p90", "l0", "dead", "dense")])]
    if "ce_loss" in m:
        parts += ["<h2>CE loss</h2>", table([{k: v for k, v in m["ce_loss"].items() if k != "hook"}])]
    if "probing" in m:
        _probing_figure(m["probing"], sae_dir / "probing.png")
        parts += ["<h2>Sparse probing</h2>", table(_probing_rows(m["probing"])), img(sae_dir / "probing.png",
                  "test accuracy of k-sparse probes on SAE latents vs raw dimensions")]
    if "probing_saep" in m:
        parts += ["<h2>Sparse probing, sae-probes' protocol (last token; C by validation AUC)</h2>",
                  table(_probing_rows(m["probing_saep"]))]
    if "absorption" in m:
        ab = m["absorption"]
        _absorption_figure(ab, sae_dir / "absorption.png")
        head = {k: v for k, v in ab.items() if not isinstance(v, dict)}
        parts += ["<h2>First-letter absorption</h2>", table([head]),
                  img(sae_dir / "absorption.png", "absorption per first letter")]
    out = sae_dir / "eval.html"
    out.write_text(page(parts, f"SAE evaluation {sae_dir.name}"))
    return out


# ---------------------------------------------------------------------------- several SAEs


@dataclass(frozen=True)
class CompareConfig:
    saes: tuple[str, ...]
    """SAE export directories, each evaluated with `mechinterp eval-sae` first."""
    out: str | None = None
    """Output directory: compare.html, pareto.png, results.json (None: runs/compare)."""

    def __post_init__(self):
        for d in self.saes:
            read_sae_cfg(d)
            if not (Path(d) / METRICS).exists():
                raise ValueError(f"{d} has no metrics.json; evaluate it first with `mechinterp eval-sae --sae {d}`")


def pareto(points: list[tuple[float, float]], higher: bool) -> list[int]:
    """Indices of the points no other point beats at a lower or equal L0 (points: (l0, value))."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1] if higher else points[i][1]))
    best, out = None, []
    for i in order:
        v = points[i][1]
        if best is None or (v > best if higher else v < best):
            best = v
            out.append(i)
    return out


def _svg_scatter(rows: list[dict], key: str, label: str, higher: bool, w: int = 340, h: int = 240) -> str:
    pts = [(r["l0"], r[key], r) for r in rows if r.get(key) is not None and r.get("l0") is not None]
    if not pts:
        return ""
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1e-6
    left, top, pw, ph = 50, 20, w - 70, h - 60
    X = lambda v: left + (v - x0) / (x1 - x0) * pw
    Y = lambda v: top + ph - (v - y0) / (y1 - y0) * ph
    front = pareto([(p[0], p[1]) for p in pts], higher)
    e = html.escape
    out = [f'<svg class="pareto" width="{w}" height="{h}" data-metric="{e(key)}">',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    line = " ".join(f"{X(pts[i][0]):.1f},{Y(pts[i][1]):.1f}" for i in front)
    out.append(f'<polyline points="{line}" fill="none" stroke="#d62728" stroke-width="1.2"/>')
    for i, (x, y, r) in enumerate(pts):
        tip = f"{r['sae']} ({r['architecture']}, {r['d_sae']} latents): L0 {x:.3g}, {label} {y:.4g}"
        colour = "#d62728" if i in front else "#1f77b4"
        out.append(f'<circle cx="{X(x):.1f}" cy="{Y(y):.1f}" r="5" fill="{colour}"><title>{e(tip)}</title></circle>')
    out += [f'<text x="{left}" y="{h - 25}" font-size="10">{x0:.3g}</text>',
            f'<text x="{left + pw}" y="{h - 25}" font-size="10" text-anchor="end">{x1:.3g}</text>',
            f'<text x="{left + pw / 2}" y="{h - 8}" font-size="11" text-anchor="middle">L0</text>',
            f'<text x="{left - 4}" y="{top + ph}" font-size="10" text-anchor="end">{y0:.3g}</text>',
            f'<text x="{left - 4}" y="{top + 8}" font-size="10" text-anchor="end">{y1:.3g}</text>',
            f'<text x="{left}" y="{top - 6}" font-size="11">{e(label)} ({"higher" if higher else "lower"} is better)'
            '</text></svg>']
    return "\n".join(out)


def _pareto_png(rows: list[dict], path: Path) -> list[str]:
    from mechinterp.views.figures import plt

    keys = [s for s in SCALARS if any(r.get(s[0]) is not None for r in rows)]
    if not keys:
        return []
    cols = min(3, len(keys))
    fig, axes = plt.subplots(-(-len(keys) // cols), cols, figsize=(3.6 * cols, 2.9 * -(-len(keys) // cols)),
                             squeeze=False)
    for ax, (key, label, higher, _) in zip(axes.flat, keys):
        pts = [(r["l0"], r[key], r) for r in rows if r.get(key) is not None and r.get("l0") is not None]
        for x, y, r in pts:
            ax.scatter([x], [y], s=22)
            ax.annotate(str(r["architecture"]), (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
        front = sorted((pts[i] for i in pareto([(p[0], p[1]) for p in pts], higher)), key=lambda p: p[0])
        ax.plot([p[0] for p in front], [p[1] for p in front], color="tab:red", lw=1)
        ax.set_title(label, fontsize=8)
        ax.set_xlabel("L0", fontsize=8)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [k[0] for k in keys]


def write_comparison(sae_dirs: list[str | Path], out: str | Path) -> dict[str, Path]:
    """compare.html, pareto.png and results.json (one row per SAE) in `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [summary(d) for d in sae_dirs]
    for r in rows:
        r["page"] = str(Path(r["sae"]) / "eval.html") if (Path(r["sae"]) / "eval.html").exists() else None
    measured = _pareto_png(rows, out / "pareto.png")
    plots = [_svg_scatter(rows, key, label, higher) for key, label, higher, _ in SCALARS if key in measured]
    links = "".join(f'<li><a href="{html.escape(Path(r["page"]).resolve().as_uri())}">{html.escape(r["sae"])}</a></li>'
                    for r in rows if r["page"])
    parts = ["<h1>SAE comparison</h1>",
             "<p>One plot per metric against L0; red: the Pareto front (no other SAE is better at a lower or "
             "equal L0). Hover a point for its SAE.</p>",
             table([{k: v for k, v in r.items() if k != "page"} for r in rows]),
             '<div style="display:flex;flex-wrap:wrap;gap:12px">' + "".join(plots) + "</div>",
             f"<h2>Each SAE's page</h2><ul>{links}</ul>" if links else ""]
    (out / "compare.html").write_text(page(parts, "SAE comparison"))
    (out / RESULTS).write_text(json.dumps({"saes": rows, "metrics": measured}, indent=2))
    return {"html": out / "compare.html", "png": out / "pareto.png", "json": out / RESULTS}
