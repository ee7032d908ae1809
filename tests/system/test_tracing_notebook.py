"""notebooks/04_circuit_tracing.ipynb runs top to bottom: on the tiny 2-layer model here (the
default, SmolLM2 with 30 layers of transcoders, takes minutes); every stage is the real one."""

import json

import pytest
from conftest import execute_notebook


@pytest.mark.slow
def test_notebook_04_circuit_tracing_executes(tmp_path, tiny_dir, monkeypatch):
    for k, v in dict(NB04_MODEL=str(tiny_dir), NB04_TOKENS="2250", NB04_STEPS="150", NB04_D_SAE="256", NB04_K="16",
                     NB04_BATCH="256", NB04_LR="3e-3").items():
        monkeypatch.setenv(k, v)
    text, _ = execute_notebook("04_circuit_tracing.ipynb", tmp_path)
    assert "exactness: {'max_abs_residual'" in text and "pruned to" in text and "predicted" in text
    result = json.loads((tmp_path / "runs/notebook04/graph_ioi/results.json").read_text())
    ex = result["exactness"]
    assert ex["max_abs_residual"] < 1e-4 * max(1.0, ex["max_abs_value"]) and result["answered"] is False
    assert (tmp_path / "runs/notebook04/graph_ioi/graph.html").exists()
