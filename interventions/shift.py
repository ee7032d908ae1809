"""SHIFT (Marks et al. 2024, Sparse Feature Circuits, arXiv 2403.19647): find the SAE latents a
classifier uses for a spurious cue (gender) and ablate them.

    result = run_shift(ShiftConfig(sae="runs/sae/.../sae"))    # -> ShiftResult
    write_outputs(result, "runs/shift/smollm2-135m-q4")        # table.md, results.json, shift.png, latents.json

The steps, on the biographies of interventions/bios.py (profession x gender):

1. Probe. Logistic regression for profession on mean-pooled activations at one hook, trained on
   the ambiguous set (male professors, female nurses): it can use profession or gender.
   Evaluated on the balanced held-out set: profession accuracy, gender accuracy (its prediction
   read as a gender, professor = male) and worst-group accuracy.
2. Attribution. Gradient x activation of the metric m = (2y - 1) x probe logit (the logit of
   each example's own training label, so that a cue helps the same way in both classes) to every
   SAE latent and to the SAE error term (its own node), summed over positions, averaged over the
   ambiguous set. When the SAE sits at the probe's hook the gradient is exact in closed form
   (d m / d f_t,i = (2y - 1) W_dec[i] . w / T); at an earlier hook it is taken by autograd through
   the model. The same attribution of the raw activation's dimensions ranks the neurons.
3. Selection. By inspection (a list of latents) or automatically: among the `top_n` latents by
   |attribution|, those whose pooled activation separates the genders on the gender-only set
   (personal sentences, no profession) with ROC AUC >= `min_gender_auc` (or <= 1 - it).
4. Ablation. Zero or mean (the latent's mean over the ambiguous set's tokens), spliced with the
   error term kept (x + (f' - f) W_dec, as interventions/splice.py), at every non-BOS position;
   and SHIFT + retrain: the probe retrained on the ambiguous set with the latents ablated.
5. Baselines. The original probe; as many random alive latents ablated (mean over draws); the
   neuron skyline (the same number of activation dimensions with the largest |attribution|
   ablated, then the probe retrained); the oracle probe trained on a balanced set.

When the SAE sits at the probe's hook, every ablation acts on the pooled activations exactly:
pool(x') = pool(x) + (pool(f') - pool(f)) W_dec (pooling is linear), so all rows cost one forward
pass per data set. At an earlier hook the model is re-run with the splice hook for each edit.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from extract.store import default_store_dir, model_dir_name
from interventions.bios import Bios, corpus_bios, load_splits, write_jsonl
from interventions.probe import Probe, TokenActs, accuracies, pool, site_activations, train_probe
from interventions.sae import SAEError, TorchSAE, load_sae
from interventions.splice import FeatureEdit, splice_hook

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = "smollm2-135m-q4"
DEFAULT_LAYER = 4
"""Chosen by measurement on SmolLM2-135M (see README): the ambiguous probe leans on gender most at
early layers (resid_pre 2-4: gender accuracy ~0.8 on the balanced set) and least in the middle
(layers 6-12: ~0.6), and layer 4 is cheap to run."""


class ShiftError(ValueError):
    """A SHIFT request that cannot be served; the message says what to do."""


@dataclass
class ShiftConfig:
    model: str = DEFAULT_MODEL
    """Registry name, hub id or local directory (extract/models.py)."""
    layer: int = DEFAULT_LAYER
    """Layer of the probe (and of the SAE trained when `sae` is not given)."""
    site: str = "resid_pre"
    """Site within the layer for the probe: resid_pre, resid_mid, resid_post, attn_out, mlp_out."""
    sae: str | None = None
    """SAE export directory (SAELens layout). Its hook may be the probe's or an earlier one.
    None: dump activations and train one at the probe's hook (reused if already there)."""
    features: tuple[int, ...] = ()
    """Latents to ablate, chosen by inspection; empty: the automatic criterion."""
    out: str | None = None
    """Output directory; default runs/shift/<model>."""
    device: str = "auto"
    seed: int = 0
    """Seeds the data set, the probe and the random baselines."""
    data: str = "synthetic"
    """'synthetic' (offline) or 'bias_in_bios' (HF LabHC/bias_in_bios, needs a network)."""
    n_ambiguous: int = 384
    n_balanced: int = 384
    n_gender_only: int = 128
    top_n: int = 32
    """Candidates for the automatic selection: this many latents by |attribution|."""
    min_gender_auc: float = 0.8
    """Automatic selection: a candidate is spurious when its pooled activation predicts gender on the
    gender-only set with ROC AUC >= this (or <= 1 - this)."""
    max_features: int = 0
    """Cap on the automatically selected latents (0: none)."""
    n_random: int = 10
    """Random-latent ablations of the same size (their metrics are averaged)."""
    probe_steps: int = 300
    batch: int = 32
    n_examples: int = 5
    """Top-activating examples kept per ranked latent."""
    n_ranked: int = 40
    """Latents written to latents.json (by |attribution|)."""
    sae_n_tokens: int = 200_000
    """Without `sae`: activation rows dumped for training it."""
    sae_corpus: str = "bbc+bios"
    """Without `sae`: corpus for the dump: 'bios' (synthetic training-split biographies), or any
    extract/corpus.py spec, where the word 'bios' stands for those biographies (bbc+bios: a mix)."""
    sae_n_bios: int = 20_000
    sae_steps: int = 2000
    sae_d_sae: int = 4096
    sae_k: int = 32
    sae_batch: int = 4096
    runs_dir: str = "runs"
    progress: bool = True

    def __post_init__(self):
        self.features = tuple(int(f) for f in self.features)
        if self.layer < 0:
            raise ShiftError(f"--layer must be >= 0, got {self.layer}")
        if not 0.5 < self.min_gender_auc <= 1.0:
            raise ShiftError(f"min_gender_auc must be in (0.5, 1], got {self.min_gender_auc}")
        if self.top_n < 1 or self.n_random < 0:
            raise ShiftError("top_n must be positive and n_random non-negative")

    @property
    def hook(self) -> str:
        site = self.site if self.site.startswith(("hook_", "attn.", "mlp.")) else f"hook_{self.site}"
        return f"blocks.{self.layer}.{site}"


