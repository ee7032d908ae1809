"""Peer side of the ground-truth metrics (sae_jax/evals/ground_truth.py), run with sae-lens's own
interpreter (.venv-bench-sae): sae_lens.synthetic's MCC, uniqueness, classification metrics,
shrinkage and explained variance of our exported SAE on the same samples.

    .venv-bench-sae/bin/python scripts/bench/peers/sl_ground_truth.py SAE_DIR SAMPLES.npz

SAMPLES.npz holds x [n, d], coef [n, n_features] and features [n_features, d]. Prints one JSON
line. Never imported by the library.
"""

import json
import sys

import numpy as np
import torch


def main():
    from sae_lens import SAE
    from sae_lens.evals import ExplainedVarianceCalculator
    from sae_lens.synthetic.evals import (
        ShrinkageCalculator,
        compute_classification_metrics,
        feature_uniqueness,
        mean_correlation_coefficient,
    )

    sae = SAE.load_from_disk(sys.argv[1], device="cpu")
    data = np.load(sys.argv[2])
    x, coef, features = (torch.from_numpy(data[k]) for k in ("x", "coef", "features"))
    with torch.no_grad():
        latents = sae.encode(x)
        recon = sae.decode(latents)
        shrink, ev = ShrinkageCalculator(), ExplainedVarianceCalculator()
        shrink.add_batch(recon, x)
        ev.add_batch(recon, x)
        cls = compute_classification_metrics(latents, coef, sae.W_dec, features)
        out = dict(mcc=mean_correlation_coefficient(sae.W_dec, features), uniqueness=feature_uniqueness(sae.W_dec, features),
                   latent_precision=cls.precision, latent_recall=cls.recall, latent_f1=cls.f1_score,
                   latent_accuracy=cls.accuracy, shrinkage=shrink.compute(), explained_variance=ev.compute(),
                   l0=float((latents != 0).float().sum(1).mean()))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
