"""The pipeline runner behind `mechinterp demo`, `bio` and `bio-layers`: a recipe is a list of
stages, each a `mechinterp` command with its settings and a declaration of its outputs. The runner
checks every stage's settings before the first runs, runs each in a child process (files are the
only interface), skips a stage whose outputs are complete unless a stage whose outputs it reads ran
after it (then it is redone), and records what ran, and when, in stages.json.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mechinterp.cli import STAGES as CLI_STAGES
from mechinterp.cli.flags import argv_for, check
from mechinterp.cli.stages import flag_error
from mechinterp.formats.bounds import bounds, check_bounds
from mechinterp.formats.reading import read_json

SCALE = {"tiny": 0.25, "demo": 1.0, "full": 4.0}
"""How much longer than its demo-size time each size's stage takes (for the ETA)."""


@dataclass(frozen=True)
class RecipeRun:
    """The settings every recipe (demo, bio, bio-layers) shares; each recipe's config extends it."""
    device: str = "auto"
    """auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps."""
    seed: int = field(default=0, metadata=bounds(0))
    """Seeds every stage that takes one."""
    force: tuple[str, ...] = field(default=(), metadata={"repeat": True})
    """Redo this stage (its name as the run prints it), deleting its outputs (repeatable)."""
    in_process: bool = False
    """Run every stage in this process, not one child process each (faster to start; one crash ends the run)."""

    def __post_init__(self):
        check_bounds(self)


@dataclass
class Stage:
    name: str
    command: str
    """The `mechinterp` stage it runs."""
    args: Callable[[Path], dict]
    """Settings given the run directory (the size's settings are added)."""
    done: Callable[[Path], bool]
    """Whether the stage's outputs are complete."""
    outputs: Callable[[Path], list[Path]]
    """What --force deletes."""
    common: bool = False
    """Takes the demo's --model / --device / --seed."""
    sizes: tuple[str, ...] = ("tiny", "demo", "full")
    """Sizes that run it."""
    reads: Callable[[Path], list[Path]] = lambda run: []
    """What it reads beyond the paths in its settings (a stage given only the run's folder)."""


def stage_argv(stage: Stage, run: Path, cfg, sizes: dict) -> list[str]:
    """The stage's flags for this run, checked by parsing them and building the stage's configs."""
    module = importlib.import_module(f"mechinterp.cli.stages.{CLI_STAGES[stage.command][0]}")
    parser = module.parser(prog=f"mechinterp {stage.command}")
    settings = {**stage.args(run), **sizes[cfg.size].get(stage.name, {})}
    if stage.common:
        dests = {a.dest for a in parser._actions}
        common = {k: getattr(cfg, k, None) for k in ("model", "device", "seed")}
        settings.update({k: v for k, v in common.items() if k in dests and v is not None})
    argv = argv_for(parser, settings)

    def refuse(message: str):
        raise ValueError(flag_error(message))
    parser.error = refuse  # a bad setting of the recipe is an error of the run, not an exit of this process
    try:
        check(parser, parser.parse_args(argv))
    except ValueError as e:
        raise ValueError(f"stage {stage.name} ({cfg.size} size): {e}") from None
    return argv


def _clock(seconds: float) -> str:
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


def stages_for(size: str, stages: list[Stage]) -> list[Stage]:
    return [s for s in stages if size in s.sizes]


def run_stages(run: Path, cfg, pipeline: list[Stage], sizes: dict, expected_s: dict) -> dict:
    """Run the size's stages of `pipeline`, each in a child process (or all in this one with
    cfg.in_process), skipping complete ones; `cfg` has size and the RecipeRun settings (model too, where the recipe takes one)."""
    unknown = set(cfg.force) - {s.name for s in pipeline}
    if unknown:
        raise ValueError(f"--force {sorted(unknown)}: no such stage; stages are {', '.join(s.name for s in pipeline)}")
    stages = stages_for(cfg.size, pipeline)
    argvs = {s.name: stage_argv(s, run, cfg, sizes) for s in stages}  # every setting checked before any stage runs
    run.mkdir(parents=True, exist_ok=True)
    record_path = run / "stages.json"
    record = read_json(record_path, "delete it (the stages' outputs are kept)") if record_path.exists() else {}
    t_start = time.perf_counter()
    remaining = sum(expected_s[s.name] for s in stages) * SCALE[cfg.size]
    for i, stage in enumerate(stages, 1):
        expected = expected_s[stage.name] * SCALE[cfg.size]
        redo = [a.name for a in _reads(stage, stages[:i - 1], run)
                if record.get(a.name, {}).get("finished", 0) > record.get(stage.name, {}).get("finished", 0)]
        if redo and stage.done(run) and stage.name not in cfg.force:
            print(f"== [{i}/{len(stages)}] {stage.name}: {', '.join(redo)} ran after it; redoing it", flush=True)
        if stage.name in cfg.force or (redo and stage.done(run)):
            for path in stage.outputs(run):
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            record.pop(stage.name, None)
        elif stage.done(run):
            print(f"== [{i}/{len(stages)}] {stage.name}: done already, skipped", flush=True)
            record.setdefault(stage.name, {"status": "done"})
            remaining -= expected
            continue
        print(f"== [{i}/{len(stages)}] {stage.name} (elapsed {_clock(time.perf_counter() - t_start)}, "
              f"about {_clock(remaining)} to go)", flush=True)
        t0 = time.perf_counter()
        run_one = _in_this_process if cfg.in_process else _in_a_child
        code, out = run_one(stage.command, argvs[stage.name], capture=stage.name == "smoke")
        if stage.name == "smoke":
            print(out, end="")
            if code == 0:
                (run / "smoke.txt").write_text(out)
        if code != 0:
            record[stage.name] = {"status": f"failed (exit {code})"}
            record_path.write_text(json.dumps(record, indent=2))
            raise ValueError(f"stage {stage.name} failed (exit {code}); fix it and re-run: finished stages are kept")
        record[stage.name] = {"status": "done", "seconds": round(time.perf_counter() - t0, 1), "finished": time.time()}
        record_path.write_text(json.dumps(record, indent=2))
        remaining -= expected
    return record


def _reads(stage: Stage, earlier: list[Stage], run: Path) -> list[Stage]:
    """The earlier stages whose outputs `stage` reads: given as a setting (a path inside one of them)
    or named in its `reads`."""
    given = [str(v) for v in [*stage.args(run).values(), *stage.reads(run)] if isinstance(v, (str, Path))]
    return [a for a in earlier if any(g == str(o) or g.startswith(f"{o}/") for o in a.outputs(run) for g in given)]


def _in_a_child(command: str, argv: list[str], capture: bool) -> tuple[int, str]:
    """`python -m mechinterp <command> ...` in a child process: (exit code, stdout when captured)."""
    proc = subprocess.run([sys.executable, "-m", "mechinterp", command, *argv], capture_output=capture, text=True)
    if capture and proc.returncode:
        print(proc.stderr, end="", file=sys.stderr)
    return proc.returncode, proc.stdout or ""


def _in_this_process(command: str, argv: list[str], capture: bool) -> tuple[int, str]:
    """The same stage called here: (exit code, stdout when captured)."""
    from mechinterp.cli import main

    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer) if capture else contextlib.nullcontext():
            main([command, *argv])
        code = 0
    except SystemExit as e:
        code = 0 if e.code is None else e.code if isinstance(e.code, int) else 1
    return code, buffer.getvalue()