def default_out(cfg: ShiftConfig) -> Path:
    return Path(cfg.out) if cfg.out else Path(cfg.runs_dir) / "shift" / model_dir_name(cfg.model)


# ---------------------------------------------------------------------------- the SAE


def ensure_sae(cfg: ShiftConfig, model) -> Path:
    """cfg.sae, or an SAE at the probe's hook trained through the existing stages: activations
    dumped by extract/dump.py (a library call), the SAE trained by scripts/train_sae.py in a
    subprocess (jax never loads here). Both are reused when already complete."""
    if cfg.sae:
        return Path(cfg.sae)
    from extract.dump import DumpConfig, dump_activations

    name = model_dir_name(model.name)
    tag = f"{cfg.hook}-{cfg.sae_corpus.replace('+', '_').replace(':', '_').replace('/', '_')}"
    store = default_store_dir(model.name, tag, cfg.runs_dir)
    sae_dir = Path(cfg.runs_dir) / "sae" / name / f"{tag}-topk{cfg.sae_k}-{cfg.sae_d_sae}"
    if (sae_dir / "sae" / "cfg.json").exists():
        return sae_dir / "sae"
    corpus = []
    for part in cfg.sae_corpus.split("+"):
        if part == "bios":
            path = Path(cfg.runs_dir) / "shift" / "corpus" / f"bios-{cfg.sae_n_bios}-seed{cfg.seed}.jsonl"
            if not path.exists():
                write_jsonl(corpus_bios(cfg.sae_n_bios, cfg.seed), path)
            part = f"dir:{path}"
        corpus.append(part)
    dump_activations(DumpConfig(model=cfg.model, hooks=(cfg.hook,), n_tokens=cfg.sae_n_tokens, out=str(store),
                                corpus="+".join(corpus), device=cfg.device, seed=cfg.seed, progress=cfg.progress),
                     model=model)
    train_sae_subprocess(store, sae_dir, steps=cfg.sae_steps, d_sae=cfg.sae_d_sae, k=cfg.sae_k,
                         batch=cfg.sae_batch, seed=cfg.seed, progress=cfg.progress)
    return sae_dir / "sae"


