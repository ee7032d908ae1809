"""The audit's conclusion: every tool's ranked words, fused into hypotheses, beside the black-box
baseline given the same time. Reads only the two models, the crosscoder and the transcripts."""

from __future__ import annotations

import time

import numpy as np

from interventions.audit.config import EvidenceConfig
from interventions.audit.inside import activation_diff, crosscoder_evidence, next_token_diff, sae_diff
from interventions.audit.outside import over_used, sample_both
from interventions.audit.words import fuse
from mechinterp.formats.crosscoder import load_crosscoder
from mechinterp.formats.paired import open_pair


def conclude(base, organism, crosscoder_dir, answers: dict, cfg: EvidenceConfig, earlier_s: float = 0.0,
             say=print) -> tuple[dict, dict, np.ndarray]:
    """(hypotheses.json's dict, results.json's dict, the mean activation difference [d]). earlier_s:
    the white-box stages' time before this one (dumps, crosscoder), so the black-box baseline gets as
    long as the whole white-box audit."""
    t0 = time.perf_counter()
    w, info = load_crosscoder(crosscoder_dir)
    latents, xc_words = crosscoder_evidence(w, organism, cfg.n_latents, min_rel=cfg.min_rel_norm, max_nu=cfg.max_nu)
    say(f"crosscoder: {len(latents)} organism-specific latents")
    pair = open_pair(info["stores"]["a"], info["stores"]["b"], two_models=True, massive=info.get("massive"))
    diff_info, diff_words = activation_diff(pair, organism)
    sae_latents, sae_words = sae_diff(cfg.sae, pair, organism, cfg.n_latents) if cfg.sae else ([], [])
    lens, lens_words = next_token_diff(base, organism, answers["prompts"],
                                       {"organism": answers["organism"], "base": answers["base"]})
    say(f"next-token difference: {lens['tokens']} reply tokens")
    tools = {"crosscoder": xc_words, "activation_diff": diff_words, "next_token_diff": lens_words,
             **({"base_sae": sae_words} if cfg.sae else {})}
    white_s = earlier_s + time.perf_counter() - t0
    budget = white_s if cfg.black_box_s is None else cfg.black_box_s
    say(f"black-box baseline: sampling both models for {budget:.0f} s")
    samples = sample_both(base, organism, answers["prompts"], budget)
    sampled = over_used(samples["organism"], samples["base"])
    white_box = fuse(tools, cfg.n_hypotheses)
    hypotheses = {"hypotheses": fuse({**tools, "sampling": sampled}, cfg.n_hypotheses), "white_box": white_box,
                  "black_box": fuse({"sampling": sampled}, cfg.n_hypotheses),
                  "tools": {**tools, "sampling": sampled},
                  "seconds": {"white_box": round(white_s, 1), "black_box": samples["seconds"]}}
    results = {"crosscoder": {"info": {k: info[k] for k in ("models", "hook", "d_sae", "k", "metrics")}, "latents": latents},
               "base_sae": {"sae": cfg.sae, "latents": sae_latents},
               "activation_diff": {k: v for k, v in diff_info.items() if k != "mean"}, "next_token_diff": lens,
               "samples": {"n": len(samples["organism"]), "organism": samples["organism"][:24], "base": samples["base"][:24]},
               "answers": answers}
    return hypotheses, results, diff_info["mean"]
