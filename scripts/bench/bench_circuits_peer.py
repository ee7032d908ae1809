"""Peer check of edge attribution patching and exact edge patching (extract/circuits/scores.py) against
auto-circuit 1.0.1's own code (its environment, .venv-bench-ac: scripts/bench/peers/ac_eap.py), on the
tests' tiny random GPT-2 (tests/conftest.py::tiny_hf_model("gpt2"): 3 layers, 4 heads, d_model 64).

    .venv/bin/python scripts/bench/bench_circuits_peer.py [--seed 0] [--n 8] [--pos 10]

--model and --device are not used: the model is always that tiny GPT-2, on the CPU. Clean and corrupted
prompts are random tokens (as tests/unit/test_circuits.py), metric = logit 11 - logit 22 at the last position.
Checks: the two edge graphs are the same (262 edges), every edge's EAP score agrees, and the metric under
exact edge patching agrees for the empty and the full circuit and the top 5, 20, 50, 100 edges by |our
score| (pruned). Writes runs/bench/circuits_peer.json (rows, both sides' scores, metrics and versions);
the model goes to runs/bench/circuits_peer/model.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from _bench import BENCH_DIR, PEER_ENV, REPO, bench_parser, cpu_model, peak_rss_mb, write_results

ANSWER, WRONG = 11, 22
TOP = (5, 20, 50, 100)


def _metric(logits, part):
    return logits[:, -1, ANSWER] - logits[:, -1, WRONG]


def ac_names(graph) -> tuple[list[str], list[str]]:
    """auto-circuit's names of our upstream nodes and downstream inputs (its factorized TransformerLens graph:
    heads write at attn.hook_result, inputs are hook_{q,k,v}_input / hook_mlp_in / the last resid_post)."""
    up, down = ["Resid Start"], []
    for layer in range(graph.n_layers):
        up += [f"A{layer}.{h}" for h in range(graph.n_heads)] + [f"MLP {layer}"]
        down += [f"A{layer}.{h}.{c}" for c in "QKV" for h in range(graph.n_heads)] + [f"MLP {layer}"]
    return up, down + ["Resid End"]


def main() -> None:
    p = bench_parser(__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=8, help="prompt pairs")
    p.add_argument("--pos", type=int, default=10, help="tokens per prompt")
    a = p.parse_args()
    peer_py = REPO / ".venv-bench-ac" / "bin" / "python"
    if not peer_py.exists():
        sys.exit(f"error: {peer_py} is missing: run make peers")

    import numpy as np
    import torch
    from scipy.stats import pearsonr, spearmanr

    from extract.circuits.edge_graph import CircuitGraph
    from extract.circuits.scores import edge_scores, patch_edges
    from extract.circuits.split import node_writes
    from extract.hooked import HookedModel
    from extract.models import gpt2_tokenizer
    from extract.tiny_models import tiny_hf_model

    torch.set_num_threads(2)
    out_dir = BENCH_DIR / "circuits_peer"
    hf, tok = tiny_hf_model("gpt2"), gpt2_tokenizer()
    hf.save_pretrained(out_dir / "model")
    model = HookedModel(hf, tok, name="tiny-gpt2", bos_token_id=tok.eos_token_id)
    g = torch.Generator().manual_seed(a.seed)
    clean, corrupt = (torch.randint(0, 50000, (a.n, a.pos), generator=g) for _ in range(2))
    graph = CircuitGraph.of(model)

    t0 = time.perf_counter()
    scores = edge_scores(model, graph, clean, corrupt, _metric, steps=1)
    circuits = {"empty": torch.zeros_like(graph.valid)}
    circuits |= {f"top {n}": graph.top_edges(scores, n) for n in TOP}
    circuits["full"] = graph.valid.clone()
    removed = torch.stack([graph.valid & ~c for c in circuits.values()])
    ours_patched = patch_edges(model, graph, clean, node_writes(model, graph, corrupt), removed, _metric).mean(1).tolist()
    with torch.no_grad():
        ours_clean, ours_corrupt = (float(_metric(model.run_with_hooks(t), None).mean()) for t in (clean, corrupt))
    ours_s = time.perf_counter() - t0

    up, down = ac_names(graph)
    arrays = dict(clean=clean.numpy(), corrupt=corrupt.numpy(), answer=np.array([ANSWER]), wrong=np.array([WRONG]),
                  names=np.array(list(circuits)))
    for i, c in enumerate(circuits.values()):
        arrays[f"circuit{i}"] = np.array([f"{up[u]}->{down[v]}" for u, v in c.nonzero().tolist()], dtype=str)
    np.savez(out_dir / "in.npz", **arrays)
    t0 = time.perf_counter()
    subprocess.run([str(peer_py), str(REPO / "scripts/bench/peers/ac_eap.py"), str(out_dir / "in.npz"),
                    str(out_dir / "model"), str(out_dir / "theirs.json")], check=True,
                   env=PEER_ENV | {"TQDM_DISABLE": "1"})  # auto-circuit's progress bars
    theirs_s = time.perf_counter() - t0
    theirs = json.loads((out_dir / "theirs.json").read_text())

    up_idx, down_idx = {n: i for i, n in enumerate(up)}, {n: i for i, n in enumerate(down)}
    their_scores, seen = torch.zeros_like(scores), torch.zeros_like(graph.valid)
    for src, dest, s in theirs["eap"]:
        u, v = up_idx[src], down_idx[dest]
        their_scores[u, v], seen[u, v] = s, True
    same_edges = bool((seen == graph.valid).all()) and len(theirs["eap"]) == graph.n_edges
    ours_flat, their_flat = scores[graph.valid].double(), their_scores[graph.valid].double()
    # auto-circuit's score is d(-metric)/d mask = (clean - corrupted source output) . d metric / d input: minus ours
    sign = 1.0 if float(ours_flat @ their_flat) >= 0 else -1.0
    rel = float((ours_flat - sign * their_flat).abs().max() / ours_flat.abs().max())
    pearson, spearman = pearsonr(ours_flat, sign * their_flat)[0], spearmanr(ours_flat, sign * their_flat)[0]

    rows = [dict(measure="edges (ours | auto-circuit's), same edge set", value=f"{graph.n_edges} | {len(theirs['eap'])}",
                 goal=f"equal: {same_edges}"),
            dict(measure="EAP score sign, auto-circuit's vs ours", value="same" if sign > 0 else "opposite",
                 goal="compared as ours = " + ("+" if sign > 0 else "-") + "auto-circuit's"),
            dict(measure="EAP max |ours - auto-circuit's| / max |ours|", value=f"{rel:.1e}", goal="< 1e-5"),
            dict(measure="EAP Pearson / Spearman", value=f"{pearson:.7f} / {spearman:.7f}", goal="1")]
    worst = 0.0
    for name, c, mine, other in zip(circuits, circuits.values(), ours_patched, theirs["circuits"]):
        worst = max(worst, abs(mine - other))
        rows.append(dict(measure=f"metric, circuit {name} ({int(c.sum())} edges): ours | auto-circuit's",
                         value=f"{mine:.5f} | {other:.5f}", goal=f"|diff| {abs(mine - other):.1e}"))
    rows.append(dict(measure="metric, clean / corrupted run: ours | auto-circuit's",
                     value=f"{ours_clean:.5f} / {ours_corrupt:.5f} | {theirs['clean']:.5f} / {theirs['corrupt']:.5f}",
                     goal=f"|diff| {max(abs(ours_clean - theirs['clean']), abs(ours_corrupt - theirs['corrupt'])):.1e}"))
    rows.append(dict(measure="largest |ours - auto-circuit's| patched metric", value=f"{worst:.1e}", goal="< 1e-4"))
    rows.append(dict(measure="TransformerLens vs transformers max |logit diff|",
                     value=f"{theirs['tl_vs_hf_max_logit_diff']:.1e}", goal="< 1e-4"))
    rows.append(dict(measure="time s, ours / auto-circuit's (its with model load)", value=f"{ours_s:.1f} / {theirs_s:.1f}",
                     goal=""))
    write_results("circuits_peer", rows, {
        "cpu": cpu_model(), "peak_rss_mb": round(peak_rss_mb()), "seed": a.seed, "versions": theirs["versions"],
        "ours": {"eap": {f"{up[u]}->{down[v]}": float(scores[u, v]) for u, v in graph.valid.nonzero().tolist()},
                 "circuits": dict(zip(circuits, ours_patched)), "clean": ours_clean, "corrupt": ours_corrupt},
        "theirs": theirs})


if __name__ == "__main__":
    main()
