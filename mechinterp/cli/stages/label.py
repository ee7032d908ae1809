"""Labels for every latent of an SAE or transcoder export, and their scores on held-out text.

    mechinterp label --sae runs/sae/sae [--stats runs/browser/<name>] [--score] [--out DIR]
    mechinterp label --sae runs/sae/sae --explainer PATH_OR_URL --score   # a user's own LLM
    mechinterp label --set runs/transcoders/<name>                        # every layer of a set

Writes EXPORT/labels.json (offline labels from the statistics `mechinterp browse` computed). With
--score: the labels' detection and fuzzing scores on excerpts of held-out documents, next to the
shuffled-label and top-token baselines, into OUT/results.json and OUT/scores.png. With
--explainer: an LLM (a local causal-LM folder, or an OpenAI-compatible URL) labels a sample of
latents and simulates its own labels (EXPORT/labels.<name>.json; see docs/labels.md).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from mechinterp.cli.flags import add_flags, build
from mechinterp.cli.runs import claimed, input_name, stage_dir
from mechinterp.cli.stages import new_parser, user_errors
from mechinterp.formats.bounds import bounds, check_bounds
from mechinterp.formats.results import RESULTS
from mechinterp.formats.sae import read_cfg


@dataclass(frozen=True)
class LabelRunConfig:
    sae: str | None = None
    """SAE export directory (cfg.json + sae_weights.safetensors)."""
    set: str | None = None
    """Or a transcoder set (mechinterp train-transcoders): every layer is labelled, its statistics
    computed into SET/layer_L/stats over the set's own input dump."""
    device: str = "auto"
    """auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps."""
    seed: int = field(default=0, metadata=bounds(0))
    """Seeds the sampled excerpts."""
    stats: str | None = None
    """Statistics folder of `mechinterp browse` (None: runs/browser/<SAE name>)."""
    out: str | None = None
    """Scores folder (None: runs/labels/<SAE name>)."""
    score: bool = False
    """Score the labels on held-out text (loads the model)."""
    heldout_tokens: int = field(default=32_768, metadata=bounds(256))
    """Held-out tokens the scores are measured on."""
    explainer: str = "offline"
    """offline, or an LLM that labels a sample of latents too (implies --score): a local causal-LM
    folder or registry name, or an OpenAI-compatible endpoint URL (http...)."""
    llm_latents: int = field(default=48, metadata=bounds(1))
    """Latents an LLM explainer labels and scores (a seeded sample of the scored ones)."""
    timeout_s: float = field(default=60.0, metadata=bounds(0, open_low=True))
    """Per request to an explainer endpoint."""

    def __post_init__(self):
        check_bounds(self)
        if (self.sae is None) == (self.set is None):
            raise ValueError("pass one of --sae EXPORT or --set TRANSCODER_SET")
        if self.set is not None and (self.score or self.explainer != "offline"):
            raise ValueError("--score and --explainer take an SAE (--sae); a set's layers are labelled offline")


def parser(prog=None):
    from interventions.labels.offline import LabelConfig
    from interventions.labels.score import ScoreConfig
    p = new_parser(__doc__, prog)
    add_flags(p, LabelRunConfig)
    add_flags(p, LabelConfig)
    add_flags(p, ScoreConfig, skip=("seed",))
    return p


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from interventions.labels.make import label_export, load_stats_for_labels
        from interventions.labels.offline import LabelConfig
        from interventions.labels.score import ScoreConfig
        from interventions.sae import SAERun
        from mechinterp.formats.sae import read_sae_cfg

        lab_cfg = build(LabelConfig, a)
        cfg = build(LabelRunConfig, a)
        if cfg.set is not None:
            return label_set(cfg, lab_cfg)
        cfg = build(LabelRunConfig, a, stats=a.stats or str(stage_dir("browser", input_name(a.sae))),
                    out=a.out or str(stage_dir("labels", input_name(a.sae))))
        run = SAERun(sae=cfg.sae, device=cfg.device, seed=cfg.seed)
        score_cfg = build(ScoreConfig, a, skip=("seed",), seed=cfg.seed)
        read_sae_cfg(run.sae)
        load_stats_for_labels(cfg.stats, run.sae)          # one line before the model loads
        lm = None
        if cfg.explainer != "offline":                     # an explainer that cannot load: before anything is written
            from interventions.labels.llm import open_llm

            lm = open_llm(cfg.explainer, cfg.device, cfg.timeout_s)
        model, sae = run.load()
        path, labels, timing = label_export(run.sae, cfg.stats, model=model, cfg=lab_cfg)
        print(f"labels: {len(labels)} latents in {timing['labels_s']:.1f}s ({timing['kinds']}) -> {path}")
        if not cfg.score and cfg.explainer == "offline":
            return
        out = Path(cfg.out)
        with claimed(out, "label", sae=run.sae):
            from interventions.labels.evaluate import evaluate_labels

            results = evaluate_labels(model, sae, run.sae, labels, cfg, score_cfg, lab_cfg.excerpt, out, lm)
            (out / RESULTS).write_text(json.dumps(results, indent=2))
            _print(results)
            print(f"wrote {out / RESULTS} and {out / 'scores.png'}")


def label_set(cfg: LabelRunConfig, lab_cfg) -> None:
    """Statistics (JAX) and offline labels for every layer of a transcoder set."""
    from extract.models import load_model
    from interventions.labels.make import label_export, labelled
    from mechinterp.formats.transcoder_set import layer_export, set_layers
    from sae_jax.features import FeatureStatsConfig, compute_feature_stats

    layers = set_layers(cfg.set)
    if not layers["complete"]:
        raise ValueError(f"no trained layers under {cfg.set}; train them with `mechinterp train-transcoders`")
    first = layer_export(cfg.set, layers["complete"][0])
    model = load_model(read_cfg(first)["model_name"], device=cfg.device)
    t0 = time.perf_counter()
    for n, L in enumerate(layers["complete"]):
        export, stats_dir = layer_export(cfg.set, L), Path(cfg.set) / f"layer_{L}" / "stats"
        if labelled(export):
            continue                                       # labelled from these weights: resumes
        stats = compute_feature_stats(export, None, FeatureStatsConfig(top_n=5, per_band=1, contexts=False))
        stats.save(stats_dir)
        _, labels, timing = label_export(export, stats_dir, model=model, cfg=lab_cfg)
        eta = (time.perf_counter() - t0) / (n + 1) * (len(layers["complete"]) - n - 1)
        print(f"layer {L}: {stats.summary['n_tokens']} tokens, {timing['kinds']} (ETA {eta:.0f}s)", flush=True)
    print(f"labelled {len(layers['complete'])} layers of {cfg.set} in {time.perf_counter() - t0:.0f}s "
          f"(labels in each layer_L/sae/labels.json)")


def _print(r: dict) -> None:
    print(f"scored {r['offline']['n']} latents on {r['heldout']['excerpts']} held-out excerpts "
          f"of {r['heldout']['length']} tokens ({r['heldout']['wall_s']:.0f}s)")
    print(f"  {'labels':<48} {'detection':>9} {'fuzzing':>8} {'acc14':>6}")

    def cell(v, w):
        return f"{v:>{w}.3f}" if v is not None else f"{'-':>{w}}"
    for name, s in r["table"].items():
        print(f"  {name:<48} {cell(s['detection'], 9)} {cell(s['fuzzing'], 8)} {cell(s['acc14'], 6)}")

