"""Load test of the live feature page (127.0.0.1 only): idle connections held open while a burst
of concurrent requests arrives; every request's latency is recorded.

    python scripts/bench/bench_live_server.py [--sae runs/demo/sae/sae] [--requests 50] [--idle 5]

The burst mixes the page (GET /) and encodes of short texts (POST /api/encode, which run the model
one at a time). Goal (issue 18): every request answered within 2 s with 5 idle connections open.
Needs an SAE export (the demo's by default: run `make demo` first). Writes runs/bench/live_server.json.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _bench import bench_parser, cpu_model, peak_rss_mb, write_results

from mechinterp.formats.sae import CFG

TEXTS = ["The quick brown fox jumps over the lazy dog.", "Paris is the capital of France.",
         "When Mary and John went to the store, John gave a drink to", "def f(x): return x + 1"]


def request(port: int, i: int) -> tuple[str, int, float]:
    post = i % 5 == 0  # one in five is an encode
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    if post:
        conn.request("POST", "/api/encode", body=json.dumps({"text": TEXTS[i % len(TEXTS)]}),
                     headers={"Content-Type": "application/json"})
    else:
        conn.request("GET", "/")
    r = conn.getresponse()
    r.read()
    conn.close()
    return ("encode" if post else "page"), r.status, time.perf_counter() - t0


def main() -> None:
    p = bench_parser(__doc__)
    p.add_argument("--sae", default="runs/demo/sae/sae")
    p.add_argument("--requests", type=int, default=50)
    p.add_argument("--idle", type=int, default=5)
    a = p.parse_args()
    if not (Path(a.sae) / CFG).exists():
        raise SystemExit(f"error: no SAE export at {a.sae}; run `make demo` first or pass --sae DIR")
    import torch

    from interventions.browser.live import make_server
    from interventions.sae import SAERun

    torch.set_num_threads(2)
    model, sae = SAERun(sae=a.sae, device="cpu").load()
    server = make_server(model, sae, port=0)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    request(port, 0)  # warm: the first encode pays for lazy initialisation
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(a.idle)]
    idle[0].sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # one of them stops half-way through its headers
    order = list(range(a.requests))
    random.Random(0).shuffle(order)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(a.requests) as pool:
        rows = list(pool.map(lambda i: request(port, i), order))
    wall = time.perf_counter() - t0
    for s in idle:
        s.close()
    server.shutdown()
    lat = sorted(r[2] for r in rows)
    worst = {k: max(r[2] for r in rows if r[0] == k) for k in ("page", "encode")}
    n = f"{a.requests} concurrent, {a.idle} idle open"
    write_results("live_server", [
        {"measure": f"requests answered 200 ({n})", "value": sum(r[1] == 200 for r in rows), "goal": f"{a.requests}"},
        {"measure": f"slowest request, s ({n})", "value": lat[-1], "goal": "<= 2"},
        {"measure": "slowest page GET, s", "value": worst["page"], "goal": ""},
        {"measure": "slowest encode POST, s", "value": worst["encode"], "goal": ""},
        {"measure": "median request, s", "value": lat[len(lat) // 2], "goal": ""},
    ], dict(burst_wall_s=wall, model=model.name, sae=a.sae, cpu=cpu_model(), peak_rss_mb=peak_rss_mb()))

if __name__ == "__main__":
    main()
