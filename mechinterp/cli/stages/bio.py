"""The biology pipeline: an antibody language model from residues to causal tests, into one report.

    mechinterp bio [--size tiny|demo] [--out runs/bio] [--model M] [--layer L] [--force STAGE ...]

bio-dump (real antibody sequences, labelled) -> train-sae (JAX) -> bio-eval (concept alignment vs
neurons, masked-residue loss recovered) -> bio-browse (residue browser) -> bio-causal (patching,
concept ablation vs random latents, region steering) -> OUT/report.html (+ report.json). As in
`mechinterp demo`, each stage runs in a child process, a complete stage is skipped (re-running
resumes; the dump and the SAE training also resume inside), and --force STAGE redoes one. Sizes:
demo (AntiBERTy layer 4, 5,000 sequences: the README's numbers), tiny (sapiens-vh, for tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mechinterp.cli.flags import build
from mechinterp.cli.pipeline import RecipeRun, Stage, run_stages
from mechinterp.cli.stages import config_parser, user_errors
from mechinterp.formats.bounds import bounds
from mechinterp.formats.residues import JSON
from mechinterp.formats.results import RESULTS
from mechinterp.formats.sae import CFG
from mechinterp.formats.store import META_FILE, is_complete

SIZES: dict[str, dict[str, dict]] = {
    "tiny": dict(dump=dict(model="sapiens-vh", sequences="abnativ:vh", n_sequences=120, ctx=32,
                           hooks=("blocks.3.hook_normalized_resid_post", "blocks.3.mlp.hook_post")),
                 sae=dict(arch="topk", k=8, d_sae=256, steps=60, batch=256),
                 eval=dict(n_loss_sequences=8), browse=dict(per_concept=1, n_examples=3),
                 causal=dict(targets=("CDR3",), n_pairs=1, concepts=("region:CDR3",), n_random=2, n_sequences=8,
                             alphas=(0.0, 4.0))),
    "demo": dict(dump=dict(model="antiberty", n_sequences=5000,
                           hooks=("blocks.4.hook_normalized_resid_post", "blocks.4.mlp.hook_post")),
                 sae=dict(arch="topk", k=32, d_sae=4096, steps=1500, batch=1024),
                 eval={}, browse={}, causal={}),
}
# seconds per stage at the demo size on a quiet 2-core CPU (README, "Biology"), for the ETA
EXPECTED_S = dict(dump=325, sae=205, eval=360, browse=120, causal=1200)


def _sae(run: Path) -> Path:
    return run / "sae" / "sae"


def _dumped(run: Path) -> bool:
    metas = list((run / "acts").glob(f"*/{META_FILE}"))
    return (run / "acts" / JSON).exists() and bool(metas) and all(is_complete(m.parent) for m in metas)


def sizes_for(layer: int | None) -> dict[str, dict[str, dict]]:
    """SIZES, with the dump's hooks moved to `layer` when one is given."""
    if layer is None:
        return SIZES
    hooks = (f"blocks.{layer}.hook_normalized_resid_post", f"blocks.{layer}.mlp.hook_post")
    return {size: {**stages, "dump": {**stages["dump"], "hooks": hooks}} for size, stages in SIZES.items()}


def pipeline(sizes: dict, size: str) -> list[Stage]:
    """The stages; the SAE trains on the size's first dumped hook."""
    hook = sizes[size]["dump"]["hooks"][0]
    return [
        Stage("dump", "bio-dump", lambda r: dict(out=str(r / "acts"), progress=False), _dumped,
              lambda r: [r / "acts"], True),
        Stage("sae", "train-sae", lambda r: dict(acts=str(r / "acts" / hook), out=str(r / "sae"), progress=False),
              lambda r: (_sae(r) / CFG).exists(), lambda r: [r / "sae"]),
        Stage("eval", "bio-eval", lambda r: dict(sae=str(_sae(r))),
              lambda r: (_sae(r) / "bio_eval" / RESULTS).exists(), lambda r: [_sae(r) / "bio_eval"], True),
        Stage("browse", "bio-browse", lambda r: dict(sae=str(_sae(r))),
              lambda r: (_sae(r) / "bio_browse" / "residues.html").exists(), lambda r: [_sae(r) / "bio_browse"]),
        Stage("causal", "bio-causal", lambda r: dict(sae=str(_sae(r))),
              lambda r: (_sae(r) / "bio_causal" / RESULTS).exists(), lambda r: [_sae(r) / "bio_causal"],
              True),
    ]


@dataclass(frozen=True)
class BioConfig(RecipeRun):
    size: str = field(default="demo", metadata={"choices": tuple(SIZES)})
    """demo (AntiBERTy, 5,000 sequences) or tiny (sapiens-vh, tests)."""
    out: str = "runs/bio"
    """Run directory (acts/, sae/, report.html)."""
    model: str | None = None
    """Antibody masked LM (None: the size's: antiberty, or sapiens-vh for tiny)."""
    layer: int | None = field(default=None, metadata=bounds(0))
    """Layer dumped and given an SAE (None: the size's: 4 of AntiBERTy's 8, 3 of sapiens-vh's 4)."""


def parser(prog=None):
    return config_parser(__doc__, prog, BioConfig)


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from mechinterp.cli.stages.bio_report import write_bio_report

        cfg = build(BioConfig, a)
        run = Path(cfg.out)
        sizes = sizes_for(cfg.layer)
        stages = run_stages(run, cfg, pipeline(sizes, cfg.size), sizes, EXPECTED_S)
        html_path, json_path = write_bio_report(run, stages)
        print(f"== report: {html_path} (numbers in {json_path})")
