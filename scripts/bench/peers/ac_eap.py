"""Peer check of extract/circuits/scores.py (EAP and exact edge patching), run with auto-circuit's own
interpreter (.venv-bench-ac): auto-circuit 1.0.1's factorized edge graph, its mask-gradient prune scores
(one step at mask 0: edge attribution patching) and its run_circuits, on a GPT-2 saved by us.

    .venv-bench-ac/bin/python scripts/bench/peers/ac_eap.py IN.npz MODEL_DIR OUT.json

MODEL_DIR: a transformers GPT2LMHeadModel (save_pretrained). It becomes a TransformerLens HookedTransformer
through a config written from the HF config and TransformerLens' own convert_gpt2_weights, with no weight
processing (no LayerNorm folding, no centering, value biases left in the heads), checked against the HF
logits. IN.npz: clean, corrupt [n, pos] token ids; answer, wrong [1] (metric = mean over prompts of
logit[answer] - logit[wrong] at the last position); names [k] and circuit<i> (edges "src->dest" in
auto-circuit's names) for the circuits to run. OUT.json: eap = [src, dest, score] for every edge (auto-
circuit's sign), circuits = the metric with every edge outside each circuit patched to the corrupted run's
source output (its PatchType.TREE_PATCH, resample ablation), clean, corrupt, versions, tl_vs_hf_max_logit_diff.
"""

import json
import platform
import sys
from importlib.metadata import version

import numpy as np
import torch
import transformers
from auto_circuit.data import PromptDataLoader, PromptDataset
from auto_circuit.prune import run_circuits
from auto_circuit.prune_algos.mask_gradient import mask_gradient_prune_scores
from auto_circuit.types import AblationType, PatchType
from auto_circuit.utils.graph_utils import patchable_model
from auto_circuit.utils.tensor_ops import batch_answer_diffs
from transformer_lens import HookedTransformer, HookedTransformerConfig
from transformer_lens.pretrained.weight_conversions import convert_gpt2_weights

PACKAGES = ("auto-circuit", "transformer-lens", "transformers", "torch")


def tl_gpt2(model_dir: str) -> tuple[transformers.GPT2LMHeadModel, HookedTransformer]:
    hf = transformers.GPT2LMHeadModel.from_pretrained(model_dir, local_files_only=True).eval()
    c = hf.config
    cfg = HookedTransformerConfig(
        n_layers=c.n_layer, d_model=c.n_embd, n_heads=c.n_head, d_head=c.n_embd // c.n_head, d_mlp=c.n_inner or 4 * c.n_embd,
        d_vocab=c.vocab_size, n_ctx=c.n_positions, act_fn=c.activation_function, eps=c.layer_norm_epsilon,
        normalization_type="LN", original_architecture="GPT2LMHeadModel", device="cpu", default_prepend_bos=False,
        # what auto-circuit's factorized graph asserts: per-head outputs, per-head q/k/v inputs and the MLP
        # input before their LayerNorms
        use_attn_result=True, use_split_qkv_input=True, use_hook_mlp_in=True)
    tl = HookedTransformer(cfg)
    tl.load_and_process_state_dict(convert_gpt2_weights(hf, cfg), fold_ln=False, center_writing_weights=False,
                                   center_unembed=False, fold_value_biases=False)
    return hf, tl.eval()


def main():
    torch.set_num_threads(2)
    f = np.load(sys.argv[1])
    clean, corrupt = torch.from_numpy(f["clean"]).long(), torch.from_numpy(f["corrupt"]).long()
    hf, tl = tl_gpt2(sys.argv[2])
    with torch.no_grad():
        gap = float((tl(clean) - hf(clean).logits).abs().max())
    print(f"TransformerLens vs transformers: max |logit diff| {gap:.2e}")
    assert gap < 1e-4, gap

    n = len(clean)
    answer, wrong = torch.from_numpy(f["answer"]).long(), torch.from_numpy(f["wrong"]).long()
    dataset = PromptDataset(clean, corrupt, [answer] * n, [wrong] * n)
    loader = PromptDataLoader(dataset, seq_len=None, diverge_idx=0, batch_size=n, shuffle=False)  # one batch
    (batch,) = list(loader)
    model = patchable_model(tl, factorized=True, slice_output="last_seq", separate_qkv=True, device=torch.device("cpu"))

    def metric(logits: torch.Tensor) -> float:
        return float(batch_answer_diffs(logits, batch).mean())

    with torch.no_grad():
        clean_m, corrupt_m = metric(model(clean)[model.out_slice]), metric(model(corrupt)[model.out_slice])

    # score = d(-metric)/d mask at mask 0, where a dest reads curr + mask * (corrupt_src - curr_src)
    scores = mask_gradient_prune_scores(model, loader, None, grad_function="logit", answer_function="avg_diff",
                                        mask_val=0.0, ablation_type=AblationType.RESAMPLE, clean_corrupt="corrupt")
    eap = sorted([e.src.name, e.dest.name, float(e.prune_score(scores))] for e in model.edges)

    circuits = []
    for i in range(len(f["names"])):
        keep = set(f[f"circuit{i}"].tolist())
        unknown = keep - {e.name for e in model.edges}
        assert not unknown, sorted(unknown)[:5]
        indicator = {name: torch.zeros_like(s) for name, s in scores.items()}
        for e in model.edges:
            if e.name in keep:
                indicator[e.dest.module_name][e.patch_idx] = 1.0
        # TREE_PATCH: run the clean prompts, patch the edges outside the top-|score| edges (the circuit)
        out = run_circuits(model, loader, [len(keep)], indicator, patch_type=PatchType.TREE_PATCH,
                           ablation_type=AblationType.RESAMPLE)
        assert list(out) == [len(keep)], (list(out), len(keep))
        circuits.append(metric(out[len(keep)][batch.key]))

    out = dict(eap=eap, circuits=circuits, names=f["names"].tolist(), clean=clean_m, corrupt=corrupt_m,
               n_edges=len(model.edges), tl_vs_hf_max_logit_diff=gap,
               versions={p: version(p) for p in PACKAGES} | {"python": platform.python_version()})
    with open(sys.argv[3], "w") as fh:
        json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
