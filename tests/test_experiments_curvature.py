"""The registered curvature experiments (edge of stability, Hessian spectrum) pass small."""

from __future__ import annotations

import json

import pytest

from nnlab.experiments import run_experiment


@pytest.mark.slow
@pytest.mark.parametrize("name", ["edge_of_stability", "hessian_spectrum"])
def test_experiment_small_passes(tmp_path, name):
    summary = run_experiment(name, scale="small", out=tmp_path, seed=0)
    assert summary["passed"], summary["results"]
    folder = tmp_path / name
    for file in ("config.json", "results.json", "arrays.npz", "report.md"):
        assert (folder / file).is_file()
    results = json.loads((folder / "results.json").read_text())
    assert results["n_comparisons"] >= 4
    assert list(folder.glob("*.png"))
