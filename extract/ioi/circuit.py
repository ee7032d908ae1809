"""The IOI circuit lab in one call: prompts -> metrics -> activation patching -> DLA -> path
patching -> circuit report with faithfulness -> results.json + heatmaps.

    from extract.models import load_model
    from extract.ioi.circuit import IOIConfig, run_ioi
    results = run_ioi(load_model("smollm2-135m-q4"), IOIConfig(n_prompts=8), out="runs/ioi/smollm2-135m-q4")
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from extract import patching as P
from extract.ioi import plots
from extract.ioi.dla import direct_logit_attribution
from extract.ioi.metrics import ld_metric, logit_diff, normalised, target_logprobs
from extract.ioi.path_patching import path_patch
from extract.ioi.prompts import ROLES, IOIDataset, make_ioi
from mechinterp.formats.bounds import bounds, check_bounds
from mechinterp.formats.defaults import DEFAULT_MODEL, given_out
from mechinterp.formats.results import RESULTS


def head_label(layer: int, head: int) -> str:
    return f"L{layer}H{head}"


def _top(values: torch.Tensor, k: int, largest: bool = True, by_abs: bool = False) -> list[tuple[int, int, float]]:
    """Top k (layer, head, value) of a [L, H] grid."""
    flat = values.flatten()
    key = flat.abs() if by_abs else (flat if largest else -flat)
    idx = torch.topk(key, min(k, flat.numel())).indices
    H = values.shape[1]
    return [(int(i) // H, int(i) % H, float(flat[i])) for i in idx]


@torch.no_grad()
def mean_ablation(model, ds: IOIDataset, head_sets: Sequence[Sequence[tuple[int, int]]], ref_tokens: torch.Tensor,
                  max_rows: int = 512) -> torch.Tensor:
    """Mean logit diff with every head *outside* each set replaced by its mean z over the
    reference prompts (per position); MLPs and embeddings run as usual. [len(head_sets)]."""
    names = [f"blocks.{layer}.attn.hook_z" for layer in range(model.n_layers)]
    _, ref = model.run_with_cache(ref_tokens.to(model.device), names=names, cache_device="cpu")
    n = ds.tokens.shape[0]
    means = {k: v.mean(0, keepdim=True).expand(n, *v.shape[1:]) for k, v in ref.items()}
    copies = []
    for keep in head_sets:
        keep = set(map(tuple, keep))
        copies.append([P.Edit(name, (slice(None), h), source=means[name][:, :, h])
                       for layer, name in enumerate(names) for h in range(model.n_heads) if (layer, h) not in keep])
    out = P.run_copies(model, ds.tokens, copies, None, ld_metric(ds.io_tok, ds.s_tok), max_rows=max_rows)
    return out["values"]


def attention_to_roles(model, ds: IOIDataset, heads: Sequence[tuple[int, int]]) -> dict[str, dict[str, float]]:
    """Mean attention of each head from the end position to IO, S1 and S2."""
    layers = sorted({layer for layer, _ in heads})
    _, cache = model.run_with_cache(ds.tokens.to(model.device), names=[f"blocks.{l}.attn.hook_pattern" for l in layers],
                                    cache_device="cpu")
    rows = torch.arange(len(ds))
    out = {}
    for layer, h in heads:
        pat = cache[f"blocks.{layer}.attn.hook_pattern"][:, h]  # [n, q, k]
        end = pat[rows, ds.pos["end"]]
        out[head_label(layer, h)] = {r: round(float(end[rows, ds.pos[r]].mean()), 4) for r in ("IO", "S1", "S2")}
    return out


@dataclass(frozen=True)
class IOIConfig:
    model: str = DEFAULT_MODEL
    """Registry name, Hugging Face repo id or local model directory (extract/models.py)."""
    device: str = "auto"
    """auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps."""
    out: str | None = None
    """Output directory (None: runs/ioi/<model>)."""
    seed: int = field(default=0, metadata=bounds(0))
    """Seeds the prompt sets."""
    n_prompts: int = field(default=8, metadata=bounds(1))
    """Prompts per set (ABBA and BABA alternate)."""
    corruption: str = field(default="s2_swap", metadata={"choices": ("s2_swap", "abc")})
    """Corrupted distribution the patching sweeps start from."""
    max_rows: int = field(default=1024, metadata=bounds(1))
    """Largest batch (prompts x patched copies) per forward."""
    n_top: int = field(default=10, metadata=bounds(1))
    """Heads listed per ranking."""
    quick: bool = False
    """Only the sweeps the circuit report needs (about 3x faster)."""

    def __post_init__(self):
        check_bounds(self)
        if self.n_prompts < 1:
            raise ValueError(f"--n_prompts must be >= 1, got {self.n_prompts}")
        if self.max_rows < 2 * self.n_prompts:
            raise ValueError(f"--max_rows must be at least 2 x --n_prompts ({2 * self.n_prompts})")

    def out_dir(self) -> Path:
        return given_out(self.out, "IOIConfig")


def run_ioi(model, cfg: IOIConfig, out: str | Path | None = None, log: Callable[[str], None] = print) -> dict:
    """Everything in the IOI issue on one model; writes results.json, PNG and HTML heatmaps to `out`.

    quick=True keeps what the circuit report needs (residual and head-output patching, DLA, path
    patching into the name movers' queries, faithfulness) and skips the q/k/v/pattern, by-role,
    noising and head->logits sweeps: about a third of the time, for the end-to-end demo."""
    n_prompts, seed, corruption, max_rows, n_top, quick = (cfg.n_prompts, cfg.seed, cfg.corruption, cfg.max_rows,
                                                            cfg.n_top, cfg.quick)
    t_start = time.time()
    timings: dict[str, float] = {}

    def step(name):
        timings[name] = round(time.time() - step.t, 2)
        step.t = time.time()
        log(f"  {name}: {timings[name]} s")
    step.t = time.time()

    L, H = model.n_layers, model.n_heads
    ds = make_ioi(model, n_prompts, seed=seed)
    corr = ds.corrupted(corruption)
    metric = ld_metric(ds.io_tok, ds.s_tok)
    dev = model.device
    logits = {name: P.forward_end(model, s.tokens.to(dev)) for name, s in
              (("clean", ds), ("s2_swap", ds.s2_swap), ("abc", ds.abc))}
    ld = {k: logit_diff(v, ds.io_tok, ds.s_tok).cpu() for k, v in logits.items()}
    lp = {k: {r: t.cpu() for r, t in target_logprobs(v, ds.io_tok, ds.s_tok).items()} for k, v in logits.items()}
    clean_ld, corr_ld = float(ld["clean"].mean()), float(ld[corruption].mean())
    norm = lambda x: normalised(x, clean_ld, corr_ld)
    step("prompts and metrics")

    clean_cache = P.cache_sites(model, ds.tokens)
    corr_cache = P.cache_sites(model, corr.tokens)
    kw = dict(max_rows=max_rows)
    den = {}  # clean -> corrupted (denoising): base = corrupted, sources = clean
    for site in ("hook_resid_pre",) if quick else ("hook_resid_pre", "hook_attn_out", "hook_mlp_out"):
        den[site] = norm(P.residual_sweep(model, corr.tokens, clean_cache, metric, site, **kw))
        step(f"patch {site} [layer x pos]")
    for site in ("attn.hook_z",) if quick else ("attn.hook_z", "attn.hook_q", "attn.hook_k", "attn.hook_v",
                                                "attn.hook_pattern"):
        den[site] = norm(P.head_sweep(model, corr.tokens, clean_cache, metric, site, **kw))
        step(f"patch {site} [layer x head]")
    noise = {}  # corrupted -> clean (noising): base = clean, sources = corrupted
    if not quick:
        roles = {r: ds.pos[r] for r in ROLES}
        den["z_by_role"] = norm(P.head_by_position_sweep(model, corr.tokens, clean_cache, metric, roles, **kw))
        step("patch attn.hook_z [layer x head x role position]")
        noise["hook_resid_pre"] = norm(P.residual_sweep(model, ds.tokens, corr_cache, metric, "hook_resid_pre", **kw))
        noise["attn.hook_z"] = norm(P.head_sweep(model, ds.tokens, corr_cache, metric, "attn.hook_z", **kw))
        step("noising: resid_pre and heads")

    dla = direct_logit_attribution(model, ds.tokens, ds.io_tok, ds.s_tok)
    dla_heads = dla["heads"].mean(0).float()
    step("direct logit attribution")

    # name movers: strongest positive direct effect; negative name movers: most negative
    name_movers = [(l, h) for l, h, _ in _top(dla_heads, 3)]
    neg_movers = [(l, h) for l, h, v in _top(dla_heads, 2, largest=False) if v < 0]
    first_nm = min(l for l, _ in name_movers)
    senders = [(l, h) for l in range(first_nm) for h in range(H)]
    clean_z = {k: v for k, v in clean_cache.items() if k.endswith("hook_z")}
    abc_z = {k: v for k, v in P.cache_sites(model, ds.abc.tokens, ["attn.hook_z"]).items()}
    pp_q = path_patch(model, ds.tokens, ds.abc.tokens, senders, name_movers, metric, inputs="q",
                      clean_z=clean_z, corrupt_z=abc_z, max_rows=max_rows)
    pp_grid = torch.zeros(first_nm, H)
    for (l, h), v in zip(senders, pp_q["values"]):
        pp_grid[l, h] = (v - pp_q["base"]) / abs(pp_q["base"])
    step("path patching: all earlier heads -> name movers' queries (ABC)")
    pp_logit_grid = None
    if not quick:
        all_heads = [(l, h) for l in range(L) for h in range(H)]
        pp_logits = path_patch(model, ds.tokens, ds.abc.tokens, all_heads, "logits", metric,
                               clean_z=clean_z, corrupt_z=abc_z, max_rows=max_rows)
        pp_logit_grid = ((pp_logits["values"] - pp_logits["base"]) / abs(pp_logits["base"])).view(L, H)
        step("path patching: every head -> logits (ABC)")
    s_inhibition = [(l, h) for l, h, v in _top(pp_grid, 3, largest=False) if v < 0]

    # circuit: heads ranked by their denoising effect (z, all positions; positive = helps IO);
    # faithfulness: heads outside a set mean-ablated with means over a larger ABC reference set
    ranked = _top(den["attn.hook_z"], L * H)
    sizes = [k for k in (5, 10, 20, 40, 80) if k < L * H]
    sets = [[(l, h) for l, h, _ in ranked[:k]] for k in sizes]
    named = sorted(set(name_movers + s_inhibition + [(l, h) for l, h, v in ranked[:5]]))
    sets += [named, [], [(l, h) for l in range(L) for h in range(H)]]
    ref = make_ioi(model, max(32, n_prompts), seed=seed + 1).abc.tokens
    ablated = mean_ablation(model, ds, sets, ref)
    faith = {f"top{k}_by_head_patching": round(float(v) / clean_ld, 4) for k, v in zip(sizes, ablated)}
    faith["named_heads"] = round(float(ablated[-3]) / clean_ld, 4)
    faith["no_heads"] = round(float(ablated[-2]) / clean_ld, 4)
    faith["all_heads"] = round(float(ablated[-1]) / clean_ld, 4)
    chosen_k = next((k for k, v in zip(sizes, ablated) if float(v) / clean_ld >= 0.8),
                    max(zip(ablated.tolist(), sizes))[1])
    step("faithfulness (mean ablation outside head sets)")
    roles_attn = attention_to_roles(model, ds, sorted(set(name_movers + neg_movers + s_inhibition)))

    def heads_json(items, extra=None):
        return [{"head": head_label(l, h), "layer": l, "head_index": h, "value": round(v, 4),
                 **({k: round(float(g[l, h]), 4) for k, g in extra.items()} if extra else {})} for l, h, v in items]

    grids = {"dla": dla_heads, "patch_z": den["attn.hook_z"]}
    if pp_logit_grid is not None:
        grids["path_to_logits"] = pp_logit_grid
    results = {
        "model": model.name, "weights": model.weights, "n_prompts": n_prompts, "seed": seed, "corruption": corruption,
        "templates": sorted(set(ds.templates)), "prompts": ds.texts, "corrupted_prompts": corr.texts,
        "abc_prompts": ds.abc.texts,
        "logit_diff": {k: {"mean": round(float(v.mean()), 4), "per_prompt": [round(float(x), 4) for x in v]}
                       for k, v in ld.items()},
        "logprobs": {k: {r: round(float(t.mean()), 4) for r, t in v.items()} for k, v in lp.items()},
        "direct_logit_attribution": {
            "total": round(float(dla["total"].mean()), 4), "rest": float(dla["rest"].abs().max()),
            "embed": round(float(dla["embed"].mean()), 4),
            "mlp": [round(float(x), 4) for x in dla["mlp"].mean(0)],
            "attn": [round(float(x), 4) for x in dla["attn"].mean(0)],
            "top_positive": heads_json(_top(dla_heads, n_top), grids),
            "top_negative": heads_json(_top(dla_heads, n_top, largest=False), grids),
        },
        "activation_patching": {
            "top_heads_denoising_z": heads_json(_top(den["attn.hook_z"], n_top, by_abs=True), grids),
            "top_heads_noising_z": heads_json(_top(noise["attn.hook_z"] - 1, n_top, largest=False), {})
            if noise else None,
            "resid_pre_end_by_layer": [round(float(x), 4) for x in den["hook_resid_pre"][:, -1]],
            "resid_pre_s2_by_layer": [round(float(x), 4) for x in den["hook_resid_pre"][:, int(ds.pos["S2"][0])]],
        },
        "path_patching": {
            "name_movers": [head_label(*x) for x in name_movers],
            "negative_name_movers": [head_label(*x) for x in neg_movers],
            "senders_to_name_mover_queries": heads_json(_top(pp_grid, n_top, largest=False)),
            "s_inhibition_candidates": [head_label(*x) for x in s_inhibition],
            "heads_to_logits": heads_json(_top(pp_logit_grid, n_top, largest=False))
            if pp_logit_grid is not None else None,
            "note": "values: relative change of the clean logit diff, (patched - clean) / |clean|; "
                    "senders take their z from the ABC prompts",
        },
        "attention_from_end": roles_attn,
        "circuit": {"faithfulness": faith, "chosen": f"top{chosen_k}_by_head_patching",
                    "chosen_heads": [head_label(l, h) for l, h, _ in ranked[:chosen_k]],
                    "named_heads": [head_label(*x) for x in named],
                    "named_heads_are": "name movers (top DLA) + S-inhibition candidates (path patching to the name "
                                       "movers' queries) + the top 5 heads by activation patching",
                    "note": "faithfulness = mean logit diff with every head outside the set mean-ablated "
                            "(ABC means per position) / the clean mean logit diff"},
        "timings_s": timings, "quick": quick,
    }
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        results["files"] = write_outputs(model, ds, den, noise, dla_heads, pp_grid, pp_logit_grid, out)
        step("plots")
    results["seconds"] = round(time.time() - t_start, 1)
    if out is not None:
        (out / RESULTS).write_text(json.dumps(results, indent=1))
    results["_arrays"] = {"denoise": den, "noise": noise, "dla": dla, "path_q": pp_grid, "path_logits": pp_logit_grid}
    return results


def write_outputs(model, ds, den, noise, dla_heads, pp_grid, pp_logit_grid, out: Path) -> list[str]:
    L, H = model.n_layers, model.n_heads
    toks = ds.labels(0, model)
    layers = [f"L{l}" for l in range(L)]
    heads = [f"H{h}" for h in range(H)]
    kv_heads = [f"KV{h}" for h in range(model.n_kv_heads)]
    norm_label = "normalised logit diff (1 = clean, 0 = corrupted)"
    figs = [
        ("patch_resid_pre", den["hook_resid_pre"], "Denoising: residual stream (resid_pre) by layer and position",
         toks, layers, "position (prompt 0)", "layer"),
        ("patch_attn_out", den.get("hook_attn_out"), "Denoising: attention output by layer and position", toks, layers,
         "position (prompt 0)", "layer"),
        ("patch_mlp_out", den.get("hook_mlp_out"), "Denoising: MLP output by layer and position", toks, layers,
         "position (prompt 0)", "layer"),
        ("patch_head_z", den["attn.hook_z"], "Denoising: each head's output (z, all positions)", heads, layers,
         "head", "layer"),
        ("patch_head_q", den.get("attn.hook_q"), "Denoising: each head's queries", heads, layers, "head", "layer"),
        ("patch_head_k", den.get("attn.hook_k"), "Denoising: each kv head's keys", kv_heads, layers, "kv head", "layer"),
        ("patch_head_v", den.get("attn.hook_v"), "Denoising: each kv head's values", kv_heads, layers, "kv head", "layer"),
        ("patch_head_pattern", den.get("attn.hook_pattern"), "Denoising: each head's attention pattern", heads, layers,
         "head", "layer"),
        ("noise_resid_pre", noise.get("hook_resid_pre"), "Noising: residual stream by layer and position", toks, layers,
         "position (prompt 0)", "layer"),
    ]
    if "z_by_role" in den:
        z_role = den["z_by_role"]  # [L, H, role]
        figs.append(("patch_head_z_by_role", z_role.reshape(L, H * len(ROLES)),
                     "Denoising: each head's z at one role position",
                     [f"H{h}@{r}" for h in range(H) for r in ROLES], layers, "head @ position", "layer"))
    files, sections = [], []
    for name, grid, title, xl, yl, xlab, ylab in figs:
        if grid is None:  # a sweep the quick mode skipped
            continue
        files.append(plots.heatmap_png(grid.numpy(), out / f"{name}.png", f"{model.name}: {title}", xl, yl, xlab, ylab,
                                       norm_label, center=0.0).name)
        sections.append((title, plots.heatmap_svg(grid.numpy(), title, xl, yl, xlab, ylab)))
    dla_title = "Direct logit attribution of each head to logit(IO) - logit(S)"
    files.append(plots.heatmap_png(dla_heads.numpy(), out / "dla_heads.png", f"{model.name}: {dla_title}", heads, layers,
                                   "head", "layer", "logit diff").name)
    sections.append((dla_title, plots.heatmap_svg(dla_heads.numpy(), dla_title, heads, layers, "head", "layer")))
    pp_title = "Path patching (ABC): sender head -> name movers' queries, relative change of logit diff"
    files.append(plots.heatmap_png(pp_grid.numpy(), out / "path_patch_to_name_movers.png", f"{model.name}: {pp_title}",
                                   heads, layers[:pp_grid.shape[0]], "sender head", "sender layer", "relative change").name)
    sections.append((pp_title, plots.heatmap_svg(pp_grid.numpy(), pp_title, heads, layers[:pp_grid.shape[0]],
                                                 "sender head", "sender layer")))
    if pp_logit_grid is not None:
        pl_title = "Path patching (ABC): head -> logits, relative change of logit diff"
        files.append(plots.heatmap_png(pp_logit_grid.numpy(), out / "path_patch_to_logits.png",
                                       f"{model.name}: {pl_title}", heads, layers, "head", "layer", "relative change").name)
        sections.append((pl_title, plots.heatmap_svg(pp_logit_grid.numpy(), pl_title, heads, layers, "head", "layer")))
    files.append(plots.html_page(f"IOI circuit lab: {model.name}", sections, out / "heatmaps.html").name)
    return files
