import json

import pytest

from nnlab.experiments import run_experiment


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ntk_convergence", "learning_curves", "linearized_training"])
def test_small_config_passes_and_writes_report(tmp_path, name):
    summary = run_experiment(name, scale="small", out=tmp_path, seed=0)
    folder = tmp_path / name
    results = json.loads((folder / "results.json").read_text())
    assert summary["passed"], results
    for file in ("config.json", "results.json", "arrays.npz", "report.md"):
        assert (folder / file).is_file()
    assert list(folder.glob("*.png"))
