"""The main job: every stage on the embedded default model, into one report.

    mechinterp demo [--model M] [--device D] [--out runs/demo] [--size tiny|demo|full] [--force STAGE ...]

smoke -> IOI patching -> activation dump -> SAE training (JAX) -> CE-loss recovered -> feature
browser (with a label for every latent) -> the labels scored on held-out text -> SHIFT -> steering ->
feature ablation -> edge-level IOI circuit (EAP-IG) -> paired MLP dump of every layer -> a
transcoder per layer (JAX) -> their labels -> the IOI prompt's attribution graph ->
runs/<name>/report.html (+ report.json).
Each stage runs as `python -m mechinterp <stage>` in a child process, talking to the others through
files; a stage whose outputs are complete is skipped, so re-running after an interrupt resumes (the
dump and the SAE training also resume inside the stage). --force STAGE redoes a stage. Sizes: demo
(the default; its time is in the README's demo table), full (a 16k-latent TopK SAE on 2M tokens
of BBC news and Shakespeare, full IOI sweeps; hours on a laptop CPU), tiny (for tests). Every stage's settings are checked
before the first stage starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mechinterp.cli.flags import build
from mechinterp.cli.pipeline import RecipeRun, Stage, run_stages
from mechinterp.cli.stages import config_parser, user_errors
from mechinterp.formats.defaults import DEFAULT_MODEL
from mechinterp.formats.labels import LABELS
from mechinterp.formats.results import RESULTS
from mechinterp.formats.sae import CFG, METRICS
from mechinterp.formats.store import META_FILE, is_complete
from mechinterp.formats.transcoder_set import SUMMARY, layer_export, set_layers
from mechinterp.views.html import load_json

# per size and stage: settings of the stage's configs, keyed by field (flag destination); checked
# by building every stage's configs before anything runs
SIZES: dict[str, dict[str, dict]] = {
    "tiny": dict(ioi=dict(n_prompts=2, quick=True), dump=dict(n_tokens=3000, ctx=64),
                 sae=dict(arch="topk", k=8, d_sae=256, steps=30, batch=256, eval_tokens=1000),
                 eval=dict(n_windows=4), browser=dict(top_n=5, per_band=2), labels=dict(heldout_tokens=2048),
                 shift=dict(n_ambiguous=64, n_balanced=64, n_random=2, sae_n_tokens=6000, sae_steps=30,
                            sae_d_sae=256, sae_batch=256),
                 steer=dict(max_new_tokens=4), ablate=dict(n_random=3, n_prompts=4)),
    "demo": dict(ioi=dict(n_prompts=8, quick=True), dump=dict(n_tokens=25_000),
                 sae=dict(arch="topk", k=32, d_sae=4096, steps=600, batch=1024),
                 eval=dict(n_windows=24), browser={}, labels={},
                 shift=dict(sae_n_tokens=60_000, sae_steps=400, sae_d_sae=2048, sae_batch=1024, n_random=5),
                 steer=dict(max_new_tokens=20), ablate=dict(n_random=10, n_prompts=16),
                 circuit=dict(methods="eap_ig,eap,nodes", n_prompts=16, n_heldout=16),
                 pairs=dict(n_tokens=30_000),
                 transcoders=dict(arch="batchtopk", k=32, d_sae=2048, steps=300, batch=1024),
                 trace=dict(n_checks=20)),
    "full": dict(ioi=dict(n_prompts=16), dump=dict(n_tokens=2_000_000, corpus="bbc+shakespeare"),
                 sae=dict(arch="topk", k=32, d_sae=16384, steps=4000, batch=1024),
                 eval=dict(n_windows=64), browser={}, labels={}, shift={},
                 steer=dict(max_new_tokens=30), ablate=dict(n_random=20, n_prompts=32),
                 circuit=dict(n_prompts=32, n_heldout=32),
                 pairs=dict(n_tokens=60_000),
                 transcoders=dict(arch="batchtopk", k=32, d_sae=4096, steps=400, batch=1024),
                 trace=dict(n_checks=40)),
}
# seconds per stage at the demo size, measured on a quiet 2-core CPU (README, "What make demo does"), for the ETA
EXPECTED_S = dict(smoke=5, ioi=60, dump=18, sae=42, eval=13, browser=25, labels=50, shift=50, steer=9, ablate=9,
                  circuit=200, pairs=100, transcoders=600, transcoder_labels=110, trace=90)


@dataclass(frozen=True)
class DemoConfig(RecipeRun):
    model: str = DEFAULT_MODEL
    """Registry name, Hugging Face repo id or local model directory."""
    out: str = "runs/demo"
    """Run directory (one folder per stage, report.html)."""
    size: str = field(default="demo", metadata={"choices": tuple(SIZES)})
    """tiny (tests), demo, or full (a 16k-latent SAE on 2M tokens)."""


def _complete_store(run: Path) -> bool:
    return is_complete(run / "acts")


def _complete_pairs(run: Path) -> bool:
    metas = list((run / "pairs").glob(f"*/{META_FILE}"))
    return bool(metas) and all(is_complete(m.parent) for m in metas)


IOI_PROMPT = "When Mary and John went to the store, John gave a drink to"
# a transcoder for each of the 30 layers: minutes even at a small size, and on 3,000 tokens layer 11's
# few massive outputs (norm ~24,000 against a median of 30) leave its held-out explained variance
# below zero, so tiny runs stop before them (the suite runs their code on a tiny model)
TRANSCODER_SIZES = ("demo", "full")
# edge-level circuit discovery needs a model that does IOI; the suite runs it on SmolLM2 (tests/model/test_circuit_stage.py)
CIRCUIT_SIZES = ("demo", "full")


def _labelled_set(run: Path) -> bool:
    done = set_layers(run / "transcoders")["complete"]
    return bool(done) and all((layer_export(run / "transcoders", L) / LABELS).exists() for L in done)


def _has_ce(run: Path) -> bool:
    metrics = load_json(run / "sae" / "sae" / METRICS)
    return isinstance(metrics, dict) and "ce_loss" in metrics


STAGES = [
    Stage("smoke", "smoke", lambda r: {}, lambda r: (r / "smoke.txt").exists(), lambda r: [r / "smoke.txt"], True),
    Stage("ioi", "ioi", lambda r: dict(out=str(r / "ioi")), lambda r: (r / "ioi" / RESULTS).exists(),
          lambda r: [r / "ioi"], True),
    Stage("dump", "dump", lambda r: dict(out=str(r / "acts"), progress=False), _complete_store,
          lambda r: [r / "acts"], True),
    Stage("sae", "train-sae", lambda r: dict(acts=str(r / "acts"), out=str(r / "sae"), progress=False),
          lambda r: (r / "sae" / "sae" / CFG).exists(), lambda r: [r / "sae"]),
    Stage("eval", "eval-sae", lambda r: dict(sae=str(r / "sae" / "sae")), _has_ce, lambda r: []),
    Stage("browser", "browse", lambda r: dict(sae=str(r / "sae" / "sae"), out=str(r / "browser")),
          lambda r: (r / "browser" / "index.html").exists(), lambda r: [r / "browser"]),
    Stage("labels", "label", lambda r: dict(sae=str(r / "sae" / "sae"), stats=str(r / "browser"), out=str(r / "labels"),
                                            score=True),
          lambda r: (r / "labels" / RESULTS).exists(), lambda r: [r / "labels"], True),
    Stage("shift", "shift", lambda r: dict(out=str(r / "shift"), runs_dir=str(r / "shift" / "work"), progress=False),
          lambda r: (r / "shift" / RESULTS).exists(), lambda r: [r / "shift"], True),
    Stage("steer", "steer", lambda r: dict(sae=str(r / "sae" / "sae"), out=str(r / "steer"), prompt="I think that"),
          lambda r: any((r / "steer").glob("steer_*.json")), lambda r: [r / "steer"]),
    Stage("ablate", "ablate", lambda r: dict(sae=str(r / "sae" / "sae"), features="auto:8", eval="ioi",
                                             out=str(r / "ablate")),
          lambda r: (r / "ablate" / "ablation.json").exists(), lambda r: [r / "ablate"]),
    Stage("circuit", "circuit", lambda r: dict(out=str(r / "circuit")),
          lambda r: (r / "circuit" / RESULTS).exists(), lambda r: [r / "circuit"], True, CIRCUIT_SIZES),
    Stage("pairs", "dump", lambda r: dict(out=str(r / "pairs"), hooks=("blocks.{L}.hook_mlp_in", "blocks.{L}.hook_mlp_out"),
                                          progress=False),
          _complete_pairs, lambda r: [r / "pairs"], True, TRANSCODER_SIZES),
    Stage("transcoders", "train-transcoders", lambda r: dict(acts=str(r / "pairs"), out=str(r / "transcoders"), progress=False),
          lambda r: (r / "transcoders" / SUMMARY).exists(), lambda r: [r / "transcoders"],
          sizes=TRANSCODER_SIZES),
    Stage("transcoder_labels", "label", lambda r: dict(set=str(r / "transcoders")),
          _labelled_set, lambda r: [], True, TRANSCODER_SIZES),
    Stage("trace", "trace", lambda r: dict(set=str(r / "transcoders"), out=str(r / "trace"), prompt=IOI_PROMPT,
                                           answer=" Mary"),
          lambda r: (r / "trace" / RESULTS).exists(), lambda r: [r / "trace"], True, TRANSCODER_SIZES),
]


def parser(prog=None):
    return config_parser(__doc__, prog, DemoConfig)


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from mechinterp.cli.stages.report import write_report

        cfg = build(DemoConfig, a)
        run = Path(cfg.out)
        stages = run_stages(run, cfg, STAGES, SIZES, EXPECTED_S)
        html_path, json_path = write_report(run, stages)
        print(f"== report: {html_path} (numbers in {json_path})")
