"""The registered mean-field experiments pass at their small scale and write their outputs."""

from __future__ import annotations

import json

import pytest

from nnlab.experiments import names, run_experiment


@pytest.mark.slow
@pytest.mark.parametrize("name", ["meanfield_fluctuations", "saad_solla"])
def test_small_config_passes(tmp_path, name):
    assert name in names()
    summary = run_experiment(name, scale="small", out=tmp_path, seed=0)
    folder = tmp_path / name
    for file in ("config.json", "results.json", "arrays.npz", "report.md"):
        assert (folder / file).exists(), file
    results = json.loads((folder / "results.json").read_text())
    failed = [c["name"] for c in results["comparisons"] if not c["passed"]]
    assert summary["passed"], f"failed comparisons: {failed}"
    extra = {"meanfield_fluctuations": "particle_density.png", "saad_solla": "order_parameters.png"}
    assert (folder / extra[name]).exists()
