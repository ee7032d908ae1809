"""Our attribution graphs against circuit-tracer 0.5.0's, entry by entry, and the time of each
(issue 14, item 9). One GPT-2-shaped model (default gpt2-random: random weights, real BPE), one
random JumpReLU transcoder set for all 12 layers (thresholds set for about 30 active latents per
token), written in our layout and exported to circuit-tracer's (mechinterp/formats/transcoder_set.py). The
peer (scripts/bench/peers/ct_graph.py, circuit-tracer's own interpreter) builds the same model in
TransformerLens from the saved HF weights and runs circuit_tracer.attribute; we run
interventions.attribution.attribute on the same token ids with the same batch size. The graphs are
matched node by node (features by (layer, pos, latent), errors by (layer, pos), tokens by pos,
logits by token id) and every adjacency entry is compared.

    python scripts/bench/bench_graph_peer.py [--prompt TEXT] [--batch 64] [--peer_python PATH]

Goals: the graphs agree (max |diff| / max |entry| <= 1e-4, same nodes, same logit targets);
speed: circuit-tracer's time / ours >= 1.5 (wall seconds of attribution, model load excluded).
Writes runs/bench/graph_peer.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _bench import PEER_ENV, REPO, bench_model, bench_parser, cpu_model, write_results
from safetensors.torch import save_file

from interventions.attribution.attribute import AttributionConfig, attribute
from interventions.replacement import load_transcoders
from mechinterp.formats.sae import CFG, WEIGHTS
from mechinterp.formats.transcoder_set import write_transcoder_set

PROMPT = "When Mary and John went to the store, then John gave a drink to"  # 15 tokens + BOS


def write_random_set(root: Path, model, d_sae: int, seed: int) -> None:
    """JumpReLU transcoders in our layout (layer_{L}/sae). mlp_in is a LayerNorm output of unit
    variance, so pre-activations are about N(0, 1): thresholds in [2.3, 2.5] leave ~1/130 active."""
    g, d = torch.Generator().manual_seed(seed), model.d_model
    for L in range(model.n_layers):
        w = {"W_enc": torch.randn(d, d_sae, generator=g) / d ** 0.5, "b_enc": torch.randn(d_sae, generator=g) * 0.1,
             "W_dec": torch.randn(d_sae, d, generator=g) / d_sae ** 0.5, "b_dec": torch.randn(d, generator=g) * 0.1,
             "threshold": 2.3 + 0.2 * torch.rand(d_sae, generator=g)}
        meta = {"hook_name": f"blocks.{L}.hook_mlp_in", "hook_name_out": f"blocks.{L}.hook_mlp_out",
                "model_name": model.name}
        cfg = {"architecture": "jumprelu_transcoder", "d_in": d, "d_sae": d_sae, "d_out": d,
               "apply_b_dec_to_input": False, **meta, "metadata": meta}
        out = root / f"layer_{L}" / "sae"
        out.mkdir(parents=True)
        save_file(w, str(out / WEIGHTS))
        (out / CFG).write_text(json.dumps(cfg))


def node_keys(kind_counts: tuple[int, int], features, logit_tokens) -> list[tuple]:
    """One key per node, in graph order: ('f', L, p, latent), ('e', L, p), ('t', p), ('l', token)."""
    n_layers, n_pos = kind_counts
    return ([("f", *map(int, f)) for f in features] + [("e", *divmod(i, n_pos)) for i in range(n_layers * n_pos)]
            + [("t", p) for p in range(n_pos)] + [("l", int(t)) for t in logit_tokens])


def timed(fn, repeats: int):
    """(last result, [(wall, process CPU) seconds of each run])."""
    times = []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        times.append((time.perf_counter() - t, time.process_time() - c))
    return out, times


def main() -> None:
    p = bench_parser(__doc__)
    p.set_defaults(model="gpt2-random")
    p.add_argument("--prompt", default=PROMPT)
    p.add_argument("--batch", type=int, default=64, help="targets per backward pass, both sides")
    p.add_argument("--d_sae", type=int, default=4096)
    p.add_argument("--repeats", type=int, default=2, help="runs of each side; the fastest counts")
    default_peer = REPO / ".venv-bench-ct/bin/python"
    p.add_argument("--peer_python", default=str(default_peer if default_peer.exists() else "/tmp/ct_env/bin/python"))
    a = p.parse_args()
    if not Path(a.peer_python).exists():
        print(f"skipped: no circuit-tracer interpreter at {a.peer_python} (build .venv-bench-ct from "
              "requirements-peers-ct.txt or pass --peer_python)")
        return
    load_before = os.getloadavg()[0]  # other work on the machine skews the timings: recorded beside them
    model = bench_model(a.model)  # torch threads fixed at 2, as the peer's
    if model.config.model_type != "gpt2":
        raise SystemExit(f"{a.model} is a {model.config.model_type}; the peer builds a GPT-2 (TransformerLens)")
    tokens = model.to_tokens(a.prompt)
    with tempfile.TemporaryDirectory(prefix="graph_peer_") as tmp:
        tmp = Path(tmp)
        write_random_set(tmp / "ours", model, a.d_sae, a.seed)
        tcs = load_transcoders(tmp / "ours")
        write_transcoder_set(tmp / "ct", {L: tmp / "ours" / f"layer_{L}" / "sae" for L in tcs}, scan="graph-peer")
        model.model.save_pretrained(tmp / "hf")
        model.tokenizer.save_pretrained(tmp / "hf")
        ids = ",".join(str(t) for t in tokens[0].tolist())
        subprocess.run([a.peer_python, "scripts/bench/peers/ct_graph.py", str(tmp / "hf"), str(tmp / "ct"), ids,
                        str(tmp / "ct.npz"), str(a.batch), str(a.repeats)], cwd=REPO, env=PEER_ENV, check=True)
        with np.load(tmp / "ct.npz") as z:
            ct = {k: z[k] for k in z.files}
    cfg = AttributionConfig(batch=a.batch, max_feature_nodes=10 ** 9)  # every active feature, as max_feature_nodes=None
    g, times = timed(lambda: attribute(model, tcs, tokens, cfg, progress=False), a.repeats)
    print(f"ours: wall {[round(w, 2) for w, _ in times]} s, {g.n_features} features, exactness {g.meta['exactness']}")
    (wall, cpu), (ct_wall, ct_cpu) = np.min(times, 0), ct["times"].min(0)

    # match the nodes; compare every adjacency entry between matched nodes
    shape = (g.n_layers, g.n_pos)
    ours = node_keys(shape, g.features, g.logit_tokens)
    theirs = node_keys(shape, ct["active_features"][ct["selected_features"]], ct["logit_tokens"])
    where = {k: i for i, k in enumerate(theirs)}
    common = [k for k in ours if k in where]
    io = np.array([i for i, k in enumerate(ours) if k in where])
    it = np.array([where[k] for k in common])
    A, B = g.adjacency[np.ix_(io, io)].astype(np.float64), ct["adjacency"][np.ix_(it, it)].astype(np.float64)
    diff = np.abs(A - B)
    scale = max(np.abs(A).max(), np.abs(B).max())
    worst = np.dstack(np.unravel_index(np.argsort(diff, axis=None)[::-1][:5], diff.shape))[0]
    for r, c in worst:
        print(f"  |diff| {diff[r, c]:.3e}  target {common[r]}  source {common[c]}  ours {A[r, c]:+.5e} "
              f"theirs {B[r, c]:+.5e}")
    fi = np.array([i for i, k in enumerate(ours[:g.n_features]) if k in where])
    act_diff = float(np.abs(g.activations[fi] - ct["activation_values"][ct["selected_features"]][it[:len(fi)]]).max())
    same_logits = np.array_equal(g.logit_tokens, ct["logit_tokens"])
    prob_diff = float(np.abs(g.logit_probs - ct["logit_probs"]).max()) if same_logits else float("nan")
    n_active = g.n_features / (g.n_pos - 1) / g.n_layers
    write_results("graph_peer", [
        {"measure": "max |ours - circuit-tracer| over adjacency entries", "value": f"{diff.max():.3e}", "goal": ""},
        {"measure": "  relative to the largest |entry|", "value": f"{diff.max() / scale:.3e}", "goal": "<= 1e-4"},
        {"measure": "entries compared (matched nodes squared)", "value": diff.size, "goal": ""},
        {"measure": "same nodes (ours / theirs / common)", "value": f"{len(ours) == len(theirs) == len(common)} "
                    f"({len(ours)} / {len(theirs)} / {len(common)})", "goal": "True"},
        {"measure": "same logit tokens; max |prob diff|", "value": f"{same_logits}; {prob_diff:.1e}", "goal": "True"},
        {"measure": "max |activation diff| of matched features", "value": f"{act_diff:.1e}", "goal": ""},
        {"measure": f"attribution wall s, ours / circuit-tracer (best of {a.repeats})",
         "value": f"{wall:.2f} / {ct_wall:.2f}", "goal": ""},
        {"measure": "speed-up in wall time, circuit-tracer / ours", "value": float(ct_wall / wall), "goal": ">= 1.5"},
        {"measure": "speed-up in process CPU time, circuit-tracer / ours", "value": float(ct_cpu / cpu), "goal": ""},
    ], dict(settings=vars(a), cpu=cpu_model(), n_pos=g.n_pos, n_features=g.n_features,
            active_latents_per_token_layer=n_active, logit_tokens=g.logit_tokens.tolist(),
            peer_logits_vs_hf=float(ct["logit_diff"]), peer_versions=ct["versions"].tolist(),
            exactness=g.meta["exactness"], max_abs_entry=float(scale), nonzero_entries=int((A != 0).sum()),
            our_torch=torch.__version__,
            times_ours=times, times_circuit_tracer=ct["times"].tolist(),
            load_average_1min_before_after=[load_before, os.getloadavg()[0]]))


if __name__ == "__main__":
    main()
