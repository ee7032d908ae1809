"""The evaluation suite of one exported SAE: each metric its own module, each result added under
its name to the SAE's metrics.json (a metric already there is kept unless --rerun), then eval.html.

    core        reconstruction on the held-out windows (interventions.evals.core), with the JAX
                side's training-time numbers beside it where metrics.json has them
    ce_loss     CE-loss recovered, KL, delta loss (interventions.ce_loss)
    probing     sparse probing on labelled text (interventions.evals.probing)
    probing_saep  the same under sae-probes' protocol (last token, C by validation AUC, ROC AUC;
                interventions.evals.probing_saep); not in a suite, named with --metrics
    absorption  first-letter feature absorption (interventions.evals.absorption)

--suite core runs core and ce_loss; --suite full adds probing and absorption; --metrics picks any.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from interventions.ce_loss import EvalConfig, ce_loss_recovered, heldout_tokens, merge_metrics
from mechinterp.formats.bounds import bounds, check_bounds
from mechinterp.formats.fingerprint import fingerprint, stale
from mechinterp.formats.reading import read_json
from mechinterp.formats.sae import CFG, WEIGHTS, read_cfg, store_path
from mechinterp.formats.sae import METRICS as METRICS_FILE
from mechinterp.formats.store import META_FILE, TOKENS_FILE

SUITES = {"core": ("core", "ce_loss"), "full": ("core", "ce_loss", "probing", "absorption")}
METRICS = ("core", "ce_loss", "probing", "probing_saep", "absorption")


@dataclass(frozen=True)
class SuiteConfig(EvalConfig):
    suite: str = "core"
    """core (reconstruction + CE loss) or full (+ sparse probing + absorption)."""
    metrics: str = ""
    """Comma-separated metrics to run instead of the suite's: core, ce_loss, probing, probing_saep, absorption."""
    rerun: bool = False
    """Recompute metrics already in metrics.json (by default they are kept: the suite resumes)."""
    probe_sets: str = "bbc_topic,bios_profession,bios_gender,sentiment"
    """Labelled sets for sparse probing (interventions.evals.labelled: also spam, sotu_party)."""
    n_probe_train: int = field(default=1000, metadata=bounds(20))
    """Training texts per labelled set (class-balanced where the classes allow; SAEBench: 4000)."""
    n_probe_test: int = field(default=400, metadata=bounds(20))
    """Test texts per labelled set (a probe needs at least 20)."""
    probe_ctx: int = field(default=128, metadata=bounds(2))
    """Tokens of each labelled text that are read (SAEBench: 128)."""
    absorption_words: int = field(default=3000, metadata=bounds(260))
    """Single-token words for the first-letter task (80% train the probes, 20% test; the 26 letters need 260)."""

    def __post_init__(self):
        super().__post_init__()
        check_bounds(self)
        if self.suite not in SUITES:
            raise ValueError(f"--suite {self.suite!r}: use core or full")
        bad = [m for m in self.metric_list() if m not in METRICS]
        if bad:
            raise ValueError(f"--metrics: unknown metric {bad[0]!r}; use some of {', '.join(METRICS)}")

    def metric_list(self) -> list[str]:
        return [m.strip() for m in self.metrics.split(",") if m.strip()] or list(SUITES[self.suite])


def _log(msg: str) -> None:
    print(f"[eval] {msg}", flush=True)


def _inputs(name: str, cfg: SuiteConfig, model) -> dict[str, str]:
    """What metric `name` is computed from, fingerprinted: a result is kept only while these hold."""
    made = {"the model's weights": model.fingerprint, "the SAE": fingerprint(cfg.sae, only=(WEIGHTS, CFG))}
    if name in ("core", "ce_loss"):
        store = cfg.acts or store_path(read_cfg(cfg.sae))
        return made | {"the store": fingerprint(store, only=(META_FILE, TOKENS_FILE)) if store else "none",
                       "--n_windows": str(cfg.n_windows)}
    if name in ("probing", "probing_saep"):
        return made | {"the probe settings": repr((cfg.probe_sets, cfg.n_probe_train, cfg.n_probe_test,
                                                    cfg.probe_ctx, cfg.seed))}
    return made | {"the absorption settings": repr((cfg.absorption_words, cfg.seed))}


def run_suite(cfg: SuiteConfig, model=None, sae=None) -> dict:
    """Run the chosen metrics on cfg.sae; returns metrics.json as it ends up."""
    from interventions.evals.labelled import load_labelled

    if model is None:
        model, sae = cfg.load()
    hook = sae.check_fits(model)
    path = Path(cfg.sae) / METRICS_FILE
    done = read_json(path, "delete it and re-run the evaluation") if path.exists() else {}
    inputs = {name: _inputs(name, cfg, model) for name in cfg.metric_list()}
    todo = []
    for name, made in inputs.items():
        why = None if cfg.rerun or name not in done else stale(done[name].get("inputs"), made)
        if name in done and not cfg.rerun and why is None:
            _log(f"{name}: already in {path}, from the same inputs (--rerun recomputes)")
            continue
        todo.append(name)
        if why:
            _log(f"{name}: recomputing ({why})")
    sets = []
    if any(m in todo for m in ("probing", "probing_saep")):
        # labelled sets first: a bad one stops early
        sets = [load_labelled(s.strip(), cfg.n_probe_train, cfg.n_probe_test, cfg.seed)
                for s in cfg.probe_sets.split(",") if s.strip()]
        for s in sets:
            s.check(min_per_class=5)
    windows = first_pos = None
    for name in todo:
        t0 = time.perf_counter()
        _log(f"{name} ...")
        if name in ("core", "ce_loss") and windows is None:
            windows, first_pos = heldout_tokens(sae, cfg.n_windows, cfg.acts)
        if name == "core":
            from interventions.evals.core import reconstruction_metrics

            result = reconstruction_metrics(model, sae, windows, first_pos, cfg.batch, hook)
            result["jax_at_training"] = {k: done[k] for k in ("fvu", "explained_variance_typical", "shrinkage",
                                                               "l0", "rel_error_p90") if k in done}
        elif name == "ce_loss":
            result = ce_loss_recovered(model, sae, windows, first_pos, cfg.batch, hook, progress=True)
        elif name == "probing":
            from interventions.evals.probing import sparse_probing

            result = sparse_probing(model, sae, sets, hook, cfg.probe_ctx, seed=cfg.seed, progress=_log)
        elif name == "probing_saep":
            from interventions.evals.probing_saep import sparse_probing_saep

            result = sparse_probing_saep(model, sae, sets, hook, cfg.probe_ctx, seed=cfg.seed, progress=_log)
        else:
            from interventions.evals.absorption import absorption

            result = absorption(model, sae, hook, cfg.absorption_words, seed=cfg.seed, progress=_log)
        result["seconds"] = round(time.perf_counter() - t0, 1)
        result["inputs"] = inputs[name]
        merge_metrics(cfg.sae, name, result)
        done[name] = result
        _log(f"{name}: done in {result['seconds']} s")
    return done
