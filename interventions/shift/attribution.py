"""Attribution of the probe's metric to SAE latents, the SAE error and raw dimensions; the
automatic choice of spurious latents from it."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interventions.sae import TorchSAE
from interventions.shift.config import ShiftConfig
from interventions.shift.latents import LatentStats
from interventions.shift.probe import Probe, TokenActs, pool

# ---------------------------------------------------------------------------- attribution


@dataclass
class Attribution:
    latents: torch.Tensor
    """Mean attribution per latent [d_sae] (gradient x activation of m, summed over positions)."""
    error: float
    """The SAE error term's attribution (its own node)."""
    neurons: torch.Tensor
    """Mean attribution per dimension of the raw activation at the SAE's hook [d_in]."""
    bias: float = 0.0
    """The decoder bias' attribution (the constant part of the reconstruction)."""
    method: str = "closed form"

    def ranked(self) -> list[int]:
        return self.latents.abs().argsort(descending=True).tolist()


def label_sign(y) -> torch.Tensor:
    return torch.as_tensor(y, dtype=torch.float32) * 2 - 1


def attribution_same_site(sae: TorchSAE, probe: Probe, acts: TokenActs, stats: LatentStats, labels) -> Attribution:
    """Closed form when the probe reads the SAE's hook: m = s (w . pool(x) + b) with s = +-1, so
    d m / d x_t = s w / T on the pooled positions and gradient x activation summed over positions is
    s (pool(f) [n, d_sae]) * (W_dec w) for latents, s pool(err) . w for the error term."""
    s = label_sign(labels).unsqueeze(1)
    g = probe.direction()
    px = acts.pooled()
    latents = (s * stats.pooled * (sae.W_dec @ g)).mean(0)
    err = (s.squeeze(1) * ((px - stats.pooled_recon) @ g)).mean()
    bias = float((s.squeeze(1) * (sae.b_dec @ g)).mean())
    neurons = (s * px * g).mean(0)
    return Attribution(latents, float(err), neurons, bias)


def attribution_autograd(model, sae: TorchSAE, probe: Probe, probe_hook: str, texts: list[str], labels,
                         batch: int = 16) -> Attribution:
    """Attribution patching through the model: the SAE is spliced at its hook as decode(f) + err
    with f and err leaves of the graph, the probe reads its hook (same or later), and one backward of
    m gives f.grad (latents), err.grad (the error node; also d m / d x, for the neurons)."""
    from interventions.shift.probe import tokenize

    ids = tokenize(model, texts)
    first = 1 if model.bos_token_id is not None else 0
    s_all = label_sign(labels)
    same = sae.hook_name == probe_hook
    read, stop = probe_hook, model.min_stop_layer([probe_hook])
    tot_lat, tot_neu = torch.zeros(sae.d_sae), torch.zeros(sae.d_in)
    tot_err = tot_bias = 0.0
    pad = model.tokenizer.pad_token_id or 0
    for b0 in range(0, len(ids), batch):
        rows = ids[b0:b0 + batch]
        T = max(map(len, rows))
        tokens = torch.full((len(rows), T), pad, dtype=torch.long)
        mask = torch.zeros(len(rows), T, dtype=torch.bool)
        for i, r in enumerate(rows):
            tokens[i, :len(r)] = torch.tensor(r)
            mask[i, first:len(r)] = True
        saved: dict[str, torch.Tensor] = {}

        def splice(x, hook):
            x32 = x.detach().float()
            f = sae.encode(x32).requires_grad_(True)
            err = (x32 - sae.decode(f.detach())).requires_grad_(True)
            saved.update(f=f, err=err, x=x32)
            new = sae.decode(f) + err
            new = torch.where(mask.unsqueeze(-1), new, x32)  # BOS and pads untouched
            if same:
                saved["probe"] = new
            return new.to(x.dtype)

        def grab(x, hook):
            saved["probe"] = x

        hooks = [(sae.hook_name, splice)] + ([] if same else [(read, grab)])
        with torch.enable_grad():
            model.run_with_hooks(tokens.to(model.device), hooks=hooks, stop_at_layer=stop)
            s = s_all[b0:b0 + batch]
            m = (s * probe.logits(pool(saved["probe"].float(), mask))).sum()
            # autograd.grad, not backward: no .grad is left on the model's parameters
            f_grad, err_grad = torch.autograd.grad(m, [saved["f"], saved["err"]])
        f, err, x = saved["f"].detach(), saved["err"].detach(), saved["x"]
        mk = mask.unsqueeze(-1).float()
        tot_lat += (f * f_grad * mk).sum((0, 1))
        tot_err += float((err * err_grad * mk).sum())
        tot_neu += (x * err_grad * mk).sum((0, 1))
        tot_bias += float(((sae.b_dec * err_grad) * mk).sum())
    n = len(ids)
    return Attribution(tot_lat / n, tot_err / n, tot_neu / n, tot_bias / n, method="autograd")


# ---------------------------------------------------------------------------- selection


@dataclass
class Selection:
    features: list[int]
    method: str
    """'inspection' (given) or 'auto'."""
    criterion: str
    candidates: list[dict]
    """Every top-N candidate with its attribution, gender AUC and whether it was chosen."""


def select_spurious(attr: Attribution, gender_auc: torch.Tensor, cfg: ShiftConfig) -> Selection:
    ranked = attr.ranked()[:cfg.top_n]
    candidates, chosen = [], []
    for rank, i in enumerate(ranked):
        auc = float(gender_auc[i])
        spurious = max(auc, 1 - auc) >= cfg.min_gender_auc
        if spurious and (not cfg.max_features or len(chosen) < cfg.max_features):
            chosen.append(i)
        candidates.append({"latent": i, "rank": rank, "attribution": float(attr.latents[i]), "gender_auc": auc,
                           "gender": "male" if auc >= 0.5 else "female", "spurious": spurious,
                           "chosen": i in chosen})
    criterion = (f"among the top {cfg.top_n} latents by |attribution|, those whose mean activation separates "
                 f"the genders on the gender-only set (personal sentences, no profession) with ROC AUC >= "
                 f"{cfg.min_gender_auc} or <= {1 - cfg.min_gender_auc:.2f}")
    if cfg.features:
        given = set(cfg.features)
        for c in candidates:
            c["chosen"] = c["latent"] in given
        return Selection(list(cfg.features), "inspection", "given on the command line (--features)", candidates)
    return Selection(chosen, "auto", criterion, candidates)


