"""What several test files build: random SAE and transcoder exports in the real formats, the slowed
stage scripts the fault tests interrupt, and headless Chromium for the page tests."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from mechinterp.formats.sae import export_sae
from mechinterp.formats.store import open_store

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# the page's screenshot, for a person to look at: $MECHINTERP_TEST_ARTIFACTS, else the system temp dir
ARTIFACTS = Path(os.environ.get("MECHINTERP_TEST_ARTIFACTS") or tempfile.gettempdir()) / "mechinterp-test-artifacts"


def chromium():
    """Playwright's sync API, with Debian's Chromium at CHROMIUM (make test installs it)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    return sync_api


@contextmanager
def browser_page(path: Path, width: int = 1200, height: int = 900, requests: list | None = None, **page_options):
    """The page at `path` in headless Chromium. After the block: no console or page error was logged,
    and nothing was fetched but files and data: URIs (the pages open offline). `requests`, when given,
    receives every URL the page fetched."""
    sync_api = chromium()
    errors, requests = [], [] if requests is None else requests
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height}, **page_options)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(Path(path).as_uri())
            yield page
        finally:
            browser.close()
    assert not errors, errors
    assert all(u.startswith(("file://", "data:")) for u in requests), requests


def make_sae(tmp, store_path, arch="standard", d_sae=48, k=6, seed=0, dead=(3,), dense=(5,)):
    """A random SAE whose latents fire sparsely on the synthetic store; `dead` latents never
    fire, `dense` ones fire almost always."""
    store = open_store(store_path)
    rng = np.random.default_rng(seed)
    d = store.d_model
    W = rng.standard_normal((d, d_sae)).astype(np.float32) / np.sqrt(d)
    x = store.read_windows(np.arange(min(8, store.n_windows)))
    pre = x @ W
    b = -np.quantile(pre, 0.9, axis=0).astype(np.float32)      # each latent fires on ~10% of rows
    b[list(dead)] = -1e6
    b[list(dense)] = 1e6
    w = {"W_enc": W, "b_enc": b, "W_dec": rng.standard_normal((d_sae, d)).astype(np.float32),
         "b_dec": np.zeros(d, np.float32)}
    if arch == "jumprelu":
        w["threshold"] = np.full(d_sae, 0.05, np.float32)
    out = tmp / f"sae_{arch}"
    export_sae(out, w, {"standard": "relu", "topk": "topk", "jumprelu": "jumprelu"}[arch], k, 1.0,
               store.meta, str(store_path), {}, {})
    return out


PROMPT = "When Mary and John went to the store, John gave a drink to"


def random_transcoders(d: int, n_layers: int, arch: str = "jumprelu", skip: bool = False, d_sae: int = 96,
                       seed: int = 0, model_name: str = "") -> dict[int, tuple[dict, dict]]:
    """{layer: (weights, cfg)} of random transcoders in the SAELens layout."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for L in range(n_layers):
        w = {"W_enc": torch.randn(d, d_sae, generator=g) / d ** 0.5, "b_enc": torch.randn(d_sae, generator=g) * 0.1,
             "W_dec": torch.randn(d_sae, d, generator=g) / d_sae ** 0.5, "b_dec": torch.randn(d, generator=g) * 0.1}
        if arch == "jumprelu":
            w["threshold"] = torch.rand(d_sae, generator=g) * 0.2
        if skip:
            w["W_skip"] = torch.randn(d, d, generator=g) / d
        meta = {"hook_name": f"blocks.{L}.hook_mlp_in", "hook_name_out": f"blocks.{L}.hook_mlp_out", "model_name": model_name}
        cfg = {"architecture": f"{'topk_' if arch == 'topk' else 'jumprelu_'}{'skip_' if skip else ''}transcoder",
               "d_in": d, "d_sae": d_sae, "d_out": d, "apply_b_dec_to_input": False, "k": 8, **meta, "metadata": meta}
        out[L] = (w, cfg)
    return out


def write_set(root, model_name: str, d: int, n_layers: int, **kw):
    for L, (w, cfg) in random_transcoders(d, n_layers, model_name=model_name, **kw).items():
        out = root / f"layer_{L}" / "sae"
        out.mkdir(parents=True)
        save_file({k: v.contiguous() for k, v in w.items()}, str(out / "sae_weights.safetensors"))
        (out / "cfg.json").write_text(json.dumps(cfg))
    return root


SLOWED = """
import sys, time
import {module} as m
real = m.{cls}.{method}
def slowed(self, *a, **k):
    {body}
m.{cls}.{method} = slowed
from mechinterp.cli import main
main(sys.argv[1:])
"""
SLOW_DUMP = SLOWED.format(module="mechinterp.formats.store_writer", cls="StoreWriter", method="write",
                          body="time.sleep(0.2); return real(self, *a, **k)")
SLOW_TRAIN = SLOWED.format(module="mechinterp.formats.store", cls="ActivationStore", method="batches",
                           body="for b in real(self, *a, **k):\n        time.sleep(0.03); yield b")
