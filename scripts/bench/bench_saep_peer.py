"""Peer check of sparse probing under sae-probes' protocol (issue 16): interventions.evals.probing_saep
against sae-probes 0.4.2's own selection and probe code (its environment, .venv-bench-saeprobes), on the
same last-token features and the same balanced one-vs-rest tasks of sae-probes' own datasets.

    python scripts/bench/bench_saep_peer.py [--sae runs/bench/eval_suite/topk/sae] [--sets saep:113_movie_sent,...]

The SAE defaults to the TopK SAE of bench_eval_suite.py (SmolLM2 layer 15, 4,096 latents, k 32).
Writes runs/bench/saep_peer.json: per set, ours and sae-probes' test AUC and accuracy for every k, and
the largest difference over all of them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from _bench import BENCH_DIR, PEER_ENV, REPO, bench_model, bench_parser, cpu_model, peak_rss_mb, write_results

from mechinterp.formats.sae import CFG

SETS = "saep:113_movie_sent,saep:161_agnews_0,saep:5_hist_fig_ismale,saep:154_athlete_sport_football"


def main() -> None:
    p = bench_parser(__doc__.splitlines()[0])
    p.add_argument("--sae", default=str(BENCH_DIR / "eval_suite" / "topk" / "sae"))
    p.add_argument("--sets", default=SETS)
    p.add_argument("--n_train", type=int, default=1000)
    p.add_argument("--n_test", type=int, default=400)
    a = p.parse_args()
    peer_py = REPO / ".venv-bench-saeprobes" / "bin" / "python"
    for path, fix in ((Path(a.sae) / CFG, "run scripts/bench/bench_eval_suite.py first, or give --sae"),
                      (peer_py, "run make peers")):
        if not path.exists():
            sys.exit(f"error: {path} is missing: {fix}")

    import numpy as np

    from interventions.evals.labelled import load_labelled
    from interventions.evals.probing import balanced_tasks
    from interventions.evals.probing_saep import last_token_features, probe_set
    from interventions.sae import load_sae

    model, sae = bench_model(a.model), load_sae(a.sae)
    hook = sae.check_fits(model)
    ours, arrays, ours_s = {}, {}, 0.0
    for name in a.sets.split(","):
        data = load_labelled(name, a.n_train, a.n_test, a.seed)
        (raw_tr, lat_tr), (raw_te, lat_te) = (last_token_features(model, sae, t, hook)
                                              for t in (data.train_texts, data.test_texts))
        t0 = time.perf_counter()
        ours[name] = probe_set(data, (raw_tr, raw_te), (lat_tr, lat_te), seed=a.seed)
        ours_s += time.perf_counter() - t0
        arrays.update({f"{name}/train_raw": raw_tr, f"{name}/test_raw": raw_te, f"{name}/train_lat": lat_tr,
                       f"{name}/test_lat": lat_te, f"{name}/train_y": data.train_y, f"{name}/test_y": data.test_y,
                       f"{name}/classes": np.array(data.classes)})
        for c, _, tr, te in balanced_tasks(data, a.seed):
            arrays.update({f"{name}/task{c}_train": tr, f"{name}/task{c}_test": te})
    features = BENCH_DIR / "saep_peer_features.npz"
    np.savez(features, **arrays)
    t0 = time.perf_counter()
    subprocess.run([str(peer_py), str(REPO / "scripts/bench/peers/saeprobes_probing.py"), str(features),
                    str(BENCH_DIR / "saep_peer_theirs.json")], check=True, env=PEER_ENV)
    theirs_s = time.perf_counter() - t0
    features.unlink()
    theirs = json.loads((BENCH_DIR / "saep_peer_theirs.json").read_text())

    rows, worst = [], 0.0
    for name in ours:
        keys = [k for k in theirs[name] if k in ours[name]]
        diff = max(abs(ours[name][k] - theirs[name][k]) for k in keys)
        worst = max(worst, diff)
        same_latent = [r["sae_top_1_latent"] for r in ours[name]["per_class"].values()] == theirs[name]["top_1_latents"]
        rows.append(dict(measure=f"{name}: top-1 / top-16 latent AUC, raw logreg AUC (ours | sae-probes')",
                         value=" / ".join(f"{ours[name][k]:.3f}" for k in ("sae_top_1_auc", "sae_top_16_auc", "llm_full_auc"))
                         + " | " + " / ".join(f"{theirs[name][k]:.3f}" for k in ("sae_top_1_auc", "sae_top_16_auc",
                                                                                    "llm_full_auc")),
                         goal=f"max |diff| {diff:.1e}, same top-1 latents: {same_latent}"))
    rows.append(dict(measure="largest |ours - sae-probes'| over sets, k, AUC and accuracy", value=f"{worst:.1e}",
                     goal="agreement"))
    rows.append(dict(measure="probe time s, ours (also k-sparse probes on raw dimensions) / sae-probes'",
                     value=f"{ours_s:.0f} / {theirs_s:.0f}", goal=""))
    write_results("saep_peer", rows, {"cpu": cpu_model(), "peak_rss_mb": round(peak_rss_mb()), "sae": a.sae,
                                      "ours": ours, "theirs": theirs})


if __name__ == "__main__":
    main()
