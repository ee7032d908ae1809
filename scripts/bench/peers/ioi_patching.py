"""Peer side of bench_ioi.py, run with the peers' own interpreter (.venv-bench-tl):
transformer-lens 4.3's `patching.get_act_patch_resid_pre` on the same model and prompts.

    .venv-bench-tl/bin/python scripts/bench/peers/ioi_patching.py MODEL_DIR INPUTS_JSON

INPUTS_JSON (written by bench_ioi.py): clean_tokens, corrupted_tokens ([n, T] ids), io_tok,
s_tok ([n]), clean_ld and corrupted_ld (the mean logit differences that normalise the metric),
threads, device. Denoising: base = corrupted prompts, patches from the clean run's cache.
The model is booted as a TransformerBridge over the HF model without weight processing
(no fold_ln / centering), so its numerics are those of the HF forward.

Prints one JSON line {"seconds": wall time of the patching call, "result": [layers][positions]
normalised logit difference}. Never imported by the library: peers stay out of the runtime path.
"""

import json
import os
import sys
import time

os.environ.setdefault("TQDM_DISABLE", "1")  # the helper wraps its loop in tqdm

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def main():
    model_dir, inputs = sys.argv[1], json.loads(open(sys.argv[2]).read())
    torch.set_num_threads(inputs["threads"])
    device = inputs["device"]
    clean, corrupted = (torch.tensor(inputs[k], device=device) for k in ("clean_tokens", "corrupted_tokens"))
    io, s = (torch.tensor(inputs[k], device=device) for k in ("io_tok", "s_tok"))
    clean_ld, corrupted_ld = inputs["clean_ld"], inputs["corrupted_ld"]

    from transformer_lens.model_bridge import TransformerBridge
    from transformer_lens.patching import get_act_patch_resid_pre

    tok = AutoTokenizer.from_pretrained(model_dir)
    hf = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    bridge = TransformerBridge.boot_transformers(model_dir, hf_model=hf, tokenizer=tok, device=device)
    rows = torch.arange(len(io), device=device)

    def metric(logits):  # normalised mean logit difference IO - S at the end position
        ld = (logits[rows, -1, io] - logits[rows, -1, s]).mean()
        return (ld - corrupted_ld) / (clean_ld - corrupted_ld)

    with torch.no_grad():
        _, cache = bridge.run_with_cache(clean, names_filter=lambda name: name.endswith("hook_resid_pre"))
        bridge(corrupted)  # warm-up
        sync()
        t0 = time.perf_counter()
        result = get_act_patch_resid_pre(bridge, corrupted, cache, metric)
        sync()
        seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "result": result.float().cpu().tolist()}))


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
