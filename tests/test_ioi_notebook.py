"""notebooks/01_ioi_minimal.ipynb runs top to bottom on the real default model."""

from conftest import execute_notebook


def test_notebook_01_ioi_minimal_executes():
    text, _ = execute_notebook("01_ioi_minimal.ipynb", timeout=300)
    assert "recovery" in text
