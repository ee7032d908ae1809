"""Peer side of bench_models.py, run with the peers' own interpreter (.venv-bench-tl):
transformer-lens 4.3 and nnsight capture the same mid-layer site on the same batches.

    .venv-bench-tl/bin/python scripts/bench/peers/capture.py MODEL_DIR LAYER BATCH CTX REPEATS

Prints one JSON line {"transformer_lens": tokens/s, "nnsight": tokens/s}. Never imported by
the library: peers stay out of the runtime path.
"""

import json
import sys

import torch
from _bench import time_call
from transformers import AutoModelForCausalLM, AutoTokenizer


def main():
    model_dir, layer, batch, ctx, repeats = sys.argv[1], *map(int, sys.argv[2:])
    torch.set_num_threads(2)
    tok = AutoTokenizer.from_pretrained(model_dir)
    tokens = torch.randint(100, 40000, (batch, ctx), generator=torch.Generator().manual_seed(0))
    out = {}

    from transformer_lens.model_bridge import TransformerBridge

    hf = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    bridge = TransformerBridge.boot_transformers(model_dir, hf_model=hf, tokenizer=tok, device="cpu")
    name = f"blocks.{layer}.hook_resid_post"

    def tl():
        with torch.no_grad():
            _, cache = bridge.run_with_cache(tokens, names_filter=name, stop_at_layer=layer + 1)
        assert cache[name].shape[:2] == tokens.shape
    out["transformer_lens"] = batch * ctx / time_call(tl, repeats)
    del hf

    from nnsight import LanguageModel

    hf = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    lm = LanguageModel(hf, tokenizer=tok)

    def nn():
        with torch.no_grad(), lm.trace(tokens) as tracer:
            saved = lm.model.layers[layer].output.save()
            tracer.stop()
        act = saved[0] if isinstance(saved, tuple) else saved
        assert act.shape[:2] == tokens.shape
    out["nnsight"] = batch * ctx / time_call(nn, repeats)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
