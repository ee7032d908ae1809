"""notebooks/02_feature_browser.ipynb runs top to bottom on the real default model (small settings)."""

import pytest
from conftest import execute_notebook


@pytest.mark.slow
def test_notebook_02_feature_browser_executes(tmp_path):
    _, html = execute_notebook("02_feature_browser.ipynb", tmp_path)
    assert "outline:2px solid" in html and "latent" in html        # top windows with the highlighted token
    assert (tmp_path / "runs/notebook02/browser/index.html").exists()
