"""The main job: every stage on the embedded default model, into one report.

    python scripts/run_all.py [--model M] [--device D] [--out runs/demo] [--tiny | --full] [--force STAGE ...]

smoke -> IOI patching -> activation dump -> SAE training (JAX) -> CE-loss recovered -> feature
browser -> SHIFT -> steering -> feature ablation -> runs/<name>/report.html (+ report.json).
Each stage is its own script in a child process, talking to the others through files; a stage whose
outputs are complete is skipped, so re-running after an interrupt resumes (the dump and the SAE
training also resume inside the stage). --force STAGE redoes a stage (its outputs are deleted).
Sizes: the default takes about 7 minutes on a quiet 2-core CPU; --full is the seed-sized run
(25k-token dump, 2000-step relu-L1 SAE, full IOI sweeps); --tiny is for tests.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from _cli import REPO, common_parser, user_errors

SIZES = {  # per stage: extra flags for the stage's script
    "tiny": dict(ioi=["--n_prompts", "2", "--quick"], dump=["--n_tokens", "3000", "--ctx", "64"],
                 sae=["--arch", "topk", "--k", "8", "--d_sae", "256", "--steps", "30", "--batch", "256",
                      "--eval_tokens", "1000"],
                 eval=["--n_windows", "4"], browser=["--top_n", "5", "--per_band", "2"],
                 shift=["--n_ambiguous", "64", "--n_balanced", "64", "--n_random", "2", "--sae_n_tokens", "6000",
                        "--sae_steps", "30", "--sae_d_sae", "256", "--sae_batch", "256"],
                 steer=["--max_new_tokens", "4"], ablate=["--n_random", "3", "--n_prompts", "4"]),
    "demo": dict(ioi=["--n_prompts", "8", "--quick"], dump=["--n_tokens", "25000"],
                 sae=["--arch", "topk", "--k", "32", "--d_sae", "4096", "--steps", "600", "--batch", "1024"],
                 eval=["--n_windows", "24"], browser=[],
                 shift=["--sae_n_tokens", "60000", "--sae_steps", "400", "--sae_d_sae", "2048", "--sae_batch", "1024",
                        "--n_random", "5"],
                 steer=["--max_new_tokens", "20"], ablate=["--n_random", "10", "--n_prompts", "16"]),
    "full": dict(ioi=["--n_prompts", "16"], dump=["--n_tokens", "25000"],
                 sae=["--arch", "relu", "--d_sae", "4096", "--steps", "2000", "--batch", "4096"],
                 eval=["--n_windows", "64"], browser=[], shift=[],
                 steer=["--max_new_tokens", "30"], ablate=["--n_random", "20", "--n_prompts", "32"]),
}
# seconds per stage at the default size, measured on a quiet 2-core CPU (3 min 44 s in all), for the ETA
EXPECTED_S = dict(smoke=5, ioi=60, dump=18, sae=42, eval=13, browser=15, shift=50, steer=9, ablate=9)


@dataclass
class Stage:
    name: str
    script: str
    args: Callable[[Path], list[str]]
    """Flags for the script, given the run directory (size flags are appended)."""
    done: Callable[[Path], bool]
    """Whether the stage's outputs are complete."""
    outputs: Callable[[Path], list[Path]]
    """What --force deletes."""


def _complete_store(run: Path) -> bool:
    meta = run / "acts" / "meta.json"
    return meta.exists() and json.loads(meta.read_text()).get("complete", False)


def _has_ce(run: Path) -> bool:
    metrics = run / "sae" / "sae" / "metrics.json"
    return metrics.exists() and "ce_loss" in json.loads(metrics.read_text())


