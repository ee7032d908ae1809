"""sae-lens, in its own environment (.venv-bench-sae, made by `make peers`; it pins transformer-lens < 4
and never enters our runtime path): it loads our export and reconstructs as we do, and its synthetic
ground-truth metrics equal ours on the same SAE and samples."""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest
import torch
from conftest import REAL_HOOK, REPO

from interventions.sae import load_sae
from mechinterp.formats.sae import load_export
from sae_jax.config import TrainConfig
from sae_jax.evals.ground_truth import fresh_samples, ground_truth_metrics
from sae_jax.ground_truth import SMALL, from_store, write_store
from sae_jax.pipeline import train_sae

pytestmark = pytest.mark.slow  # each test starts the peer's own interpreter


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    return write_store(tmp_path_factory.mktemp("gt") / "store", SMALL, n_windows=400, ctx=129)


SAE_LENS_PYTHON = REPO / ".venv-bench-sae" / "bin" / "python"
SAE_LENS_PROBE = """
import json, sys
import numpy as np, torch
from sae_lens import SAE
sae = SAE.load_from_disk(sys.argv[1], device="cpu")
x = torch.from_numpy(np.load(sys.argv[2]))
with torch.no_grad():
    f = sae.encode(x)
    r = sae.decode(f)
np.save(sys.argv[3], f.numpy()); np.save(sys.argv[4], r.numpy())
print(json.dumps({"cls": type(sae).__name__, "hook": sae.cfg.metadata.hook_name}))
"""


def test_our_export_loads_in_sae_lens_with_the_same_reconstructions(smollm2_sae, tmp_path):
    """sae-lens lives in its own environment (.venv-bench-sae, made by `make peers`): it pins
    transformer-lens < 4 and never enters our runtime path."""
    if not SAE_LENS_PYTHON.exists():
        pytest.fail("sae-lens environment missing: run `make peers` (make test does it)")
    sae_dir, _ = smollm2_sae
    sae = load_sae(sae_dir)
    x = torch.randn(64, 576, generator=torch.Generator().manual_seed(0)) * 6
    np.save(tmp_path / "x.npy", x.numpy())
    proc = subprocess.run([str(SAE_LENS_PYTHON), "-c", SAE_LENS_PROBE, str(sae_dir), str(tmp_path / "x.npy"),
                           str(tmp_path / "f.npy"), str(tmp_path / "r.npy")], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": ""}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["hook"] == REAL_HOOK
    with torch.no_grad():
        f, r = sae.encode(x).numpy(), sae.decode(sae.encode(x)).numpy()
    assert np.allclose(np.load(tmp_path / "f.npy"), f, atol=1e-4, rtol=1e-4)
    assert np.allclose(np.load(tmp_path / "r.npy"), r, atol=1e-4, rtol=1e-4)


def test_metrics_agree_with_sae_lens(small_store, tmp_path):
    from mechinterp.formats.store import open_store

    gt = from_store(open_store(small_store).meta)
    train_sae(small_store, tmp_path, dict(arch="batchtopk", d_sae=256, k=4, matryoshka=(64,)),
              TrainConfig(steps=200, batch=512, progress=False))
    w, cfg = load_export(tmp_path / "sae")
    x, coef = next(fresh_samples(gt, 4000, chunk=4000))
    np.savez(tmp_path / "samples.npz", x=x, coef=coef, features=gt.features)
    ours = ground_truth_metrics(w, cfg, gt.features, [(x, coef)])
    proc = subprocess.run([str(SAE_LENS_PYTHON), str(REPO / "scripts/bench/peers/sl_ground_truth.py"), str(tmp_path / "sae"),
                           str(tmp_path / "samples.npz")], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": ""})
    assert proc.returncode == 0, proc.stderr[-2000:]
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(theirs) <= set(ours)
    for key, val in theirs.items():
        assert ours[key] == pytest.approx(val, rel=1e-4, abs=1e-5), key
