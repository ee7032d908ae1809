"""notebooks/01_ioi_minimal.ipynb runs top to bottom on the real default model."""

import pytest
from conftest import execute_notebook


@pytest.mark.slow
def test_notebook_01_ioi_minimal_executes(tmp_path):
    text, _ = execute_notebook("01_ioi_minimal.ipynb", tmp_path, timeout=300)
    assert "recovery" in text
