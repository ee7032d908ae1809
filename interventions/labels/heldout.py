"""Held-out excerpts with every latent's activations on them, for scoring labels (torch).

The text is the dump's held-out documents (never in an SAE's training windows, nor in the
statistics the labels come from), after the windows the dump itself took from them. The model runs
up to the deepest hook; each SAE encodes its hook's activations; the nonzeros are kept.
"""

from __future__ import annotations

import time
from itertools import islice

import numpy as np
import torch

from interventions.labels.excerpts import Excerpts, cut
from mechinterp.formats.errors import LabError


def heldout_windows(model, corpus: dict, ctx: int, n_tokens: int, text_field: str = "text") -> np.ndarray:
    """[W, ctx] windows of the corpus's held-out documents after the first corpus['eval_windows'] ones."""
    from extract.corpus import open_corpus
    from extract.windows import WindowStream

    stream = WindowStream(open_corpus(corpus["spec"], text_field), model.tokenizer, ctx, model.bos_token_id,
                          int(corpus.get("seed", 0)), float(corpus.get("eval_fraction", 0.05)))
    e0, e1 = corpus.get("eval_windows", [0, 0])
    want = max(1, -(-n_tokens // ctx))
    got = list(islice(stream.eval(), e1 - e0, e1 - e0 + want))
    if not got:
        raise LabError(f"the corpus {corpus['spec']} has no held-out text beyond the dump's {e1 - e0} windows; "
                       "score with a larger corpus (dump it with a larger --eval_fraction)")
    return np.stack(got)


@torch.inference_mode()
def heldout_excerpts(model, saes: list, windows: np.ndarray, length: int = 32, batch: int = 8,
                     progress: bool = True) -> list[Excerpts]:
    """One Excerpts per SAE (each at its own hook), over the same excerpts of `windows`."""
    first_pos = 1 if model.bos_token_id is not None else 0
    tok, prev, pos, where = cut(windows, first_pos, length)
    per = len(tok) // len(windows)
    hooks = [s.hook_name for s in saes]
    stop = model.min_stop_layer(hooks)
    parts: list[list] = [[] for _ in saes]
    t0 = time.perf_counter()
    for b in range(0, len(windows), batch):
        x = torch.from_numpy(windows[b:b + batch]).long().to(model.device)
        _, cache = model.run_with_cache(x, names=hooks, stop_at_layer=stop)
        span = pos[:per]                                                     # positions of one window's excerpts
        for j, (sae, hook) in enumerate(zip(saes, hooks)):
            acts = cache[hook][:, torch.from_numpy(span.ravel())]           # [B, per * L, d]
            f = sae.encode(acts.reshape(-1, acts.shape[-1]).float())
            r, lat = torch.nonzero(f, as_tuple=True)
            e, o = np.divmod(r.cpu().numpy(), length)
            parts[j].append((e + b * per, o, lat.cpu().numpy(), f[r, lat].cpu().numpy()))
        if progress and (b // batch) % 20 == 0:
            done = min(b + batch, len(windows))
            rate = done / max(time.perf_counter() - t0, 1e-9)
            print(f"  held-out: {done}/{len(windows)} windows, {rate * windows.shape[1]:.0f} tokens/s, "
                  f"ETA {(len(windows) - done) / max(rate, 1e-9):.0f}s", flush=True)
    out = []
    for p in parts:
        cat = [np.concatenate([q[k] for q in p]) for k in range(4)]
        out.append(Excerpts(tok.astype(np.int32), prev.astype(np.int32), pos.astype(np.int32),
                            cat[0].astype(np.int32), cat[1].astype(np.int16), cat[2].astype(np.int32),
                            cat[3].astype(np.float32)))
    return out
