"""A residue feature browser for SAEs (or neurons) of antibody language models.

`top_sequences` streams over a store's encoded rows twice: first a running top-n of sequences per
latent by their largest activation (bounded memory), then the chosen sequences' per-residue
activations. `write_residue_page` turns that into one self-contained OUT/residues.html (inline CSS,
JS and data; opens from file://, fetches nothing):

    +--------------------+--------------------------------------------------------------+
    | #12  region:CDR3.. | latent 12  (its note)                region legend: FR1 CDR1 |
    | #40  conserved:... | seq id · max · residues                                      |
    | ...                |  E V Q L V E S G G ...   residue letters, white -> orange by  |
    |                    |  ▬ ▬ ▬ ▬ ▬ ▬ ▬ ▬ ▬ ...   activation / the latent's top value; |
    |                    |                          the region track right under them   |
    +--------------------+--------------------------------------------------------------+

Every residue is one column (letter over its region cell), so long sequences wrap without the
letters and the track drifting apart; hovering one shows its position, IMGT number, region and
activation. `residue_strip_png` draws a few latents' top sequences the same way for a report.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from extract.bio.labels import REGIONS
from mechinterp.formats.residues import Residues

REGION_COLORS = ("#d5dde6", "#d81b60", "#b7c5d3", "#2e7d32", "#98adc2", "#6a1b9a", "#7a90a8")
"""Per REGIONS entry (FR1 CDR1 FR2 CDR2 FR3 CDR3 FR4): grey-blue frameworks, strong CDRs."""
ORANGE = (255, 140, 0)

Chunks = Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]


def _np(x) -> np.ndarray:
    """numpy view of an array or a (CPU) torch tensor."""
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def _sig3(values: np.ndarray) -> list[float]:
    return [float(f"{v:.3g}") for v in values.tolist()]


def _max_per_seq(seq: np.ndarray, acts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the sequences present [u], their largest activation per column [u, k])."""
    order = np.argsort(seq, kind="stable")
    seq, acts = seq[order], acts[order]
    starts = np.r_[0, np.flatnonzero(seq[1:] != seq[:-1]) + 1]
    return seq[starts], np.maximum.reduceat(acts, starts, axis=0)


