"""Peer side of the attribution-graph check (bench_graph_peer.py), run with circuit-tracer's own
interpreter (.venv-bench-ct, requirements-peers-ct.txt): a GPT-2-shaped TransformerLens model built
from a local HF checkpoint (no hub), our exported transcoder set loaded with circuit-tracer's loader,
and circuit_tracer.attribute on the given token ids (BOS already first, so nothing is prepended).

    .venv-bench-ct/bin/python scripts/bench/peers/ct_graph.py HF_DIR SET_DIR TOKENS OUT.npz BATCH REPEATS

TOKENS: comma-separated ids. Settings are circuit-tracer's own (fold_ln=False, no centring). Saves
the graph's arrays (of the last run), the TL model's logits' agreement with HF's, the
wall and CPU seconds of each run (model load excluded) and the versions. Never imported
by the library.
"""

import sys
import time
from importlib.metadata import version

import numpy as np
import torch
from circuit_tracer import attribute
from circuit_tracer.replacement_model import ReplacementModel
from circuit_tracer.transcoder import load_transcoder_set
from transformer_lens import HookedTransformerConfig
from transformer_lens.pretrained.weight_conversions import convert_gpt2_weights
from transformers import AutoTokenizer, GPT2LMHeadModel


def tl_config(hf) -> HookedTransformerConfig:
    c = hf.config
    return HookedTransformerConfig(
        n_layers=c.n_layer, d_model=c.n_embd, n_heads=c.n_head, d_head=c.n_embd // c.n_head, d_mlp=4 * c.n_embd,
        d_vocab=c.vocab_size, n_ctx=c.n_positions, act_fn=c.activation_function, eps=c.layer_norm_epsilon,
        normalization_type="LN", positional_embedding_type="standard", original_architecture="GPT2LMHeadModel",
        model_name="gpt2-random", default_prepend_bos=True, device="cpu", dtype=torch.float32)


def build(hf_dir: str, set_dir: str):
    hf = GPT2LMHeadModel.from_pretrained(hf_dir, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(hf_dir)
    cfg = tl_config(hf)
    tcs = load_transcoder_set({L: f"{set_dir}/layer_{L}.safetensors" for L in range(cfg.n_layers)}, scan="graph-peer",
                              feature_input_hook="mlp.hook_in", feature_output_hook="hook_mlp_out",
                              device=torch.device("cpu"), dtype=torch.float32, lazy_encoder=False,
                              lazy_decoder=False)  # in memory, as ours
    model = ReplacementModel.from_config(cfg, tcs, backend="transformerlens", tokenizer=tok)
    # from_config wrapped each MLP (ReplacementMLP.old_mlp) and the unembedding (.old_unembed)
    sd = {k.replace(".mlp.", ".mlp.old_mlp.").replace("unembed.", "unembed.old_unembed."): v.detach().clone()
          for k, v in convert_gpt2_weights(hf, cfg).items()}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected, unexpected
    with torch.no_grad():
        model.unembed.old_unembed.b_U.zero_()  # GPT-2's lm_head has no bias
    left = [k for k in missing if not k.endswith(("IGNORE", ".mask", "b_U")) and not k.startswith("transcoders.")]
    assert not left, f"weights not loaded: {left}"
    return hf, model


def main() -> None:
    hf_dir, set_dir, ids, out = sys.argv[1:5]
    batch, repeats = int(sys.argv[5]), int(sys.argv[6])
    torch.set_num_threads(2)
    tokens = torch.tensor([int(t) for t in ids.split(",")])
    t0 = time.perf_counter()
    hf, model = build(hf_dir, set_dir)
    load_s = time.perf_counter() - t0
    with torch.no_grad():
        logit_diff = float((model(tokens[None]) - hf(tokens[None]).logits).abs().max())
    print(f"circuit-tracer model: max |TL logits - HF logits| = {logit_diff:.2e}", flush=True)

    times = []  # (wall, process CPU) seconds of each run
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        g = attribute(tokens, model, max_n_logits=10, desired_logit_prob=0.95, batch_size=batch,
                      max_feature_nodes=None)
        times.append((time.perf_counter() - t, time.process_time() - c))
    print(f"circuit-tracer attribute: wall {[round(w, 2) for w, _ in times]} s, {len(g.selected_features)} "
          f"features, {g.adjacency_matrix.shape[0]} nodes", flush=True)
    assert torch.equal(g.input_tokens.cpu(), tokens), "circuit-tracer changed the tokens"
    np.savez(out, adjacency=g.adjacency_matrix.numpy(), active_features=g.active_features.numpy(),
             selected_features=g.selected_features.numpy(), activation_values=g.activation_values.numpy(),
             logit_tokens=np.array([t.vocab_idx for t in g.logit_targets]),
             logit_probs=g.logit_probabilities.numpy(), input_tokens=g.input_tokens.numpy(),
             times=np.array(times), load_s=load_s, logit_diff=logit_diff,
             versions=np.array([f"{p}=={version(p)}" for p in ("circuit-tracer", "torch", "transformer-lens",
                                                                "transformers")]))


if __name__ == "__main__":
    main()
