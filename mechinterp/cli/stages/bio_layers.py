"""Concept alignment at every layer of an antibody model: one dump of all the layers, then an SAE and
bio-eval per layer, then the layers side by side (table, figure, the best layer per concept).

    mechinterp bio-layers [--size tiny|demo] [--layers all] [--out runs/bio_layers] [--force STAGE ...]

Writes OUT/results.json and OUT/layers.png; each layer's SAE and alignment sit in OUT/l<L>/sae/. As in
`mechinterp bio`, each stage runs in a child process and a complete stage is skipped, so an interrupted
run resumes; --force sae_l3 redoes one. The SAE settings are `mechinterp bio`'s for the size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mechinterp.cli.flags import build
from mechinterp.cli.pipeline import RecipeRun, Stage, run_stages
from mechinterp.cli.stages import bio, config_parser, user_errors
from mechinterp.formats.bounds import bounds
from mechinterp.formats.layers import parse_layers
from mechinterp.formats.results import RESULTS
from mechinterp.formats.sae import CFG

HOOKS = ("blocks.{L}.hook_normalized_resid_post", "blocks.{L}.mlp.hook_post")
# the demo size dumps half of `mechinterp bio`'s sequences so that eight layers fit in about an hour
N_SEQUENCES = {"tiny": bio.SIZES["tiny"]["dump"]["n_sequences"], "demo": 2500}
EXPECTED_S = dict(dump=300, sae=205, eval=200)


@dataclass(frozen=True)
class BioLayersConfig(RecipeRun):
    size: str = field(default="demo", metadata={"choices": tuple(N_SEQUENCES)})
    """demo (AntiBERTy, 2,500 sequences) or tiny (sapiens-vh, tests)."""
    out: str = "runs/bio_layers"
    """Run directory (acts/, l<L>/sae/, results.json, layers.png)."""
    model: str | None = None
    """Antibody masked LM (None: the size's: antiberty, or sapiens-vh for tiny)."""
    layers: str = "all"
    """Layers compared: all, or a list such as 0,2-4."""
    n_sequences: int | None = field(default=None, metadata=bounds(1))
    """Sequences dumped (None: the size's, 2,500 at demo)."""


def _sae(run: Path, layer: int) -> Path:
    return run / f"l{layer}" / "sae"


def pipeline(layers: list[int]) -> list[Stage]:
    stages = [Stage("dump", "bio-dump", lambda r: dict(out=str(r / "acts"), hooks=HOOKS, layers=",".join(map(str, layers)),
                                                       progress=False),
                    bio._dumped, lambda r: [r / "acts"], True)]
    for L in layers:
        stages += [
            Stage(f"sae_l{L}", "train-sae", lambda r, L=L: dict(acts=str(r / "acts" / HOOKS[0].format(L=L)),
                                                                out=str(_sae(r, L).parent), progress=False),
                  lambda r, L=L: (_sae(r, L) / CFG).exists(), lambda r, L=L: [_sae(r, L).parent]),
            Stage(f"eval_l{L}", "bio-eval", lambda r, L=L: dict(sae=str(_sae(r, L))),
                  lambda r, L=L: (_sae(r, L) / "bio_eval" / RESULTS).exists(),
                  lambda r, L=L: [_sae(r, L) / "bio_eval"], True)]
    return stages


def settings(cfg: BioLayersConfig, layers: list[int]) -> tuple[dict, dict]:
    """(per-stage settings of the size, as run_stages takes them; expected seconds per stage)."""
    size = bio.SIZES[cfg.size]
    dump = {k: v for k, v in size["dump"].items() if k != "hooks"}
    dump["n_sequences"] = cfg.n_sequences or N_SEQUENCES[cfg.size]
    per_stage, expected = {"dump": dump}, {"dump": EXPECTED_S["dump"]}
    for L in layers:
        per_stage.update({f"sae_l{L}": size["sae"], f"eval_l{L}": size["eval"]})
        expected.update({f"sae_l{L}": EXPECTED_S["sae"], f"eval_l{L}": EXPECTED_S["eval"]})
    return {cfg.size: per_stage}, expected


def parser(prog=None):
    return config_parser(__doc__, prog, BioLayersConfig)


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from extract.models import load_model
        from interventions.bio.layers import compare_layers, layer_table

        cfg = build(BioLayersConfig, a)
        if cfg.n_sequences is not None and cfg.n_sequences < 1:
            raise ValueError(f"--n_sequences {cfg.n_sequences}: give at least 1")
        model = cfg.model or bio.SIZES[cfg.size]["dump"]["model"]
        layers = parse_layers(cfg.layers, load_model(model, device="cpu").n_layers)
        run = Path(cfg.out)
        sizes, expected = settings(cfg, layers)
        run_stages(run, cfg, pipeline(layers), sizes, expected)
        results = compare_layers({L: _sae(run, L) / "bio_eval" / RESULTS for L in layers}, run)
        print("\n".join(layer_table(results)))
        print(f"== {run / RESULTS}, {run / 'layers.png'}")
