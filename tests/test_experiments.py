"""Each registered experiment's small config runs, passes its tolerance and writes its report."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nnlab.experiments import names, run_experiment

# name -> (minimum number of comparisons, extra figures the experiment draws itself)
EXPECTED = {
    "catapult_generalization": (2, ()),
    "catapult_nqm": (2, ("phase_diagram.png",)),
    "catapult_uv": (2, ("uv_phase_diagram.png",)),
    "criticality": (2, ()),
    "edge_of_stability": (4, ("sharpness_trajectories.png",)),
    "finite_width_kurtosis": (2, ("kurtosis_vs_depth_over_width.png",)),
    "hessian_spectrum": (4, ("spectrum.png",)),
    "learning_curves": (2, ()),
    "linearized_training": (3, ()),
    "meanfield_fluctuations": (2, ("particle_density.png",)),
    "ntk_convergence": (3, ()),
    "saad_solla": (2, ("order_parameters.png",)),
    "saxe_depth": (2, ()),
    "saxe_modes": (2, ("stages.png",)),
}


def test_registry_holds_exactly_the_expected_experiments():
    assert sorted(names()) == sorted(EXPECTED)


def test_registry_loads_the_builtin_experiments_on_first_use():
    # A fresh interpreter that imports only nnlab.registry sees every built-in experiment.
    code = "from nnlab import registry; print(','.join(registry.names()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().split(",") == sorted(EXPECTED)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_small_config_passes_and_writes_report(tmp_path, name):
    summary = run_experiment(name, scale="small", out=tmp_path, seed=0)
    folder = tmp_path / name
    for file in ("config.json", "results.json", "arrays.npz", "report.md"):
        assert (folder / file).is_file(), file
    results = json.loads((folder / "results.json").read_text())
    failed = [c["name"] for c in results["comparisons"] if not c["passed"]]
    assert summary["passed"], f"failed comparisons: {failed}"
    min_comparisons, figures = EXPECTED[name]
    assert results["n_comparisons"] >= min_comparisons
    assert list(folder.glob("*.png"))
    for figure in figures:
        assert (folder / figure).is_file(), figure