def _merge_top(seqs: np.ndarray, maxes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The n best distinct sequences by max (ties: lower sequence index first). A sequence split
    over chunks appears once per chunk; each value is a lower bound of its max, so keeping the best
    per sequence never drops one that belongs in the true top n."""
    order = np.lexsort((seqs, -maxes))
    seqs, maxes = seqs[order], maxes[order]
    _, first = np.unique(seqs, return_index=True)
    keep = np.sort(first)[:n]
    return seqs[keep], maxes[keep]


def _example(res: Residues, seq: int, rows: np.ndarray, acts: np.ndarray) -> dict:
    order = np.argsort(res.pos[rows], kind="stable")
    rows, acts = rows[order], acts[order]
    text, pos = str(res.seq_text[seq]), res.pos[rows].astype(int)
    return {"seq": int(seq), "id": str(res.seq_ids[seq]), "max": _sig3(acts.max(keepdims=True))[0] if len(acts) else 0.0,
            "acts": _sig3(acts), "letters": "".join(text[p] if p < len(text) else "?" for p in pos),
            "region": res.region[rows].astype(int).tolist(), "imgt": res.imgt[rows].astype(int).tolist(),
            "pos": pos.tolist()}


def top_sequences(chunks: Chunks, res: Residues, latents: list[int], n: int = 8) -> dict[int, list[dict]]:
    """Per latent, its n sequences with the highest max activation, best first, each with its
    stored residues: {"seq", "id", "max", "acts", "letters", "region", "imgt", "pos"}.

    chunks() yields (global row indices into res, activations [rows, n_latents_total]); it is called
    twice. Chunks may split sequences and come in any order.
    """
    latents = [int(j) for j in latents]
    top = {j: (np.zeros(0, np.int64), np.zeros(0, np.float64)) for j in latents}
    for rows, acts in chunks():
        rows = _np(rows).astype(np.int64)
        if not len(rows):
            continue
        useq, m = _max_per_seq(res.seq[rows].astype(np.int64), _np(acts)[:, latents].astype(np.float64))
        for i, j in enumerate(latents):
            s, v = top[j]
            top[j] = _merge_top(np.r_[s, useq], np.r_[v, m[:, i]], n)
    picked: dict[int, list] = {j: [] for j in latents}
    for rows, acts in chunks():
        rows = _np(rows).astype(np.int64)
        seq, acts = res.seq[rows], _np(acts)
        for j in latents:
            mask = np.isin(seq, top[j][0])
            if mask.any():
                picked[j].append((rows[mask], acts[mask, j].astype(np.float64)))
    out = {}
    for j in latents:
        rows = np.concatenate([r for r, _ in picked[j]]) if picked[j] else np.zeros(0, np.int64)
        vals = np.concatenate([a for _, a in picked[j]]) if picked[j] else np.zeros(0)
        seq = res.seq[rows]
        out[j] = [_example(res, s, rows[seq == s], vals[seq == s]) for s in top[j][0].tolist()]
    return out


# ---------------------------------------------------------------------------- the page

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body{margin:0;font:13px system-ui,sans-serif;display:grid;grid-template-columns:280px 1fr;height:100vh;color:#222}
#side{overflow:auto;border-right:1px solid #ddd}
#side h1{font-size:14px;margin:10px}
#list{list-style:none;margin:0;padding:0}
#list li{padding:6px 10px;cursor:pointer;border-top:1px solid #eee}
#list li:hover{background:#f5f5f5} #list li.on{background:#ffe0b2}
#list .note,.note{color:#555;font-size:11px;word-break:break-word}
main{overflow:auto;padding:10px 18px}
main h2{margin:4px 0;font-size:16px}
#legend{display:flex;gap:10px;flex-wrap:wrap;margin:6px 0 12px}
#legend span{display:inline-block;width:14px;height:8px;margin-right:3px;vertical-align:middle}
.ex{margin-bottom:14px}
.hd{font-size:12px;color:#444;margin-bottom:3px}
.seq{display:flex;flex-wrap:wrap;row-gap:6px;font:13px/16px ui-monospace,Menlo,Consolas,monospace}
.col{display:flex;flex-direction:column;width:12px}
.col.gap{margin-right:5px}
.aa{height:16px;text-align:center}
.rg{height:5px;margin-top:1px}
.col:hover .aa{outline:1px solid #333}
</style></head>
<body><nav id="side"><h1>__TITLE__</h1><ul id="list"></ul></nav>
<main><div id="legend"></div><div id="view"></div></main>
<script type="application/json" id="data">__DATA__</script>
<script>
const D = JSON.parse(document.getElementById('data').textContent);
const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls;
  if (text != null) e.textContent = text; return e; };
const heat = (v, top) => { const t = top > 0 ? Math.max(0, Math.min(1, v / top)) : 0;
  return 'rgb(' + D.orange.map(c => Math.round(255 + (c - 255) * t)).join(',') + ')'; };
let current = 0;
function residue(e, k, top) {
  const col = el('span', k % 10 === 9 ? 'col gap' : 'col'), r = e.region[k], v = e.acts[k];
  const aa = el('span', 'aa', e.letters[k]), rg = el('span', 'rg');
  aa.style.background = heat(v, top); aa.dataset.act = v;
  rg.style.background = r >= 0 ? D.colors[r] : 'transparent'; rg.dataset.region = r;
  col.title = 'position ' + (e.pos[k] + 1) + ' · IMGT ' + (e.imgt[k] >= 0 ? e.imgt[k] : '-') + ' · ' +
    (r >= 0 ? D.regions[r] : 'outside the domain') + ' · activation ' + v;
  col.append(aa, rg); return col;
}
function show(i) {
  current = i; const L = D.latents[i], view = document.getElementById('view');
  document.querySelectorAll('#list li').forEach((li, j) => li.classList.toggle('on', j === i));
  view.replaceChildren(el('h2', null, 'latent ' + L.id), el('p', 'note', L.note));
  view.dataset.latent = L.id;
  const top = Math.max(0, ...L.examples.map(e => e.max));
  if (!L.examples.length) view.append(el('p', null, 'no examples'));
  for (const e of L.examples) {
    const box = el('div', 'ex'), seq = el('div', 'seq');
    box.append(el('div', 'hd', e.id + ' · sequence ' + e.seq + ' · max ' + e.max + ' · ' + e.acts.length + ' residues'));
    e.acts.forEach((_, k) => seq.append(residue(e, k, top)));
    box.append(seq); view.append(box);
  }
}
const legend = document.getElementById('legend');
D.regions.forEach((name, r) => { const s = el('div', null, name), sw = el('span');
  sw.style.background = D.colors[r]; s.prepend(sw); legend.append(s); });
D.latents.forEach((L, i) => { const li = el('li'); li.dataset.latent = L.id;
  li.append(el('b', null, '#' + L.id + ' '), el('span', 'note', L.note));
  li.onclick = () => show(i); document.getElementById('list').append(li); });
document.addEventListener('keydown', ev => {
  const d = ev.key === 'ArrowDown' ? 1 : ev.key === 'ArrowUp' ? -1 : 0;
  if (d && D.latents.length) { ev.preventDefault(); show(Math.max(0, Math.min(D.latents.length - 1, current + d))); } });
if (D.latents.length) show(0);
document.body.dataset.ready = '1';
</script></body></html>
"""


def write_residue_page(out_dir, examples: dict[int, list[dict]], notes: dict[int, str], title: str) -> Path:
    """Write out_dir/residues.html (latents in the order of `examples`); returns its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = {"regions": list(REGIONS), "colors": list(REGION_COLORS), "orange": list(ORANGE),
            "latents": [{"id": int(j), "note": str(notes.get(j, "")), "examples": ex} for j, ex in examples.items()]}
    blob = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")  # never closes the <script>
    path = out / "residues.html"
    path.write_text(_PAGE.replace("__DATA__", blob).replace("__TITLE__", html.escape(title)), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- the report figure


def _strip_rgb(ex: dict, top: float, width: int) -> np.ndarray:
    """[3, width, 3] RGB rows: activation heat, region track, a white spacer."""
    img = np.ones((3, width, 3))
    t = np.clip(np.asarray(ex["acts"]) / top, 0, 1) if top > 0 else np.zeros(len(ex["acts"]))
    img[0, :len(t)] = 1 + (np.array(ORANGE) / 255 - 1) * t[:, None]
    colors = np.array([[int(c[i:i + 2], 16) / 255 for i in (1, 3, 5)] for c in REGION_COLORS])
    region = np.asarray(ex["region"], int)
    img[1, :len(region)][region >= 0] = colors[region[region >= 0]]
    return img


def residue_strip_png(examples: dict[int, list[dict]], notes: dict[int, str], path, latents=None,
                      per_latent: int = 3) -> Path:
    """A PNG of a few latents' top `per_latent` sequences: per sequence an activation strip (white ->
    orange, letters on it) over its region track; one panel per latent titled with its note."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    latents = list(examples)[:4] if latents is None else list(latents)
    width = max([len(e["acts"]) for j in latents for e in examples[j][:per_latent]] + [1])
    fig = Figure(figsize=(min(24.0, 2.5 + 0.11 * width), 0.8 + sum(0.25 + 0.42 * per_latent for _ in latents)))
    axes = fig.subplots(max(1, len(latents)), 1, squeeze=False)[:, 0]
    for ax, j in zip(axes, latents):
        shown = examples[j][:per_latent]
        top = max([e["max"] for e in shown] + [0.0])
        img = np.concatenate([_strip_rgb(e, top, width) for e in shown]) if shown else np.ones((1, width, 3))
        ax.imshow(img, aspect="auto", interpolation="nearest")
        for i, e in enumerate(shown):
            for k, aa in enumerate(e["letters"]):
                ax.text(k, 3 * i, aa, ha="center", va="center", fontsize=5.5, family="monospace")
        ax.set_yticks([3 * i for i in range(len(shown))], [e["id"][:18] for e in shown], fontsize=7)
        ax.set_xticks(range(9, width, 10), [str(k + 1) for k in range(9, width, 10)], fontsize=6)
        ax.set_title(f"latent {j}: {notes.get(j, '')}", fontsize=9, loc="left")
        ax.tick_params(length=0)
    fig.legend(handles=[Patch(color=c, label=r) for r, c in zip(REGIONS, REGION_COLORS)], loc="lower center",
               ncol=len(REGIONS), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=130)
    return Path(path)
