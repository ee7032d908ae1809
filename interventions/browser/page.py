"""The feature browser page: statistics (from sae_jax.features) + token strings + logit effects
-> a static site that works from file:// (no server, no CDN, no network).

    build_page(stats_dir, out, sae_dir, model=model)      # model: a HookedModel, or None

Layout of `out`:
  index.html, app.js, style.css     the page (interventions/browser_assets/, copied verbatim)
  data/index.js                     window.__index = {...}: one row per latent, columnar (the list)
  data/features/cNNNN.js            window.__chunk(NNNN, {...}): `chunk` latents each, loaded on
                                    demand through <script> tags (fetch() of file:// is blocked)

Logit effects: each latent's decoder direction through the final norm and the unembedding
(HookedModel.unembed_directions, as interventions.steer.feature_logit_effects), in batches.
This module never imports jax: it reads the statistics file with numpy.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from interventions.sae import SAERun
from mechinterp.formats.bounds import bounds, check_bounds
from mechinterp.formats.defaults import given_out
from mechinterp.formats.feature_stats import load_feature_stats
from mechinterp.formats.labels import labels_path, load_labels
from mechinterp.formats.store import open_store

ASSETS = Path(__file__).with_name("assets")


@dataclass(frozen=True)
class BrowseConfig(SAERun):
    acts: str | None = None
    """Activation store (None: the one the SAE was trained on)."""
    out: str | None = None
    """Output directory (None: runs/browser/<sae name>)."""
    logits: bool = field(default=True, metadata={"flag": "no_model"})
    """Load the model for logit tables and token strings (--no_model: token ids only)."""
    serve: bool = False
    """Then serve a live page on 127.0.0.1 (type text, see features fire)."""
    port: int = field(default=8765, metadata=bounds(0, 65535))
    """Port of the live page."""

    def __post_init__(self):
        check_bounds(self)

    def out_dir(self) -> Path:
        return given_out(self.out, "BrowseConfig")


@torch.no_grad()
def logit_tables(model, W_dec: torch.Tensor, top: int = 10, batch: int = 256) -> dict[str, np.ndarray]:
    """Top `top` promoted and suppressed token ids and logits per latent: {"up_ids", "up", "down_ids", "down"},
    arrays [d_sae, top] (down holds the negative logits, most negative first)."""
    out = {k: [] for k in ("up_ids", "up", "down_ids", "down")}
    for i in range(0, W_dec.shape[0], batch):
        logits = model.unembed_directions(W_dec[i:i + batch])
        up, down = logits.topk(top, dim=-1), (-logits).topk(top, dim=-1)
        out["up_ids"].append(up.indices.cpu().numpy())
        out["up"].append(up.values.float().cpu().numpy())
        out["down_ids"].append(down.indices.cpu().numpy())
        out["down"].append(-down.values.float().cpu().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def _token_strings(ids: np.ndarray, tokenizer) -> dict[int, str]:
    ids = np.unique(ids[ids >= 0])
    if tokenizer is None:
        return {int(i): f"<{int(i)}>" for i in ids}
    return {int(i): tokenizer.decode([int(i)]) for i in ids}


def _label_card(lab: dict) -> dict:
    """What the card shows of a label: its text, kind, the rule's estimated rates and its evidence."""
    keep = ("label", "kind", "expected", "tokens", "after", "positions", "promotes")
    return {k: lab[k] for k in keep if k in lab}


def _r(x: float) -> float:
    """Round to 3 significant digits (the page shows values, not bits)."""
    if x == 0 or not math.isfinite(x):
        return 0.0 if x == 0 else x
    return float(f"{x:.3g}")


