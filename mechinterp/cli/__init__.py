"""`mechinterp <stage> [flags]`: every stage of the lab behind one command.

Each stage lives in mechinterp/cli/stages/<module>.py; `mechinterp <stage> --help` lists its flags.
"""

from __future__ import annotations

import importlib
import sys

# stage -> (module under mechinterp.cli.stages, one line for the overview); in pipeline order
STAGES = {
    "demo": ("demo", "the main job: every stage on the default model, into runs/demo/report.html"),
    "smoke": ("smoke", "load a model, run one prompt, capture one hook"),
    "ioi": ("ioi", "IOI circuit lab: activation and path patching, DLA, circuit report"),
    "circuit": ("circuit", "edge-level circuit discovery (EAP, EAP-IG, node patching): faithfulness curves, CPR, CMD"),
    "dump": ("dump", "dump activations over a corpus to disk-backed memmaps (one store per hook)"),
    "train-sae": ("train_sae", "train one SAE on an activation store (JAX) and export it"),
    "sweep-sae": ("sweep_sae", "train a population of SAEs at once (vmapped)"),
    "train-transcoders": ("train_transcoders", "train a transcoder per layer (MLP in -> MLP out), export the set"),
    "eval-sae": ("eval_sae", "evaluation suite of an SAE: reconstruction, CE-loss recovered; sparse probing, absorption"),
    "compare-saes": ("compare_saes", "Pareto plots of evaluated SAEs, one per metric against L0 (compare.html)"),
    "eval-transcoders": ("eval_transcoders", "the replacement model: CE-loss recovered with transcoders for the MLPs"),
    "trace": ("trace", "attribution graph of one prompt through a transcoder set: pruned, checked, a page"),
    "browse": ("browse", "feature browser: per-latent statistics and a static page"),
    "organism": ("organism", "a model organism: a planted taboo word, trigger backdoor or quirk, fine-tuned and measured"),
    "train-crosscoder": ("train_crosscoder", "a crosscoder between a model and its fine-tune (JAX): model-specific latents"),
    "audit": ("audit", "blind audit of a fine-tune: ranked hypotheses of what was planted, inside and outside evidence"),
    "audit-probe": ("audit_probe", "the audit's transcripts: both models answer the auditor's prompts"),
    "audit-evidence": ("audit_evidence", "the audit's hypotheses from a crosscoder, the logit lens, the weight diff, sampling"),
    "score-audit": ("score_audit", "score an audit against the organism's manifest; the causal check"),
    "label": ("label", "a label for every latent (offline, or a user's LLM), scored on held-out text"),
    "steer": ("steer", "generate with and without one SAE feature added"),
    "ablate": ("ablate", "ablate SAE latents and measure a behaviour against random ablations"),
    "shift": ("shift", "SHIFT: find and ablate the latents a probe uses for a spurious cue"),
    "bio": ("bio", "the biology pipeline: antibody model to causal tests, into runs/bio/report.html"),
    "bio-dump": ("bio_dump", "antibody model activations over real sequences, with per-residue labels"),
    "bio-eval": ("bio_eval", "an SAE on a residue dump: concept alignment vs neurons, masked-residue loss recovered"),
    "bio-browse": ("bio_browse", "residue browser: concept latents on their top sequences, with the region track"),
    "bio-causal": ("bio_causal", "patching of masked residues, concept-latent ablation vs random, region steering"),
    "bio-layers": ("bio_layers", "concept alignment at every layer of an antibody model: an SAE per layer, side by side"),
}


def usage() -> str:
    width = max(map(len, STAGES))
    lines = ["usage: mechinterp <stage> [flags]     (mechinterp <stage> --help for its flags)", "", "stages:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in STAGES.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return
    if argv[0] not in STAGES:
        print(f"error: unknown stage {argv[0]!r}; choose one of {', '.join(STAGES)}", file=sys.stderr)
        raise SystemExit(2)
    module = importlib.import_module(f"mechinterp.cli.stages.{STAGES[argv[0]][0]}")
    module.main(argv[1:], prog=f"mechinterp {argv[0]}")


if __name__ == "__main__":
    main()