STAGES = [
    Stage("smoke", "smoke.py", lambda r: [], lambda r: (r / "smoke.txt").exists(), lambda r: [r / "smoke.txt"]),
    Stage("ioi", "ioi.py", lambda r: ["--out", str(r / "ioi")], lambda r: (r / "ioi" / "results.json").exists(),
          lambda r: [r / "ioi"]),
    Stage("dump", "cache_activations.py", lambda r: ["--out", str(r / "acts"), "--no_progress"], _complete_store,
          lambda r: [r / "acts"]),
    Stage("sae", "train_sae.py", lambda r: ["--acts", str(r / "acts"), "--out", str(r / "sae"), "--no_progress"],
          lambda r: (r / "sae" / "sae" / "cfg.json").exists(), lambda r: [r / "sae"]),
    Stage("eval", "eval_sae.py", lambda r: ["--sae", str(r / "sae" / "sae")], _has_ce, lambda r: []),
    Stage("browser", "browse_features.py", lambda r: ["--sae", str(r / "sae" / "sae"), "--out", str(r / "browser")],
          lambda r: (r / "browser" / "index.html").exists(), lambda r: [r / "browser"]),
    Stage("shift", "shift.py", lambda r: ["--out", str(r / "shift"), "--runs_dir", str(r / "shift" / "work"),
                                          "--no_progress"],
          lambda r: (r / "shift" / "results.json").exists(), lambda r: [r / "shift"]),
    Stage("steer", "steer.py", lambda r: ["--sae", str(r / "sae" / "sae"), "--out", str(r / "steer"),
                                          "--prompt", "I think that"],
          lambda r: any((r / "steer").glob("steer_*.json")), lambda r: [r / "steer"]),
    Stage("ablate", "ablate_features.py", lambda r: ["--sae", str(r / "sae" / "sae"), "--features", "auto:8",
                                                     "--eval", "ioi", "--out", str(r / "ablate")],
          lambda r: (r / "ablate" / "ablation.json").exists(), lambda r: [r / "ablate"]),
]
COMMON = {"smoke", "ioi", "dump", "shift"}  # stages that take --model / --device / --seed


def _clock(seconds: float) -> str:
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


def run_stages(run: Path, size: str, model: str, device: str, seed: int, force: set[str]) -> dict:
    run.mkdir(parents=True, exist_ok=True)
    record_path = run / "stages.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    t_start = time.perf_counter()
    scale = {"tiny": 0.25, "demo": 1.0, "full": 4.0}[size]
    remaining = sum(EXPECTED_S[s.name] for s in STAGES) * scale
    for i, stage in enumerate(STAGES, 1):
        expected = EXPECTED_S[stage.name] * scale
        if stage.name in force:
            for path in stage.outputs(run):
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            record.pop(stage.name, None)
        if stage.done(run) and stage.name not in force:
            print(f"== [{i}/{len(STAGES)}] {stage.name}: done already, skipped", flush=True)
            record.setdefault(stage.name, {"status": "done"})
            remaining -= expected
            continue
        elapsed = time.perf_counter() - t_start
        print(f"== [{i}/{len(STAGES)}] {stage.name} (elapsed {_clock(elapsed)}, about {_clock(remaining)} to go)",
              flush=True)
        argv = [sys.executable, str(REPO / "scripts" / stage.script), *stage.args(run), *SIZES[size][stage.name]] \
            if stage.name in SIZES[size] else [sys.executable, str(REPO / "scripts" / stage.script), *stage.args(run)]
        if stage.name in COMMON:
            argv += ["--model", model, "--device", device, "--seed", str(seed)]
        t0 = time.perf_counter()
        if stage.name == "smoke":
            proc = subprocess.run(argv, capture_output=True, text=True)
            print(proc.stdout, end="")
            if proc.returncode == 0:
                (run / "smoke.txt").write_text(proc.stdout)
            else:
                print(proc.stderr, end="", file=sys.stderr)
        else:
            proc = subprocess.run(argv)
        if proc.returncode != 0:
            record[stage.name] = {"status": f"failed (exit {proc.returncode})"}
            record_path.write_text(json.dumps(record, indent=2))
            raise RuntimeError(f"stage {stage.name} failed (exit {proc.returncode}); fix it and re-run: "
                               "finished stages are kept")
        record[stage.name] = {"status": "done", "seconds": round(time.perf_counter() - t0, 1)}
        record_path.write_text(json.dumps(record, indent=2))
        remaining -= expected
    return record


def main() -> None:
    p = common_parser(__doc__.splitlines()[0], out_default="runs/demo")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--tiny", action="store_true", help="a few hundred tokens and a few SAE steps (tests)")
    size.add_argument("--full", action="store_true", help="the seed-sized run (25k-token dump, 2000 SAE steps)")
    p.add_argument("--force", action="append", default=[], choices=[s.name for s in STAGES],
                   help="redo this stage (repeatable)")
    args = p.parse_args()
    with user_errors():
        from interventions.report import write_report

        size_name = "tiny" if args.tiny else "full" if args.full else "demo"
        run = Path(args.out)
        try:
            stages = run_stages(run, size_name, args.model, args.device, args.seed, set(args.force))
        except RuntimeError as e:
            raise ValueError(str(e)) from None
        html_path, json_path = write_report(run, stages)
        print(f"== report: {html_path} (numbers in {json_path})")


if __name__ == "__main__":
    main()
