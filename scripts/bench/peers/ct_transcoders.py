"""Peer side of the circuit-tracer export check, run with circuit-tracer's own interpreter
(.venv-bench-ct, requirements-peers-ct.txt): load a transcoder set we wrote (mechinterp/formats/transcoder_set.py)
with circuit-tracer's loader, encode and decode the rows of an .npy file with it, and save both.

    .venv-bench-ct/bin/python scripts/bench/peers/ct_transcoders.py SET_DIR LAYER ROWS.npy OUT.npz

The library side compares them with our numpy reference. Never imported by the library.
"""

import sys

import numpy as np
import torch
from circuit_tracer.transcoder import load_transcoder_set


def main() -> None:
    set_dir, layer, rows, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    ts = load_transcoder_set({layer: f"{set_dir}/layer_{layer}.safetensors"} if layer == 0 else
                             {i: f"{set_dir}/layer_{i}.safetensors" for i in range(layer + 1)},
                             scan="check", feature_input_hook="mlp.hook_in", feature_output_hook="hook_mlp_out",
                             dtype=torch.float32)
    x = torch.from_numpy(np.load(rows))
    with torch.no_grad():
        f = ts[layer].encode(x)
        y = ts[layer].decode(f)
    np.savez(out, latents=f.numpy(), recon=y.numpy())


if __name__ == "__main__":
    main()
