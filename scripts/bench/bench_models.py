"""Foundation benchmark: capture with stop_at_layer vs the full forward and vs peers,
hook overhead, and load time / peak memory of the default model.

    python scripts/bench/bench_models.py [--model M] [--batch 8] [--ctx 128] [--repeats 5]

Peers (transformer-lens 4.3, nnsight) run from their own environment .venv-bench-tl
(`make bench-peers` creates it); without it their rows say so.
"""

import json
import subprocess
import sys

from _bench import PEER_ENV, REPO, add_batch_flags, bench_model, bench_parser, time_call, write_results

PEER_PYTHON = REPO / ".venv-bench-tl" / "bin" / "python"

LOAD_PROBE = """
import json, sys, time
from _bench import peak_rss_mb
t0 = time.perf_counter()
import torch, transformers
from extract.models import load_model
t1 = time.perf_counter()
rss0 = peak_rss_mb()
m = load_model(sys.argv[1], device="cpu")
t2 = time.perf_counter()
weights = sum(p.numel() * 4 for p in m.model.parameters())
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "rss_after_import_mb": rss0,
                  "peak_rss_mb": peak_rss_mb(), "fp32_weights_mb": weights / 2**20}))
"""


def main() -> None:
    p = bench_parser(__doc__.splitlines()[0])
    add_batch_flags(p)
    args = p.parse_args()

    import torch

    from extract.models import REGISTRY, converted_dir

    model = bench_model(args.model)
    layer = model.n_layers // 2
    site = f"blocks.{layer}.hook_resid_post"
    tokens = torch.randint(100, 40000, (args.batch, args.ctx), generator=torch.Generator().manual_seed(0))
    n_tok = tokens.numel()
    rows = []

    def tps(fn):
        with torch.no_grad():
            return n_tok / time_call(fn, repeats=args.repeats)

    full = tps(lambda: model.model(input_ids=tokens, use_cache=False))
    ours = tps(lambda: model.run_with_cache(tokens, names=[site], stop_at_layer=layer + 1))
    rows.append({"measure": "HF full forward with logits, tokens/s", "value": full, "goal": ""})
    rows.append({"measure": f"run_with_cache({site}, stop_at_layer={layer + 1}), tokens/s", "value": ours, "goal": ""})
    rows.append({"measure": "capture with stop_at_layer / full forward", "value": ours / full, "goal": ">= 2"})

    spec = REGISTRY.get(args.model)
    if PEER_PYTHON.exists() and spec is not None and spec.source == "gguf":
        proc = subprocess.run([str(PEER_PYTHON), str(REPO / "scripts/bench/peers/capture.py"), str(converted_dir(spec)),
                               str(layer), str(args.batch), str(args.ctx), str(args.repeats)],
                              capture_output=True, text=True, env=PEER_ENV)
        if proc.returncode == 0:
            peers = json.loads(proc.stdout.strip().splitlines()[-1])
            for name, value in peers.items():
                rows.append({"measure": f"{name} same capture, tokens/s", "value": value, "goal": ""})
                rows.append({"measure": f"same capture: ours / {name}", "value": ours / value, "goal": ">= 1"})
        else:
            rows.append({"measure": "peers (transformer-lens, nnsight)", "value": "failed",
                         "goal": proc.stderr.strip().splitlines()[-1][:80]})
    else:
        rows.append({"measure": "peers (transformer-lens, nnsight)", "value": "skipped",
                     "goal": "no .venv-bench-tl: run `make peers`"})

    # hook overhead: A/B interleaved so drift hits both sides alike
    noop = [(f"blocks.{L}.hook_resid_post", lambda a, hook: None) for L in range(model.n_layers)]
    plain_t, hooked_t = [], []
    with torch.no_grad():
        for _ in range(args.repeats):
            plain_t.append(time_call(lambda: model(tokens), repeats=1, warmup=0))
            hooked_t.append(time_call(lambda: model.run_with_hooks(tokens, hooks=noop), repeats=1, warmup=0))
    overhead = sorted(hooked_t)[len(hooked_t) // 2] / sorted(plain_t)[len(plain_t) // 2] - 1
    rows.append({"measure": f"run_with_hooks with a no-op hook on all {model.n_layers} layers / plain forward",
                 "value": 1 + overhead, "goal": "<= 1.05"})

    load = json.loads(subprocess.run([sys.executable, "-c", LOAD_PROBE, args.model], capture_output=True, text=True,
                                     cwd=REPO, check=True, env=PEER_ENV).stdout.strip().splitlines()[-1])
    rows.append({"measure": f"second load of the model after imports ({load['import_s']:.1f} s), seconds",
                 "value": load["load_s"], "goal": "<= 3"})
    rows.append({"measure": "peak RSS of the loading process / fp32 weights", "value":
                 load["peak_rss_mb"] / load["fp32_weights_mb"], "goal": "<= 2"})
    write_results("models", rows, {"model": args.model, "batch": args.batch, "ctx": args.ctx, "load": load,
                                   "threads": torch.get_num_threads()})


if __name__ == "__main__":
    main()
