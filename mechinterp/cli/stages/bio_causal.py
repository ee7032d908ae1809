"""Causal tests of an antibody SAE's concept latents: activation patching of masked residues,
concept-latent ablation against random latents, steering with a region latent.

    mechinterp bio-eval --sae runs/bio/sae/sae            # first: aligns the latents with the concepts
    mechinterp bio-causal --sae runs/bio/sae/sae          # -> runs/bio/sae/sae/bio_causal/results.json,
                                                          #    patching.png, effects.png
"""

from __future__ import annotations

from mechinterp.cli.flags import build
from mechinterp.cli.runs import claimed
from mechinterp.cli.stages import config_parser, user_errors


def parser(prog=None):
    from interventions.bio.causal import BioCausalConfig

    return config_parser(__doc__, prog, BioCausalConfig)


def versus_random(m: dict) -> str:
    """One ablation's rise beside the random draws': their mean, s.d., the interval 95% of draws fall in,
    the z-score, and the ratio to their mean where there is one (else why not)."""
    interval = m.get("random_rise_interval95")
    spread = (f"s.d. {m['random_rise_spread']:.2g} over {m['n_random']} draws"
              + (f", 95% of draws in [{interval[0]:+.2g}, {interval[1]:+.2g}]" if interval else ""))
    z = "" if m["z_vs_random"] is None else f"z {m['z_vs_random']:+.1f}; "
    ratio = (f"{m['ratio_vs_random']:.1f}x the random mean" if m["ratio_vs_random"] is not None
             else f"no ratio: {m['ratio_vs_random_null']}")
    return (f"CE {m['concept_rise']:+.3f} at the concept, {m['elsewhere_rise']:+.3f} elsewhere; random latents "
            f"{m['random_rise']:+.2g} ({spread}) -> {z}{ratio}")


def main(argv=None, prog=None) -> None:
    a = parser(prog).parse_args(argv)
    with user_errors():
        from interventions.bio.causal import BioCausalConfig, run

        cfg = build(BioCausalConfig, a)
        with claimed(cfg.sae, "bio-causal"):
            r = run(cfg)
        for p in r["patching"]:
            print(f"patching {p['target']}: {len(p['pairs'])} pairs")
        for c, e in r["ablation"].items():
            for mode in ("masked", "unmasked"):
                if mode in e:
                    print(f"ablating {len(e['latents'])} {c} latents ({mode} residues): {versus_random(e[mode])}")
        s = r["steering"]
        print(f"steering with {r['steer_region']} latent {s['region_latent']['latent']}, alphas {s['alphas']}: shift "
              "fraction " + " ".join(f"{v:.2f}" for v in s["region_latent"]["shift_fraction"])
              + "; random latent " + " ".join(f"{v:.2f}" for v in s["random_latent"]["shift_fraction"]))