def build_page(stats_dir: str | Path, out: str | Path, sae_dir: str | Path | None = None, model=None,
               tokenizer=None, store_path: str | Path | None = None, logit_top: int = 10, chunk: int = 32,
               title: str | None = None, logits: dict | None = None) -> dict:
    """Write the static site to `out` and return a summary (sizes, timings). `model` (a HookedModel)
    gives the logit tables and the tokenizer; without it only `tokenizer` (or token ids) is used.
    The export's labels (EXPORT/labels.json), when it has them, name every latent in the list and on
    its card, and the search reads them."""
    t0 = time.perf_counter()
    stats = load_feature_stats(stats_dir)
    arrays, summary = stats.arrays, stats.summary
    store = open_store(store_path or summary["store"])
    tokenizer = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
    S = int(arrays["count"].shape[0])
    offs = arrays["ctx_offsets"]
    first_pos, rpw = store.meta.first_pos, store.rows_per_window

    # --- token ids of every example's context (-1 outside its window)
    def contexts(rows: np.ndarray) -> np.ndarray:
        flat = rows.ravel()
        ok = flat >= 0
        w, p = np.divmod(np.where(ok, flat, 0), rpw)
        tpos = p[:, None] + first_pos + offs[None, :]
        inside = ok[:, None] & (tpos >= 0) & (tpos < store.meta.ctx)
        uniq, inv = np.unique(w[ok], return_inverse=True)
        wt = np.stack([np.asarray(store.window_tokens(int(x))) for x in uniq]) if len(uniq) else \
            np.zeros((0, store.meta.ctx), np.int64)
        toks = np.full(tpos.shape, -1, np.int64)
        toks[ok] = np.where(inside[ok], wt[inv[:, None], np.clip(tpos[ok], 0, store.meta.ctx - 1)], -1)
        return toks.reshape(*rows.shape, len(offs))

    top_tok = contexts(arrays["top_rows"])
    samp_tok = contexts(arrays["sample_rows"])
    if logits is None and model is not None and sae_dir is not None:
        from interventions.sae import load_sae
        sae = load_sae(sae_dir, device=model.device)
        logits = logit_tables(model, sae.W_dec, top=logit_top)
    labels = {lab["i"]: lab for lab in load_labels(sae_dir)["labels"]} \
        if sae_dir is not None and labels_path(sae_dir).exists() else None
    all_ids = [top_tok.ravel(), samp_tok.ravel()] + ([logits["up_ids"].ravel(), logits["down_ids"].ravel()] if logits else [])
    strings = _token_strings(np.concatenate(all_ids), tokenizer)
    t_data = time.perf_counter() - t0

    out = Path(out)
    (out / "data" / "features").mkdir(parents=True, exist_ok=True)
    for name in ("index.html", "app.js", "style.css"):
        shutil.copyfile(ASSETS / name, out / name)
    hi = int(np.flatnonzero(offs == 0)[0])
    hist, count = arrays["hist"], arrays["count"]
    bands = arrays["bands"]

    def example(row, toks, acts, value):
        keep = toks >= 0
        t, a = toks[keep], acts[keep]
        return [int(row), [table.setdefault(int(x), len(table)) for x in t],
                [None if not np.isfinite(v) else _r(float(v)) for v in a], int(keep[:hi].sum()), _r(float(value))]

    n_chunks = (S + chunk - 1) // chunk
    total_bytes = 0
    for c in range(n_chunks):
        table: dict[int, int] = {}
        feats = []
        for s in range(c * chunk, min(S, (c + 1) * chunk)):
            nz = np.flatnonzero(hist[s])
            h = [int(nz[0]), hist[s, nz[0]:nz[-1] + 1].tolist()] if len(nz) else [0, []]
            top = [example(r, top_tok[s, i], arrays["top_ctx"][s, i], arrays["top_values"][s, i])
                   for i, r in enumerate(arrays["top_rows"][s]) if r >= 0]
            bnd = []
            for b in range(len(bands) - 1):
                ex = [example(r, samp_tok[s, b, i], arrays["sample_ctx"][s, b, i], arrays["sample_values"][s, b, i])
                      for i, r in enumerate(arrays["sample_rows"][s, b]) if r >= 0]
                bnd.append([float(bands[b]), float(bands[b + 1]), ex])
            f = {"i": s, "n": int(count[s]), "h": h, "top": top, "bands": bnd}
            if labels is not None and s in labels:
                f["lab"] = _label_card(labels[s])
            if logits is not None:
                f["up"] = [[table.setdefault(int(t), len(table)), _r(float(v))]
                           for t, v in zip(logits["up_ids"][s], logits["up"][s])]
                f["down"] = [[table.setdefault(int(t), len(table)), _r(float(v))]
                             for t, v in zip(logits["down_ids"][s], logits["down"][s])]
            feats.append(f)
        inv = [""] * len(table)
        for tid, j in table.items():
            inv[j] = strings.get(tid, f"<{tid}>")
        payload = json.dumps({"s": inv, "f": feats}, ensure_ascii=False, separators=(",", ":"))
        text = f"window.__chunk({c},{payload});\n"
        (out / "data" / "features" / f"c{c:04d}.js").write_text(text, encoding="utf-8")
        total_bytes += len(text.encode("utf-8"))

    # --- the list: one row per latent, columnar; search text = top-activating + top promoted tokens
    search = []
    for s in range(S):
        seen: list[str] = []
        for t in top_tok[s, :, hi]:
            if t >= 0 and strings.get(int(t), "") not in seen:
                seen.append(strings.get(int(t), ""))
            if len(seen) == 5:
                break
        search.append(seen)
    index = {
        "title": title or Path(str(sae_dir or stats_dir)).name,
        "sae": str(sae_dir or ""), "store": str(summary["store"]), "model": summary.get("model"),
        "hook": summary.get("hook"), "n_tokens": int(arrays["n_tokens"]), "d_sae": S, "chunk": chunk,
        "architecture": summary.get("architecture"), "l0": summary.get("l0"),
        "dense_freq": summary.get("config", {}).get("dense_freq", 0.1),
        "edges": [float(arrays["hist_edges"][0]), float(arrays["hist_edges"][-1]), len(arrays["hist_edges"]) - 1],
        "freq": [_r(float(x)) for x in arrays["freq"]], "max": [_r(float(x)) for x in arrays["max"]],
        "mean": [_r(float(x)) for x in arrays["mean"]], "meanf": [_r(float(x)) for x in arrays["mean_firing"]],
        "flag": [int(d) + 2 * int(e) for d, e in zip(arrays["dead"], arrays["dense"])],
        "act": search,
        "label": [labels.get(s, {}).get("label", "") for s in range(S)] if labels is not None else None,
        "up": [[strings.get(int(t), "") for t in logits["up_ids"][s, :5]] for s in range(S)] if logits else None,
    }
    itext = "window.__index=" + json.dumps(index, ensure_ascii=False, separators=(",", ":")) + ";\n"
    (out / "data" / "index.js").write_text(itext, encoding="utf-8")
    total_bytes += len(itext.encode("utf-8"))
    return {"out": str(out), "d_sae": S, "chunks": n_chunks, "index_bytes": len(itext.encode("utf-8")),
            "total_bytes": total_bytes, "data_s": t_data, "wall_s": time.perf_counter() - t0,
            "logits": logits is not None}
