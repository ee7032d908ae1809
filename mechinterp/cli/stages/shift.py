"""SHIFT: find the SAE latents a profession probe uses for gender, ablate them, tabulate.

    mechinterp shift                                  # dumps + trains an SAE first (reused after)
    mechinterp shift --sae runs/sae/.../sae --layer 4 --features 12,40
Writes table.md, results.json, latents.json and shift.png under --out (default runs/shift/<model>).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from mechinterp.cli.flags import add_flags, argv_for, build, values
from mechinterp.cli.runs import RUNS, claimed, default_store_dir, model_dir_name, stage_dir
from mechinterp.cli.stages import new_parser, user_errors
from mechinterp.formats.bounds import bounds, check_bounds
from mechinterp.formats.sae import CFG

# Without --sae, the SAE the stage trains at the probe's hook first: each setting is a field of
# the dump's or the trainer's config, exposed as --sae_<field> with this recipe's default.
RECIPE_DUMP = {"n_tokens": 200_000, "corpus": "bbc+bios"}
RECIPE_SAE = {"arch": "topk", "k": 32, "d_sae": 4096}
RECIPE_TRAIN = {"steps": 2000, "batch": 4096, "eval_tokens": 20_000}


@dataclass(frozen=True)
class RecipeExtras:
    sae_n_bios: int = field(default=20_000, metadata=bounds(1))
    """Without --sae: synthetic training-split biographies written for the word 'bios' in --sae_corpus."""
    runs_dir: str = RUNS
    """Without --sae: where the store and SAE go (runs_dir/acts, runs_dir/sae); reused when complete."""

    def __post_init__(self):
        check_bounds(self)


def parser(prog=None):
    from extract.dump import DumpConfig
    from interventions.shift.config import ShiftConfig
    from sae_jax.config import SAEConfig, TrainConfig

    p = new_parser(__doc__, prog)
    add_flags(p, ShiftConfig)
    add_flags(p, DumpConfig, prefix="sae_", only=RECIPE_DUMP, defaults=RECIPE_DUMP)
    add_flags(p, SAEConfig, prefix="sae_", only=RECIPE_SAE, defaults=RECIPE_SAE)
    add_flags(p, TrainConfig, prefix="sae_", only=RECIPE_TRAIN, defaults=RECIPE_TRAIN)
    add_flags(p, RecipeExtras)
    return p


def ensure_sae(cfg, model, dump: dict, sae: dict, train: dict, extras: RecipeExtras) -> Path:
    """cfg.sae, or an SAE at the probe's hook made by the dump stage (a library call here: the model is
    loaded already) and the train-sae stage (a child process: jax never loads beside torch). Both
    are reused when complete."""
    if cfg.sae:
        return Path(cfg.sae)
    from extract.biographies import corpus_bios, write_jsonl
    from extract.dump import DumpConfig, dump_activations

    tag = f"{cfg.hook}-{dump['corpus'].replace('+', '_').replace(':', '_').replace('/', '_')}"
    store = default_store_dir(model.name, tag, extras.runs_dir)
    sae_dir = Path(extras.runs_dir) / "sae" / model_dir_name(model.name) / f"{tag}-{sae['arch']}{sae['k']}-{sae['d_sae']}"
    if (sae_dir / "sae" / CFG).exists():
        return sae_dir / "sae"
    corpus = []
    for part in dump["corpus"].split("+"):
        if part == "bios":
            path = Path(extras.runs_dir) / "shift" / "corpus" / f"bios-{extras.sae_n_bios}-seed{cfg.seed}.jsonl"
            if not path.exists():
                write_jsonl(corpus_bios(extras.sae_n_bios, cfg.seed), path)
            part = f"dir:{path}"
        corpus.append(part)
    dump_activations(DumpConfig(model=cfg.model, hooks=(cfg.hook,), n_tokens=dump["n_tokens"], out=str(store),
                                corpus="+".join(corpus), device=cfg.device, seed=cfg.seed, progress=cfg.progress),
                     model=model)
    from mechinterp.cli.stages import train_sae

    settings = dict(acts=str(store), out=str(sae_dir), **sae, **train, seed=cfg.seed, progress=cfg.progress)
    argv = [sys.executable, "-m", "mechinterp", "train-sae", *argv_for(train_sae.parser(), settings)]
    proc = subprocess.run(argv, capture_output=not cfg.progress, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or "").strip().splitlines()[-3:]
        raise ValueError(f"training the SHIFT SAE failed (exit {proc.returncode}): {' | '.join(tail)}")
    return sae_dir / "sae"


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from extract.dump import DumpConfig
        from extract.models import load_model
        from interventions.sae import load_sae
        from interventions.shift.config import ShiftConfig
        from interventions.shift.experiment import run_shift
        from interventions.shift.outputs import markdown_table, write_outputs
        from mechinterp.formats.sae import read_cfg
        from sae_jax.config import SAEConfig, TrainConfig

        cfg = build(ShiftConfig, a)
        recipe = (values(DumpConfig, a, prefix="sae_", only=RECIPE_DUMP),
                  values(SAEConfig, a, prefix="sae_", only=RECIPE_SAE),
                  values(TrainConfig, a, prefix="sae_", only=RECIPE_TRAIN))
        if cfg.sae:
            read_cfg(cfg.sae)  # one line if it is not an SAE export, before the model loads
        out = Path(cfg.out) if cfg.out else stage_dir("shift", cfg.model)
        with claimed(out, "shift", model=cfg.model, **({"sae": cfg.sae} if cfg.sae else {})):
            model = load_model(cfg.model, device=cfg.device)
            sae = load_sae(ensure_sae(cfg, model, *recipe, build(RecipeExtras, a)))
            result = run_shift(cfg, model=model, sae=sae)
            paths = write_outputs(result, out)
        print(markdown_table(result))
        for c in result.selection.candidates:
            if c["chosen"]:
                print(f"latent {c['latent']}: attribution {c['attribution']:+.3f}, gender AUC {c['gender_auc']:.2f} "
                      f"({c['gender']}), top tokens {c['top_tokens']}")
        print(f"wrote {', '.join(str(p) for p in paths.values())}")
