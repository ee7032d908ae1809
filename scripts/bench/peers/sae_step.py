"""Peer side of bench_sae.py, run with the peers' own interpreter (.venv-bench-sae): one training
step (forward, backward, optimiser) of sae-lens 6 and eai-sparsify on the same shapes.

    .venv-bench-sae/bin/python scripts/bench/peers/sae_step.py D_IN D_SAE BATCH K ITERS

Prints one JSON line of tokens/s. Never imported by the library.
"""

import json
import sys

import torch
from _bench import time_call


def sae_lens_step(sae, x, opt, coefficients):
    from sae_lens.saes.sae import TrainStepInput

    def step():
        out = sae.training_forward_pass(TrainStepInput(sae_in=x, coefficients=coefficients, dead_neuron_mask=None,
                                                       n_training_steps=0, is_logging_step=False))
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def sparsify_step(coder, x, opt):
    def step():
        out = coder(x)
        out.fvu.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def main():
    d_in, d_sae, batch, k, iters = map(int, sys.argv[1:6])
    torch.set_num_threads(2)
    torch.manual_seed(0)
    x = torch.randn(batch, d_in)
    out = {}

    from sae_lens.saes.standard_sae import StandardTrainingSAE, StandardTrainingSAEConfig
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig

    sae = StandardTrainingSAE(StandardTrainingSAEConfig(d_in=d_in, d_sae=d_sae, l1_coefficient=5.0))
    opt = torch.optim.Adam(sae.parameters(), lr=1e-4)
    out["sae_lens_standard"] = batch / time_call(sae_lens_step(sae, x, opt, {"l1": 5.0}), iters, best=True)
    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=d_in, d_sae=d_sae, k=k))
    opt = torch.optim.Adam(sae.parameters(), lr=1e-4)
    out["sae_lens_topk"] = batch / time_call(sae_lens_step(sae, x, opt, {}), iters, best=True)

    from sparsify import SaeConfig, SparseCoder
    from sparsify.sign_sgd import SignSGD

    coder = SparseCoder(d_in, SaeConfig(num_latents=d_sae, k=k), device="cpu", dtype=torch.float32)
    adam = sparsify_step(coder, x, torch.optim.Adam(coder.parameters(), lr=1e-4))
    out["sparsify_topk_adam"] = batch / time_call(adam, iters, best=True)
    signum = sparsify_step(coder, x, SignSGD(coder.parameters(), lr=1e-4))
    out["sparsify_topk_signum"] = batch / time_call(signum, iters, best=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
