"""Peer check of interventions/evals/probing_saep.py, run with sae-probes' own interpreter
(.venv-bench-saeprobes): sae-probes 0.4.2's own selection and probe code (run_sae_evals.get_sorted_indices
with mean_act_normalization, utils_training.find_best_reg: C by validation AUC) on the last-token
features and the one-vs-rest tasks that we used.

    .venv-bench-saeprobes/bin/python scripts/bench/peers/saeprobes_probing.py IN.npz OUT.json

IN.npz keys are '<set>/<field>': train_raw [n, d], test_raw, train_lat [n, d_sae], test_lat,
train_y and test_y (int class ids), classes (names), and per class index c: task<c>_train and
task<c>_test (rows of that class's balanced one-vs-rest task). For each set: the mean over classes of
sae_top_k_auc / sae_top_k (test ROC AUC / accuracy of the probe on the k best latents, k = 1, 2, 4, 8,
16) and llm_full_auc / llm_full (sae-probes' "logreg" baseline on every raw dimension), seed 42 as
run_sae_eval's default.

sae-probes' package imports sae-lens and transformer-lens (to build models from the Hugging Face
hub) and a transformers tokenizer type at the top of modules whose probe functions use none of them:
empty stand-ins are registered under those names so that its probe code imports offline.
"""

import json
import platform
import sys
import types
from importlib.metadata import version

import numpy as np
import torch

for module, names in (("sae_lens", ("SAE",)), ("transformer_lens", ("HookedTransformer",)),
                      ("transformers", ()), ("transformers.tokenization_utils_base", ("PreTrainedTokenizerBase",))):
    stand_in = types.ModuleType(module)
    for name in names:
        setattr(stand_in, name, type(name, (), {}))
    sys.modules[module] = stand_in

from sae_probes.run_sae_evals import get_sorted_indices, mean_act_normalization  # noqa: E402 (after the stand-in modules are in place)
from sae_probes.utils_training import find_best_reg  # noqa: E402 (after the stand-in modules are in place)

K_VALUES = (1, 2, 4, 8, 16)
SEED = 42
PACKAGES = ("sae-probes", "torch", "numpy", "scikit-learn", "pandas", "xgboost-cpu")


def probe_set(f, name: str) -> dict:
    g = {key.rsplit("/", 1)[1]: f[key] for key in f.files if key.rsplit("/", 1)[0] == name}
    per_class = []
    for c in range(len(g["classes"])):
        tr, te = g[f"task{c}_train"], g[f"task{c}_test"]
        ytr, yte = (g["train_y"][tr] == c).astype(int), (g["test_y"][te] == c).astype(int)
        full = find_best_reg(g["train_raw"][tr], ytr, g["test_raw"][te], yte, parallel=False, seed=SEED).metrics
        row = {"llm_full_auc": full.test_auc, "llm_full": full.test_acc}
        xtr, xte = g["train_lat"][tr], g["test_lat"][te]
        order = get_sorted_indices(torch.from_numpy(xtr), torch.from_numpy(ytr), mean_act_normalization).numpy()
        for k in K_VALUES:
            m = find_best_reg(xtr[:, order[:k]], ytr, xte[:, order[:k]], yte, parallel=False, seed=SEED).metrics
            row[f"sae_top_{k}_auc"], row[f"sae_top_{k}"] = m.test_auc, m.test_acc
        row["sae_top_1_latent"] = int(order[0])
        per_class.append(row)
    out = {k: float(np.mean([r[k] for r in per_class])) for k in per_class[0] if k != "sae_top_1_latent"}
    out["top_1_latents"] = [r["sae_top_1_latent"] for r in per_class]
    return out


def main():
    torch.set_num_threads(2)
    f = np.load(sys.argv[1])
    out = {name: probe_set(f, name) for name in sorted({key.rsplit("/", 1)[0] for key in f.files})}
    out["versions"] = {p: version(p) for p in PACKAGES} | {"python": platform.python_version()}
    with open(sys.argv[2], "w") as fh:
        json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
