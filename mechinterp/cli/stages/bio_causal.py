"""Causal tests of an antibody SAE's concept latents: activation patching of masked residues,
concept-latent ablation against random latents, steering with a region latent.

    mechinterp bio-eval --sae runs/bio/sae/sae            # first: aligns the latents with the concepts
    mechinterp bio-causal --sae runs/bio/sae/sae          # -> runs/bio/sae/sae/bio_causal/results.json,
                                                          #    patching.png, effects.png
"""

from __future__ import annotations

from mechinterp.cli.flags import build
from mechinterp.cli.stages import config_parser, user_errors


def parser(prog=None):
    from interventions.bio.causal import BioCausalConfig

    return config_parser(__doc__, prog, BioCausalConfig)


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from interventions.bio.causal import BioCausalConfig, run

        r = run(build(BioCausalConfig, a))
        for p in r["patching"]:
            print(f"patching {p['target']}: {len(p['pairs'])} pairs")
        for c, e in r["ablation"].items():
            for mode in ("masked", "unmasked"):
                m = e[mode]
                print(f"ablating {len(e['latents'])} {c} latents ({mode} residues): CE {m['concept_rise']:+.3f} at the "
                      f"concept, {m['elsewhere_rise']:+.3f} elsewhere; random latents {m['random_rise']:+.3f} "
                      f"(+- {m['random_rise_spread']:.3f}) -> {m['ratio_vs_random']:.1f}x")
        s = r["steering"]
        print(f"steering with {r['steer_region']} latent {s['region_latent']['latent']}, alphas {s['alphas']}: shift "
              "fraction " + " ".join(f"{v:.2f}" for v in s["region_latent"]["shift_fraction"])
              + "; random latent " + " ".join(f"{v:.2f}" for v in s["random_latent"]["shift_fraction"]))
