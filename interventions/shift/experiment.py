"""The SHIFT experiment: probe, attribution, selection, ablation rows against baselines."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from extract.biographies import Bios, load_splits
from interventions.sae import TorchSAE, load_sae
from interventions.shift.attribution import (
    Attribution,
    Selection,
    attribution_autograd,
    attribution_same_site,
    select_spurious,
)
from interventions.shift.config import ShiftConfig, ShiftError
from interventions.shift.featurizer import Edit, Featurizer
from interventions.shift.latents import roc_auc
from interventions.shift.probe import Probe, accuracies, train_probe


@dataclass
class ShiftResult:
    config: dict
    hook: str
    sae_path: str
    sae_hook: str
    rows: list[dict]
    selection: Selection
    attribution: Attribution
    ranked: list[dict]
    data: dict
    seconds: float
    notes: list[str] = field(default_factory=list)

    def row(self, name: str) -> dict:
        for r in self.rows:
            if r["row"] == name:
                return r
        raise KeyError(name)

    def to_json(self) -> dict:
        return {"config": self.config, "hook": self.hook, "sae": self.sae_path, "sae_hook": self.sae_hook,
                "rows": self.rows, "selection": asdict(self.selection),
                "attribution": {"method": self.attribution.method, "error_node": self.attribution.error,
                                "decoder_bias": self.attribution.bias,
                                "top_latents": [{"latent": int(i), "attribution": float(self.attribution.latents[i])}
                                                for i in self.attribution.ranked()[:50]],
                                "top_neurons": [{"dim": int(i), "attribution": float(self.attribution.neurons[i])}
                                                for i in self.attribution.neurons.abs().argsort(descending=True)[:50]]},
                "data": self.data, "seconds": self.seconds, "notes": self.notes}


def top_examples(feat: Featurizer, latent: int, n: int, splits=("ambiguous", "balanced"), before: int = 10,
                 after: int = 3) -> list[dict]:
    """The n (example, position) pairs where the latent is largest, with their context."""
    tok = feat.model.tokenizer
    pool_ = []
    for split in splits:
        st = feat.stats[split]
        vals, idx = st.top[:, latent].topk(min(n, st.top.shape[0]))
        pool_ += [(float(v), split, int(i), int(st.top_pos[i, latent])) for v, i in zip(vals, idx) if v > 0]
    pool_.sort(key=lambda t: -t[0])
    out = []
    for v, split, i, pos in pool_[:n]:
        toks = feat.sae_acts[split].tokens[i].tolist()
        out.append({"activation": v, "split": split, "example": i, "position": pos,
                    "token": tok.decode([toks[pos]]),
                    "context": tok.decode(toks[max(1, pos - before):pos]) + "[[" + tok.decode([toks[pos]]) + "]]"
                    + tok.decode(toks[pos + 1:pos + 1 + after])})
    return out


def evaluate_row(name: str, probe: Probe, feat: Featurizer, sets: dict[str, Bios], edit: Edit | None = None,
                 **extra) -> dict:
    bal = sets["balanced"]
    acc = accuracies(probe.predict(feat.pooled("balanced", edit)), bal.prof, bal.gender)
    return {"row": name, **acc, "n_ablated": len(edit.latents) + len(edit.neurons) if edit else 0, **extra}


def run_shift(cfg: ShiftConfig, model=None, sae: TorchSAE | None = None) -> ShiftResult:
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    sets = load_splits(cfg.data, seed=cfg.seed, n_ambiguous=cfg.n_ambiguous, n_balanced=cfg.n_balanced,
                       n_gender_only=cfg.n_gender_only)
    if model is None:
        from extract.models import load_model
        model = load_model(cfg.model, device=cfg.device)
    try:
        model.site(cfg.hook)
    except KeyError as e:
        raise ShiftError(e.args[0]) from None
    if cfg.layer >= model.n_layers:
        raise ShiftError(f"--layer {cfg.layer} out of range: {model.name} has {model.n_layers} layers")
    if sae is None:
        if not cfg.sae:
            raise ShiftError("no SAE: pass --sae DIR (`mechinterp shift` without --sae trains one first)")
        sae = load_sae(cfg.sae, device="cpu")
    sae_path = sae.path
    sae.check_fits(model)
    probe_hook = cfg.hook
    if sae.hook_name != probe_hook and model._depth(model.site(sae.hook_name)) > model._depth(model.site(probe_hook)):
        raise ShiftError(f"the SAE's hook {sae.hook_name} lies after the probe's {probe_hook}; pass --layer of the "
                         "SAE or later")
    bad = [f for f in cfg.features if not 0 <= f < sae.d_sae]
    if bad:
        raise ShiftError(f"--features {bad} out of range: the SAE has {sae.d_sae} latents (0..{sae.d_sae - 1})")

    feat = Featurizer(model, sae, probe_hook, sets, cfg.batch)
    amb, bal_tr = sets["ambiguous"], sets["balanced_train"]

    def fit(split: str, edit: Edit | None = None) -> Probe:
        return train_probe(feat.pooled(split, edit), sets[split].prof, steps=cfg.probe_steps, seed=cfg.seed)

    probe = fit("ambiguous")
    # 2. attribution
    if feat.same_site:
        attr = attribution_same_site(sae, probe, feat.probe_acts["ambiguous"], feat.stats["ambiguous"], amb.prof)
    else:
        attr = attribution_autograd(model, sae, probe, probe_hook, amb.texts, amb.prof, batch=cfg.batch // 2 or 1)
    # 3. selection
    gender_auc = roc_auc(feat.stats["gender_only"].pooled, sets["gender_only"].gender)
    sel = select_spurious(attr, gender_auc, cfg)
    notes = []
    if not sel.features:
        notes.append("the automatic criterion chose no latent: no top-attributed latent predicts gender; "
                     "lower --min_gender_auc, raise --top_n or pass --features")
    k = len(sel.features)
    # 4-5. rows
    rows = [evaluate_row("original probe", probe, feat, sets)]
    if k:
        for mode in ("zero", "mean"):
            rows.append(evaluate_row(f"SHIFT ({mode} ablation)", probe, feat, sets, Edit(sel.features, mode=mode)))
        for mode in ("zero", "mean"):
            e = Edit(sel.features, mode=mode)
            rows.append(evaluate_row(f"SHIFT + retrain ({mode})", fit("ambiguous", e), feat, sets, e))
        alive = torch.nonzero(feat.stats["ambiguous"].token_sum > 0).flatten().numpy()
        pool_ = np.setdiff1d(alive, sel.features)
        rng = np.random.default_rng(cfg.seed)
        rand_rows, rand_retrain = [], []
        for _ in range(cfg.n_random if len(pool_) >= k else 0):
            e = Edit(sorted(int(i) for i in rng.choice(pool_, k, replace=False)))
            rand_rows.append(evaluate_row("random", probe, feat, sets, e))
            rand_retrain.append(evaluate_row("random + retrain", fit("ambiguous", e), feat, sets, e))
        for name, rs in ((f"random latents x{k} (zero, mean of {len(rand_rows)})", rand_rows),
                         (f"random latents x{k} + retrain", rand_retrain)):
            if rs:
                rows.append(_mean_row(name, rs))
        dims = attr.neurons.abs().argsort(descending=True)[:k].tolist()
        for mode in ("zero", "mean"):
            rows.append(evaluate_row(f"neuron skyline ({mode})", probe, feat, sets, Edit(neurons=dims, mode=mode)))
        e = Edit(neurons=dims, mode="mean")
        rows.append(evaluate_row("neuron skyline + retrain (mean)", fit("ambiguous", e), feat, sets, e))
    rows.append(evaluate_row("oracle probe (balanced training set)", fit("balanced_train"), feat, sets))
    # ranked latents with their top-activating examples (the browser's data)
    ranked = []
    for rank, i in enumerate(attr.ranked()[:cfg.n_ranked]):
        ranked.append({"latent": int(i), "rank": rank, "attribution": float(attr.latents[i]),
                       "gender_auc": float(gender_auc[i]), "chosen": int(i) in sel.features,
                       "frequency": float((feat.stats["ambiguous"].top[:, i] > 0).float().mean()),
                       "top_examples": top_examples(feat, int(i), cfg.n_examples)})
    for c in sel.candidates:
        c["top_tokens"] = _top_tokens(feat, c["latent"], cfg.n_examples)
    data = {k_: {"n": len(v), "source": v.meta.get("source"), "example": v.texts[0]} for k_, v in sets.items()}
    data["probe_train_acc"] = float((probe.predict(feat.pooled("ambiguous")) == torch.tensor(amb.prof)).float().mean())
    data["oracle_train_n"] = len(bal_tr)
    return ShiftResult(config=asdict(cfg), hook=probe_hook, sae_path=str(sae_path), sae_hook=sae.hook_name, rows=rows,
                       selection=sel, attribution=attr, ranked=ranked, data=data,
                       seconds=time.perf_counter() - t0, notes=notes)


def _mean_row(name: str, rows: list[dict]) -> dict:
    keys = ("profession_acc", "gender_acc", "worst_group_acc")
    out = {"row": name, **{k: float(np.mean([r[k] for r in rows])) for k in keys},
           **{f"{k}_std": float(np.std([r[k] for r in rows])) for k in keys}, "n_ablated": rows[0]["n_ablated"],
           "n_draws": len(rows)}
    out["group_acc"] = {g: float(np.mean([r["group_acc"][g] for r in rows])) for g in rows[0]["group_acc"]}
    return out


def _top_tokens(feat: Featurizer, latent: int, n: int) -> list[str]:
    return [e["token"] for e in top_examples(feat, latent, n)]