def train_sae_subprocess(store: Path, out: Path, steps: int, d_sae: int, k: int, batch: int, seed: int = 0,
                         eval_tokens: int = 20_000, progress: bool = False) -> Path:
    """scripts/train_sae.py --arch topk in a child process; returns out/sae."""
    cmd = [sys.executable, str(REPO / "scripts" / "train_sae.py"), "--acts", str(store), "--out", str(out),
           "--arch", "topk", "--k", str(k), "--d_sae", str(d_sae), "--steps", str(steps), "--batch", str(batch),
           "--seed", str(seed), "--eval_tokens", str(eval_tokens)] + ([] if progress else ["--no_progress"])
    proc = subprocess.run(cmd, capture_output=not progress, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or "").strip().splitlines()[-5:] if not progress else []
        raise ShiftError(f"training the SAE failed (exit {proc.returncode}): {' | '.join(tail)}")
    return out / "sae"


# ---------------------------------------------------------------------------- latents


@dataclass
class LatentStats:
    """Per-example statistics of the SAE latents over one data set's non-BOS tokens."""
    pooled: torch.Tensor
    """Mean latent activation per example [n, d_sae]."""
    pooled_recon: torch.Tensor
    """Mean reconstruction per example [n, d_in]."""
    top: torch.Tensor
    """Largest activation per example [n, d_sae]."""
    top_pos: torch.Tensor
    """Position of that activation [n, d_sae]."""
    token_sum: torch.Tensor
    """Sum over all tokens [d_sae]."""
    n_tokens: int

    @property
    def token_mean(self) -> torch.Tensor:
        return self.token_sum / max(self.n_tokens, 1)


@torch.no_grad()
def latent_stats(sae: TorchSAE, acts: TokenActs, chunk: int = 16) -> LatentStats:
    n = len(acts)
    pooled, recon = torch.zeros(n, sae.d_sae), torch.zeros(n, sae.d_in)
    top, top_pos = torch.zeros(n, sae.d_sae), torch.zeros(n, sae.d_sae, dtype=torch.long)
    total = torch.zeros(sae.d_sae)
    for s in range(0, n, chunk):
        x, m = acts.acts[s:s + chunk], acts.mask[s:s + chunk]
        f = sae.encode(x) * m.unsqueeze(-1)
        pooled[s:s + chunk] = pool(f, m)
        recon[s:s + chunk] = pool(sae.decode(f), m)
        mx = f.max(1)
        top[s:s + chunk], top_pos[s:s + chunk] = mx.values, mx.indices
        total += f.sum((0, 1))
    return LatentStats(pooled, recon, top, top_pos, total, int(acts.mask.sum()))


