"""Peer check of interventions/evals/probing.py, run with SAEBench's own interpreter
(.venv-bench-saebench): SAEBench's sparse probing (sae-bench 0.6.0's own code,
probe_training.train_probe_on_activations) on the pooled features that we computed.

    .venv-bench-saebench/bin/python scripts/bench/peers/saebench_probing.py IN.npz OUT.json

IN.npz keys are '<set>/<field>' (the set name may contain '/'; the field follows the last one):
train_raw [n, d], test_raw, train_lat [n, d_sae], test_lat, train_y and test_y (int class ids),
classes (names, indexed by the ids). For each set and k: SAEBench's balanced one-vs-rest probes on
the k latents (sae_top_k) and the k raw dimensions (llm_top_k) of largest |mean difference|, the mean
test accuracy over classes as in its run_eval_single_dataset. torch and random are seeded with 42
(SAEBench's default) before each call; its negatives come from torch.randperm, so they differ from
ours by sampling. A set with too few negatives for SAEBench's balance assertion gets {"error": ...}.
jaxtyping's runtime checks are off (JAXTYPING_DISABLE): they reject classes of unequal size and
change no number. Writes {set: {"sae_top_1": acc, ..., "llm_top_1": acc, ...}, "versions": {...}}.
"""

import contextlib
import json
import os
import platform
import random
import sys
from importlib.metadata import version

import numpy as np
import torch

os.environ["JAXTYPING_DISABLE"] = "1"  # read when sae_bench imports jaxtyping
from sae_bench.evals.sparse_probing.probe_training import train_probe_on_activations  # noqa: E402 (JAXTYPING_DISABLE must be set first)

K_VALUES = (1, 2, 5, 20)
SEED = 42
PACKAGES = ("sae-bench", "torch", "numpy", "scikit-learn", "beartype", "jaxtyping")
FIELDS = ("train_raw", "test_raw", "train_lat", "test_lat", "train_y", "test_y", "classes")


def by_class(x: np.ndarray, y: np.ndarray, classes) -> dict[str, torch.Tensor]:
    """SAEBench's input format: class name -> that class's rows (float32), classes in order."""
    x = torch.from_numpy(np.asarray(x, np.float32))
    return {str(name): x[torch.from_numpy(y == c)] for c, name in enumerate(classes) if (y == c).any()}


def probe(train: dict, test: dict, k: int) -> float:
    random.seed(SEED)
    torch.manual_seed(SEED)
    with contextlib.redirect_stdout(sys.stderr):  # SAEBench prints two lines per class
        _, accs = train_probe_on_activations(train, test, select_top_k=k)
    return sum(accs.values()) / len(accs)


def probe_set(f, name: str) -> dict:
    g = {field: f[f"{name}/{field}"] for field in FIELDS}
    ytr, yte = g["train_y"].astype(int), g["test_y"].astype(int)
    out = {}
    for key, feats in (("sae", "lat"), ("llm", "raw")):
        train = by_class(g[f"train_{feats}"], ytr, g["classes"])
        test = by_class(g[f"test_{feats}"], yte, g["classes"])
        for k in K_VALUES:
            out[f"{key}_top_{k}"] = probe(train, test, k)
    return out


def main():
    torch.set_num_threads(2)
    f = np.load(sys.argv[1])
    out = {}
    for name in sorted({key.rsplit("/", 1)[0] for key in f.files}):
        try:
            out[name] = probe_set(f, name)
        except AssertionError:  # prepare_probe_data: fewer negatives than positives
            out[name] = {"error": "SAEBench's prepare_probe_data: too few negatives for a balanced task"}
    out["versions"] = {p: version(p) for p in PACKAGES} | {"python": platform.python_version()}
    with open(sys.argv[2], "w") as fh:
        json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
