"""Small configs of the finite-width experiments run, pass and write their files."""

from __future__ import annotations

import pytest

from nnlab.experiments import run_experiment


@pytest.mark.slow
@pytest.mark.parametrize("name", ["criticality", "finite_width_kurtosis"])
def test_small_config_passes(name, tmp_path):
    summary = run_experiment(name, scale="small", out=tmp_path, seed=0)
    assert summary["passed"], summary["results"]
    folder = tmp_path / name
    for file in ("config.json", "results.json", "arrays.npz", "report.md"):
        assert (folder / file).exists()
    assert list(folder.glob("*.png"))
