"""Judge an SAE trained on a residue dump: concept alignment (InterPLM's F1 method) of its latents
against the model's neurons, and masked-residue loss recovered.

    mechinterp bio-dump --hook blocks.4.hook_normalized_resid_post --hook blocks.4.mlp.hook_post
    mechinterp train-sae --acts runs/bio/acts/blocks.4.hook_normalized_resid_post --out runs/bio/sae
    mechinterp bio-eval --sae runs/bio/sae/sae        # -> runs/bio/sae/sae/bio_eval/results.json, alignment.png
"""

from __future__ import annotations

from mechinterp.cli.flags import build
from mechinterp.cli.runs import claimed
from mechinterp.cli.stages import config_parser, user_errors


def parser(prog=None):
    from interventions.bio.evaluate import BioEvalConfig

    return config_parser(__doc__, prog, BioEvalConfig)


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from interventions.bio.evaluate import BioEvalConfig, evaluate

        cfg = build(BioEvalConfig, a)
        with claimed(cfg.sae, "bio-eval"):
            r = evaluate(cfg)
        loss = r["masked_residue_loss"]
        for f1, key in (("InterPLM's F1", ""), ("per-residue F1", "_residue")):
            print(f"aligned (unit, concept) pairs, held-out {f1} >= {r['min_f1']}: "
                  + ", ".join(f"{k} {v} ({r['concepts_covered' + key][k]} of {len(r['concepts'])} concepts)"
                              for k, v in r["aligned_pairs" + key].items()))
            print("  units aligned with at least one concept: "
                  + ", ".join(f"{k} {v}" for k, v in r["units_aligned" + key].items()))
        print(f"masked-residue loss recovered {loss['recovered_vs_zero']:.3f} (vs zero), "
              f"{loss['recovered_vs_mean']:.3f} (vs mean); clean {loss['loss_clean']:.3f}, SAE {loss['loss_sae']:.3f}")
