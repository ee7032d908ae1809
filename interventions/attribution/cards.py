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


def _examples(tc, store_path: str, feats: np.ndarray, n_windows: int, n_examples: int, before: int, after: int):
    store = open_store(store_path)
    windows = np.arange(min(n_windows, store.n_windows))
    x = torch.from_numpy(store.read_windows(windows))
    acts = (tc.encode(x)[:, torch.as_tensor(feats)] * torch.from_numpy(store.not_bos(windows))[:, None]).numpy()
    rpw = store.rows_per_window
    out = []
    for j in range(len(feats)):
        rows = np.argsort(-acts[:, j], kind="stable")[:n_examples]
        ex = []
        for r in rows[acts[rows, j] > 0]:
            toks, i = store.context(int(r), before, after)
            w = r // rpw
            lo = r - i  # store row of the context's first token (rows and positions align within a window)
            ctx_rows = np.arange(lo, lo + len(toks))
            ok = (ctx_rows >= w * rpw) & (ctx_rows < (w + 1) * rpw)
            a = np.where(ok, acts[np.clip(ctx_rows, 0, len(acts) - 1), j], 0.0)
            ex.append({"ids": toks.tolist(), "acts": [round(float(v), 3) for v in a]})
        out.append(ex)
    return out


def feature_cards(model, tcs: dict, features: np.ndarray, n_windows: int = 32, n_examples: int = 3,
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
            examples, note = _examples(tc, store, feats, n_windows, n_examples, before, after), ""
        else:
            examples, note = [[] for _ in feats], f"no activation store at {store!r}: no examples"
        for j, i in enumerate(idx):
            cards[i] = {
                "logits_pos": [[tok.decode([int(t)]), round(float(v), 3)] for t, v in zip(table["up_ids"][j], table["up"][j])],
                "logits_neg": [[tok.decode([int(t)]), round(float(v), 3)] for t, v in zip(table["down_ids"][j], table["down"][j])],
                "examples": [{"tokens": [tok.decode([t]) for t in e["ids"]], "acts": e["acts"]} for e in examples[j]],
                "note": note or f"top contexts in the first {n_windows} windows of {Path(store).name}",
            }
    return cards