def roc_auc(scores: torch.Tensor, labels) -> torch.Tensor:
    """ROC AUC of each column of scores [n, k] for binary labels [n] (ties count half)."""
    y = torch.as_tensor(labels).bool()
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("roc_auc needs both classes")
    ranks = _average_ranks(scores)
    return (ranks[y].sum(0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _average_ranks(x: torch.Tensor) -> torch.Tensor:
    """1-based ranks along dim 0 with ties averaged (column-wise)."""
    x = x.double()
    order = x.argsort(0)
    sorted_x = x.gather(0, order)
    n = x.shape[0]
    ranks_sorted = torch.arange(1, n + 1, dtype=torch.float64).unsqueeze(1).expand_as(x).clone()
    # average over runs of equal values
    new_run = torch.ones_like(sorted_x, dtype=torch.bool)
    new_run[1:] = sorted_x[1:] != sorted_x[:-1]
    run_id = new_run.long().cumsum(0) - 1
    for j in range(x.shape[1]):
        rid = run_id[:, j]
        sums = torch.zeros(int(rid.max()) + 1, dtype=torch.float64).index_add_(0, rid, ranks_sorted[:, j])
        counts = torch.zeros_like(sums).index_add_(0, rid, torch.ones_like(ranks_sorted[:, j]))
        ranks_sorted[:, j] = (sums / counts)[rid]
    ranks = torch.empty_like(ranks_sorted)
    ranks.scatter_(0, order, ranks_sorted)
    return ranks


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
    from interventions.probe import tokenize

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


# ---------------------------------------------------------------------------- ablations


@dataclass
class Edit:
    """An ablation: latents of the SAE and/or dimensions of the raw activation, zero or mean."""
    latents: list[int] = field(default_factory=list)
    neurons: list[int] = field(default_factory=list)
    mode: str = "zero"


class Featurizer:
    """Pooled probe-site activations of each data set, under an Edit."""

    def __init__(self, model, sae: TorchSAE, probe_hook: str, sets: dict[str, Bios], batch: int = 32):
        self.model, self.sae, self.probe_hook, self.sets, self.batch = model, sae, probe_hook, sets, batch
        self.same_site = sae.hook_name == probe_hook
        self.probe_acts = {k: site_activations(model, b.texts, probe_hook, batch) for k, b in sets.items()}
        self.sae_acts = self.probe_acts if self.same_site else \
            {k: site_activations(model, b.texts, sae.hook_name, batch) for k, b in sets.items()}
        self.stats = {k: latent_stats(sae, a) for k, a in self.sae_acts.items()}
        ref = "ambiguous"
        self.latent_means = self.stats[ref].token_mean
        self.neuron_means = self.sae_acts[ref].rows().mean(0)
        self._cache: dict = {}

    def pooled(self, split: str, edit: Edit | None = None) -> torch.Tensor:
        if edit is None or (not edit.latents and not edit.neurons):
            return self.probe_acts[split].pooled()
        key = (split, tuple(edit.latents), tuple(edit.neurons), edit.mode)
        if key not in self._cache:
            self._cache[key] = self._pooled_same(split, edit) if self.same_site else self._pooled_rerun(split, edit)
        return self._cache[key]

    def _pooled_same(self, split: str, edit: Edit) -> torch.Tensor:
        """Exact, from pooled quantities: pool(x + (f' - f) W_dec) = pool(x) + (pool(f') - pool(f)) W_dec."""
        x = self.probe_acts[split].pooled().clone()
        if edit.latents:
            S = torch.tensor(edit.latents)
            new = self.latent_means[S] if edit.mode == "mean" else torch.zeros(len(S))
            x += (new - self.stats[split].pooled[:, S]) @ self.sae.W_dec[S]
        if edit.neurons:
            D = torch.tensor(edit.neurons)
            x[:, D] = self.neuron_means[D] if edit.mode == "mean" else 0.0
        return x

    @torch.no_grad()
    def _pooled_rerun(self, split: str, edit: Edit) -> torch.Tensor:
        """SAE upstream of the probe: re-run the model with the edit spliced at the SAE's hook."""
        acts, first = self.probe_acts[split], 1 if self.model.bos_token_id is not None else 0
        # hooks run in order: the splice at the SAE's hook comes before the read at the probe's
        read, stop = self.probe_hook, self.model.min_stop_layer([self.probe_hook])
        fe = FeatureEdit(zero=list(edit.latents) if edit.mode == "zero" else [],
                         mean={int(i): float(self.latent_means[i]) for i in edit.latents} if edit.mode == "mean"
                         else {}, positions=slice(first, None))
        hooks = [splice_hook(self.sae, fe, keep_error=True)] if edit.latents else []
        if edit.neurons:
            D = torch.tensor(edit.neurons)
            vals = self.neuron_means[D] if edit.mode == "mean" else torch.zeros(len(D))

            def set_dims(x, hook):
                x = x.clone()
                x[:, first:, D] = vals.to(x.dtype).to(x.device)
                return x
            hooks.append((self.sae.hook_name, set_dims))
        out = torch.zeros(len(acts), acts.acts.shape[-1])
        lengths = acts.mask.sum(1) + first
        order = lengths.argsort().tolist()
        for s in range(0, len(order), self.batch):
            idx = order[s:s + self.batch]
            t = int(lengths[idx].max())
            _, cache = self.model.run_with_cache(acts.tokens[idx, :t].to(self.model.device), names=[read],
                                                 stop_at_layer=stop, hooks=hooks)
            out[idx] = pool(cache[read].float().cpu(), acts.mask[idx, :t])
        return out


# ---------------------------------------------------------------------------- the experiment


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
        sae = load_sae(ensure_sae(cfg, model), device="cpu")
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


# ---------------------------------------------------------------------------- output


def markdown_table(result: ShiftResult) -> str:
    lines = [f"SHIFT on {result.config['model']}, probe at `{result.hook}`, SAE `{result.sae_hook}` "
             f"({result.sae_path}); ablated latents ({result.selection.method}): {result.selection.features}", "",
             "| row | ablated | profession acc | gender acc | worst-group acc |", "|---|---:|---:|---:|---:|"]
    for r in result.rows:
        pm = (lambda k: f" ± {r[k + '_std']:.3f}" if k + "_std" in r else "")
        lines.append(f"| {r['row']} | {r['n_ablated']} | {r['profession_acc']:.3f}{pm('profession_acc')} | "
                     f"{r['gender_acc']:.3f}{pm('gender_acc')} | {r['worst_group_acc']:.3f}{pm('worst_group_acc')} |")
    lines += ["", "Balanced held-out set (held-out templates and names); gender acc = the profession prediction "
              "read as a gender (professor = male), 0.5 = no reliance on gender; worst group = lowest profession "
              "accuracy over the four (profession, gender) groups."]
    return "\n".join(lines) + "\n"


def bar_plot(result: ShiftResult, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [("profession_acc", "profession"), ("gender_acc", "gender"), ("worst_group_acc", "worst group")]
    names = [r["row"] for r in result.rows]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(8, 1.1 * len(names)), 4.5))
    for j, (k, label) in enumerate(keys):
        vals = [r[k] for r in result.rows]
        errs = [r.get(k + "_std", 0.0) for r in result.rows]
        ax.bar(x + (j - 1) * 0.27, vals, 0.27, yerr=errs, label=label, capsize=2)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("accuracy on the balanced set")
    ax.set_title(f"SHIFT: {result.config['model']} {result.hook}, {len(result.selection.features)} latents ablated")
    ax.legend(fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.45))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(result: ShiftResult, out: str | Path) -> dict[str, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"table": out / "table.md", "json": out / "results.json", "plot": out / "shift.png",
             "latents": out / "latents.json"}
    paths["table"].write_text(markdown_table(result))
    paths["json"].write_text(json.dumps(result.to_json(), indent=1, default=_jsonable))
    paths["latents"].write_text(json.dumps(result.ranked, indent=1))
    bar_plot(result, paths["plot"])
    return paths


def _jsonable(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o) if math.isfinite(o) else None
    if isinstance(o, torch.Tensor):
        return o.tolist()
    raise TypeError(type(o))


__all__ = ["ShiftConfig", "ShiftResult", "ShiftError", "run_shift", "write_outputs", "markdown_table", "default_out", "ensure_sae", "roc_auc",
           "attribution_same_site", "attribution_autograd", "Featurizer", "Edit", "select_spurious", "SAEError"]
