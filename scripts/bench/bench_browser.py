"""Benchmark the feature browser: statistics time vs one SAE encode pass; page size and load time.

    python scripts/bench/bench_browser.py [--acts DIR] [--n_tokens 32768] [--d_sae 4096] [--pages 4096,16384]

1. Statistics for --d_sae latents over a store (--acts, or a synthetic float16 store of SmolLM2's
   width, 576) vs one jitted encode pass over the same rows (goal: <= 2x), for a ReLU SAE with
   L0 about 64 and a TopK SAE with k = 32. The context pass (activations of each chosen example's
   window, for colouring) is reported apart.
2. Page size and load time in headless Chromium (file://) for SAEs of --pages latents over a
   small synthetic store (the page's size depends on latents x examples, not on the store).
Writes runs/bench/browser.json.
"""

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from _bench import bench_parser, print_table, write_json

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def synthetic_sae(out: Path, store_path: Path, d_sae: int, arch: str, freq: float = 64 / 4096, k: int = 32,
                  seed: int = 0) -> Path:
    """Random unit encoder directions, biases set so every latent fires on about `freq` of the rows."""
    from mechinterp.formats.sae import export_sae
    from mechinterp.formats.store import open_store

    store = open_store(store_path)
    rng = np.random.default_rng(seed)
    d = store.d_model
    W = rng.standard_normal((d, d_sae)).astype(np.float32)
    W /= np.linalg.norm(W, axis=0, keepdims=True)
    x = store.read_windows(np.arange(min(store.n_windows, 64)))
    xs = np.sort(x @ W, axis=0)                                  # per-latent frequencies from freq/5 to 3 freq
    q = 1 - np.clip(freq * rng.uniform(0.2, 3.0, d_sae), 0, 1)
    b = -xs[(q * (len(xs) - 1)).astype(int), np.arange(d_sae)]
    w = {"W_enc": W, "b_enc": b.astype(np.float32), "W_dec": np.ascontiguousarray(W.T), "b_dec": np.zeros(d, np.float32)}
    export_sae(out, w, arch, k, 1.0, store.meta, str(store_path), {}, {})
    return out


def bench_stats(acts: Path, d_sae: int, tmp: Path, max_tokens: int | None) -> list[dict]:
    from sae_jax.features import FeatureStatsConfig, compute_feature_stats, encode_pass

    rows = []
    for arch in ("relu", "topk"):
        sae = synthetic_sae(tmp / f"sae_{arch}_{d_sae}", acts, d_sae, arch)
        enc, stats, ctx, tot = [], [], [], []
        for _ in range(2):
            enc.append(encode_pass(sae, acts, max_tokens=max_tokens)["wall_s"])
            t0 = time.perf_counter()
            st = compute_feature_stats(sae, acts, FeatureStatsConfig(max_tokens=max_tokens))
            tot.append(time.perf_counter() - t0)
            stats.append(st.summary["timing"]["stats_pass_s"])
            ctx.append(st.summary["timing"]["contexts_s"])
        e = min(enc)
        rows.append({"part": "stats", "arch": arch, "d_sae": d_sae, "tokens": st.summary["n_tokens"],
                     "l0": round(st.summary["l0"], 1), "encode_s": e, "stats_pass_s": min(stats),
                     "ratio_pass": min(stats) / e, "contexts_s": min(ctx), "ratio_total": min(tot) / e})
    return rows


def bench_page(d_sae: int, tmp: Path, chromium: str | None) -> dict:
    from interventions.browser.page import build_page
    from sae_jax.features import FeatureStatsConfig, compute_feature_stats
    from sae_jax.synthetic import write_synthetic_store

    store = tmp / "page_store"
    if not store.exists():
        write_synthetic_store(store, d_in=64, n_features=512, n_windows=128, ctx=65, seed=3)
    sae = synthetic_sae(tmp / f"page_sae_{d_sae}", store, d_sae, "relu", freq=0.02)
    site = tmp / f"site_{d_sae}"
    t0 = time.perf_counter()
    compute_feature_stats(sae, store, FeatureStatsConfig()).save(site)
    t_stats = time.perf_counter() - t0

    class Tok:
        def decode(self, ids):
            return "".join(f" w{i}" for i in ids)

    r = build_page(site, site, sae, tokenizer=Tok())
    row = {"part": "page", "d_sae": d_sae, "stats_s": t_stats, "build_s": r["wall_s"],
           "total_mb": r["total_bytes"] / 1e6, "index_kb": r["index_bytes"] / 1e3, "chunks": r["chunks"],
           "largest_chunk_kb": max(p.stat().st_size for p in (site / "data" / "features").iterdir()) / 1e3,
           "load_ms": None, "card_ms": None}
    if chromium:
        row["load_ms"], row["card_ms"] = load_times(site, chromium)
    return row


def load_times(site: Path, chromium: str) -> tuple[float, float]:
    """(ms from navigation to the list rendered, ms from a click to the feature's card), median of 3."""
    from playwright.sync_api import sync_playwright

    loads, cards = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        for i in range(3):
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            t0 = time.perf_counter()
            page.goto(site.joinpath("index.html").as_uri())
            page.wait_for_selector("body[data-ready='1']")
            loads.append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            page.click(f"#spacer .item >> nth={3 + i}")
            page.wait_for_selector("#card .top .ex")
            cards.append((time.perf_counter() - t0) * 1e3)
            page.close()
        browser.close()
    return float(np.median(loads)), float(np.median(cards))


def main() -> None:
    p = bench_parser(__doc__.splitlines()[0])
    p.add_argument("--acts", default=None, help="activation store (default: a synthetic one of width 576)")
    p.add_argument("--n_tokens", type=int, default=32768, help="rows of the synthetic store / rows used")
    p.add_argument("--d_sae", type=int, default=4096)
    p.add_argument("--pages", default="4096,16384", help="latent counts for the page benchmark")
    p.add_argument("--chromium", default="/usr/bin/chromium")
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_browser_"))
    try:
        acts = Path(a.acts) if a.acts else None
        if acts is None:
            from sae_jax.synthetic import write_synthetic_store

            ctx = 128
            acts = write_synthetic_store(tmp / "store", d_in=576, n_features=2048, n_windows=-(-a.n_tokens // (ctx - 1)),
                                         ctx=ctx, active=16, dtype="float16", scale=3.0)
        rows = bench_stats(acts, a.d_sae, tmp, a.n_tokens if a.acts else None)
        chromium = a.chromium if Path(a.chromium).exists() else None
        try:
            import playwright  # noqa: F401 (imported only to see that it is installed)
        except ImportError:
            chromium = None
        pages = [bench_page(int(n), tmp, chromium) for n in a.pages.split(",") if n]
        print_table(rows)
        print_table(pages)
        headline = [{"measure": f"{r['arch']} statistics pass / one encode pass", "value": r["ratio_pass"], "goal": "<= 2"}
                    for r in rows]
        headline += [{"measure": f"{r['arch']} statistics + context windows / one encode pass",
                      "value": r["ratio_total"], "goal": "<= 2"} for r in rows]
        headline += [{"measure": f"page for {p['d_sae']} latents: MB on disk / ms to list / ms to card",
                      "value": f"{p['total_mb']:.0f} / {p.get('load_ms', float('nan')):.0f} / {p.get('card_ms', float('nan')):.0f}",
                      "goal": ""} for p in pages]
        write_json("browser", {"rows": headline, "stats": rows, "pages": pages, "store": str(a.acts or "synthetic")})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
