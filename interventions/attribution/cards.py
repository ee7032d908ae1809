"""Feature cards for the nodes of a graph: the logits a feature's decoder direction promotes and
suppresses, and its top activating contexts in the first windows of its transcoder's input store
(activations computed here with the full encoder, so TopK selections are exact).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from interventions.browser.page import logit_tables
from mechinterp.formats.store import open_store


def _examples(tc, store, feats: np.ndarray, n_windows: int, n_examples: int, before: int, after: int,
              chunk: int = 32):
    """Each feature's top contexts over the store's first n_windows windows, read `chunk` windows at a
    time (memory stays that of one chunk; the running top n_examples rows are kept per feature)."""
    windows = np.arange(min(n_windows, store.n_windows))
    rpw = store.rows_per_window
    best_rows = np.zeros((0, len(feats)), np.int64)
    best_acts = np.zeros((0, len(feats)), np.float32)
    for lo in range(0, len(windows), chunk):
        w = windows[lo:lo + chunk]
        x = torch.from_numpy(store.read_windows(w))
        acts = (tc.encode(x)[:, torch.as_tensor(feats)] * torch.from_numpy(store.not_bos(w))[:, None]).numpy()
        rows = np.arange(len(acts))[:, None] + int(w[0]) * rpw + np.zeros(len(feats), np.int64)
        all_acts, all_rows = np.concatenate([best_acts, acts]), np.concatenate([best_rows, rows])
        top = np.argsort(-all_acts, axis=0, kind="stable")[:n_examples]
        best_acts, best_rows = np.take_along_axis(all_acts, top, 0), np.take_along_axis(all_rows, top, 0)
    out = []
    for j in range(len(feats)):
        ex = []
        for r in best_rows[best_acts[:, j] > 0, j]:
            toks, i = store.context(int(r), before, after)
            w = r // rpw
            ctx_rows = np.arange(r - i, r - i + len(toks))  # rows and positions align within a window
            ok = (ctx_rows >= w * rpw) & (ctx_rows < (w + 1) * rpw)
            a = np.zeros(len(toks))
            a[ok] = _row_acts(tc, store, int(w), ctx_rows[ok] - w * rpw, feats[j])
            ex.append({"ids": toks.tolist(), "acts": [round(float(v), 3) for v in a]})
        out.append(ex)
    return out, len(windows)


def _row_acts(tc, store, window: int, rows: np.ndarray, feat: int) -> np.ndarray:
    """One feature's activations on a few rows of one window (a context around a top example)."""
    if not len(rows):
        return np.zeros(0)
    x = torch.from_numpy(np.asarray(store.window_rows(window)[rows], np.float32))
    return tc.encode(x)[:, int(feat)].numpy() * store.not_bos(np.array([window]))[rows]


def feature_cards(model, tcs: dict, features: np.ndarray, n_windows: int = 128, n_examples: int = 3,
                  logit_top: int = 5, before: int = 12, after: int = 3) -> list[dict]:
    """One card per (layer, pos, latent) row of `features`."""
    cards: list[dict] = [{} for _ in features]
    tok = model.tokenizer
    for layer in np.unique(features[:, 0]):
        idx = np.flatnonzero(features[:, 0] == layer)
        tc = tcs[int(layer)]
        feats = features[idx, 2]
        table = logit_tables(model, tc.W_dec[torch.as_tensor(feats)], top=logit_top)
        store = tc.cfg.get("mechinterp", {}).get("store", {}).get("path", "")
        if store and Path(store).exists():
            examples, searched = _examples(tc, open_store(store), feats, n_windows, n_examples, before, after)
            note = f"top contexts in the first {searched} windows of {Path(store).name}"
        else:
            examples, note = [[] for _ in feats], f"no activation store at {store!r}: no examples"
        for j, i in enumerate(idx):
            cards[i] = {
                "logits_pos": [[tok.decode([int(t)]), round(float(v), 3)] for t, v in zip(table["up_ids"][j], table["up"][j])],
                "logits_neg": [[tok.decode([int(t)]), round(float(v), 3)] for t, v in zip(table["down_ids"][j], table["down"][j])],
                "examples": [{"tokens": [tok.decode([t]) for t in e["ids"]], "acts": e["acts"]} for e in examples[j]],
                "note": note,
            }
    return cards
