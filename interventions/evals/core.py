"""Core reconstruction metrics of an exported SAE, recomputed in torch on the held-out windows its
CE loss is measured on, without the BOS rows (as the store leaves them out), so any SAELens-layout
SAE gets them and ours are checked against what the JAX side wrote at training time:

  fvu, explained_variance      over every evaluated token (one global ratio)
  explained_variance_typical   without the tokens whose norm is over MASSIVE x the median norm
                               (median of the first batch, as the JAX side takes its first chunk)
  massive_tokens               how many were left out
  shrinkage                    mean ||x_hat|| / ||x|| (SAEBench's relative reconstruction norm)
  rel_error_p50 / p90          quantiles of ||x - x_hat|| / ||x|| per token
  l0, dead, dense              latents firing per token; never firing; firing on > 10% of tokens
"""

from __future__ import annotations

import numpy as np
import torch

from interventions.sae import TorchSAE
from mechinterp.formats.sae import DENSE_FREQ, MASSIVE


@torch.no_grad()
def reconstruction_metrics(model, sae: TorchSAE, windows: np.ndarray, first_pos: int = 1, batch: int = 8,
                           hook: str | None = None) -> dict:
    hook = sae.check_fits(model, hook)
    stop = model.min_stop_layer([hook])
    n, sx, sxx, sse = 0, 0.0, 0.0, 0.0
    typ = dict(n=0, sx=0.0, sxx=0.0, sse=0.0)
    limit, rel, shrink, l0, counts = None, [], 0.0, 0.0, torch.zeros(sae.d_sae, dtype=torch.float64)
    tokens = torch.as_tensor(np.asarray(windows), dtype=torch.long)
    for i in range(0, len(tokens), batch):
        toks = tokens[i:i + batch]
        _, cache = model.run_with_cache(toks.to(model.device), names=[hook], stop_at_layer=stop)
        x = cache[hook][:, first_pos:].reshape(-1, sae.d_in).float()
        if model.bos_token_id is not None:  # BOS tokens inside windows (document separators): the store skips them
            x = x[(toks[:, first_pos:] != model.bos_token_id).reshape(-1).to(x.device)]
        f = sae.encode(x)
        recon = sae.decode(f, x)
        err = ((recon - x) ** 2).sum(-1).double()
        norm = x.norm(dim=-1).double().clamp_min(1e-12)
        x64 = x.double()
        limit = MASSIVE * float(norm.median()) if limit is None else limit
        keep = norm <= limit
        n, sx, sxx, sse = n + len(x), sx + x64.sum(0), sxx + float((x64 ** 2).sum()), sse + float(err.sum())
        typ["n"] += int(keep.sum())
        typ["sx"] = typ["sx"] + x64[keep].sum(0)
        typ["sxx"] += float((x64[keep] ** 2).sum())
        typ["sse"] += float(err[keep].sum())
        rel.append((err.sqrt() / norm).cpu())
        shrink += float((recon.norm(dim=-1).double() / norm).sum())
        on = f > 0
        l0 += float(on.sum())
        counts += on.sum(0).double().cpu()
    sst = sxx - float((sx ** 2).sum()) / n
    sst_typ = typ["sxx"] - float((typ["sx"] ** 2).sum()) / max(typ["n"], 1)
    rel = torch.cat(rel).numpy()
    freq = counts.numpy() / n
    return dict(eval_tokens=n, fvu=sse / sst, explained_variance=1 - sse / sst,
                explained_variance_typical=1 - typ["sse"] / sst_typ if sst_typ > 0 else None,
                massive_tokens=n - typ["n"], shrinkage=shrink / n,
                rel_error_p50=float(np.quantile(rel, 0.5)), rel_error_p90=float(np.quantile(rel, 0.9)),
                l0=l0 / n, dead=int((counts == 0).sum()), dense=int((freq > DENSE_FREQ).sum()), hook=hook)
