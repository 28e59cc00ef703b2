"""Tests for nnlab.evaluate: Comparison metrics, scaling fits and report writing.

Every metric is checked against an independent computation: a closed form on
synthetic arrays with planted offsets, or an explicit Python loop.
"""

from __future__ import annotations

import dataclasses
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from matplotlib.figure import Figure

from nnlab import evaluate, experiments, registry
from nnlab.evaluate import Comparison, ExperimentResult, scaling_fit, write_index, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Metric formulas are a handful of float64 operations on O(1) numbers, so they
# agree with the closed forms to a few ulps times the array size.
RTOL = 1e-12


def _offset_comparison(metric="rel_l2", tolerance=1.0):
    """theory = 2 + sin(t); seed s adds the constant offset d_s (closed-form metrics)."""
    t = np.linspace(0.0, 2.0 * np.pi, 50)
    theory = 2.0 + np.sin(t)
    d = np.array([0.1, -0.05, 0.02, 0.05])
    sim = theory[None, :] + d[:, None]
    c = Comparison(
        "offset", theory, sim, ("time",), coords={"time": t}, metric=metric, tolerance=tolerance
    )
    return c, t, theory, d


# ----------------------------------------------------------------------------- metrics


def test_metrics_match_closed_forms_for_constant_offsets():
    c, t, theory, d = _offset_comparison()
    m = d.mean()  # the mean offset, the same at every point
    se = d.std(ddof=1) / math.sqrt(d.size)  # the same at every point
    metrics = c.metrics()
    assert c.n_seeds == 4
    np.testing.assert_allclose(c.sim_mean, theory + m, rtol=RTOL)
    np.testing.assert_allclose(c.sim_se, np.full(t.shape, se), rtol=1e-10)
    # ||m * 1||_2 / ||theory||_2 = |m| sqrt(N) / sqrt(sum theory^2)
    rel = abs(m) * math.sqrt(t.size) / math.sqrt(sum(x * x for x in theory))
    assert metrics["rel_l2"] == pytest.approx(rel, rel=1e-10)
    assert metrics["max_abs"] == pytest.approx(abs(m), rel=1e-10)
    assert metrics["max_rel"] == pytest.approx(abs(m) / theory.min(), rel=1e-10)
    assert metrics["max_z"] == pytest.approx(abs(m) / se, rel=1e-10)
    # mean = theory + constant is perfectly correlated with theory.
    assert metrics["correlation"] == pytest.approx(1.0, abs=1e-12)
    assert metrics["n_points"] == 50 and metrics["n_nonfinite"] == 0
    assert c.value == metrics["rel_l2"]


def test_metrics_match_an_explicit_loop_on_random_data():
    rng = np.random.default_rng(1)
    theory = rng.uniform(0.5, 2.0, size=(6, 3))
    sim = theory + 0.1 * rng.standard_normal((5, 6, 3))
    c = Comparison("rand", theory, sim, ("time", "width"), tolerance=10.0, metric="max_z")
    n = sim.shape[0]
    num = den = 0.0
    max_abs = max_rel = max_z = 0.0
    for i in range(6):
        for j in range(3):
            vals = [float(sim[s, i, j]) for s in range(n)]
            mean = sum(vals) / n
            var = sum((v - mean) ** 2 for v in vals) / (n - 1)
            se = math.sqrt(var / n)
            err = abs(mean - theory[i, j])
            num += err**2
            den += theory[i, j] ** 2
            max_abs = max(max_abs, err)
            max_rel = max(max_rel, err / abs(theory[i, j]))
            max_z = max(max_z, err / se)
    metrics = c.metrics()
    assert metrics["rel_l2"] == pytest.approx(math.sqrt(num / den), rel=1e-10)
    assert metrics["max_abs"] == pytest.approx(max_abs, rel=1e-10)
    assert metrics["max_rel"] == pytest.approx(max_rel, rel=1e-10)
    assert metrics["max_z"] == pytest.approx(max_z, rel=1e-10)
    assert c.value == metrics["max_z"]


def test_correlation_of_orthogonal_and_opposite_signals():
    # On a uniform grid over one full period, sum sin*cos = 0, sum sin^2 = sum cos^2 = N/2
    # and both have zero mean, so corr(sin, sin + cos) = (N/2) / sqrt(N/2 * N) = 1/sqrt(2).
    t = np.linspace(0.0, 2.0 * np.pi, 64, endpoint=False)
    c = Comparison("c", np.sin(t), np.sin(t) + np.cos(t), ("time",), tolerance=1.0)
    assert c.metrics()["correlation"] == pytest.approx(1.0 / math.sqrt(2.0), abs=1e-12)
    c = Comparison("c", np.sin(t), -3.0 * np.sin(t), ("time",), tolerance=1.0)
    assert c.metrics()["correlation"] == pytest.approx(-1.0, abs=1e-12)
    # A constant simulation has no defined correlation.
    c = Comparison("c", np.sin(t), np.ones_like(t), ("time",), tolerance=1.0)
    assert math.isnan(c.metrics()["correlation"])


def test_without_seed_axis_there_is_no_standard_error():
    theory = np.array([1.0, 2.0, 4.0])
    c = Comparison("c", theory, theory * 1.01, ("n",), tolerance=0.02, metric="max_rel")
    assert c.n_seeds == 1 and c.sim_se is None
    assert math.isnan(c.metrics()["max_z"])
    assert c.value == pytest.approx(0.01, rel=1e-12)
    assert c.passed


def test_pass_fail_and_passes_threshold():
    c, *_ = _offset_comparison(metric="max_abs", tolerance=0.03)
    # max_abs is the mean offset 0.03 (up to rounding); the threshold is inclusive.
    assert c.passes(c.value) and not c.passes(np.nextafter(c.value, 0.0))
    assert c.passes(0.031) and not c.passes(0.029)
    strict = dataclasses.replace(c, tolerance=0.029)
    assert not strict.passed
    assert (
        "FAIL" in strict.summary_line()
        and "PASS" in dataclasses.replace(c, tolerance=1).summary_line()
    )


def test_max_z_pass_fail():
    c, _, _, d = _offset_comparison(metric="max_z", tolerance=3.0)
    z = abs(d.mean()) / (d.std(ddof=1) / 2.0)  # 0.03 / (0.0634/2) = 0.95
    assert c.value == pytest.approx(z, rel=1e-10)
    assert c.passed
    assert not dataclasses.replace(c, tolerance=0.5).passed


def test_nan_simulation_is_a_failed_result_not_a_crash():
    c, _, theory, _ = _offset_comparison(metric="max_z", tolerance=100.0)
    sim = np.array(c.simulation)
    sim[2, 10] = np.nan  # one diverged seed at one time
    bad = Comparison("diverged", theory, sim, ("time",), metric="max_z", tolerance=100.0)
    m = bad.metrics()
    assert m["n_nonfinite"] == 1
    for name in ("rel_l2", "max_abs", "max_rel", "max_z", "correlation"):
        assert math.isnan(m[name]), name
    assert not bad.passed and not bad.passes(math.inf)
    assert "passed=False" in repr(bad) and "FAIL" in bad.summary_line()
    inf_sim = theory + np.inf
    blown = Comparison("blown", theory, inf_sim, ("time",), tolerance=1e9)
    assert math.isinf(blown.value) and not blown.passed


def test_zero_theory_gives_infinite_relative_errors():
    theory = np.array([0.0, 1.0])
    c = Comparison("z", theory, np.array([0.0, 1.5]), ("n",), metric="max_rel", tolerance=1.0)
    assert c.value == pytest.approx(0.5)  # 0/0 counts as no error
    c = Comparison("z", theory, np.array([0.1, 1.0]), ("n",), metric="max_rel", tolerance=1.0)
    assert math.isinf(c.value) and not c.passed
    c = Comparison("z", np.zeros(2), np.ones(2), ("n",), tolerance=1.0)
    assert math.isinf(c.value)


def test_scalar_claims():
    c = Comparison.scalar("slope", theory=-0.5, simulation=-0.57, tolerance=0.1)
    assert c.metric == "max_abs" and c.axes == () and c.passed
    assert c.value == pytest.approx(0.07, rel=1e-12)
    assert not Comparison.scalar("slope", theory=-0.5, simulation=-0.65, tolerance=0.1).passed
    seeds = np.array([1.0, 1.2, 0.9, 1.1])
    c = Comparison.scalar("x", theory=1.0, simulation=seeds, tolerance=3.0, metric="max_z")
    assert c.n_seeds == 4
    se = seeds.std(ddof=1) / 2.0
    assert c.value == pytest.approx(abs(seeds.mean() - 1.0) / se, rel=1e-12)
    with pytest.raises(ValueError, match="theory must be a scalar"):
        Comparison.scalar("x", theory=[1.0, 2.0], simulation=1.0, tolerance=1.0)
    with pytest.raises(ValueError, match="1-D array of seeds"):
        Comparison.scalar("x", theory=1.0, simulation=np.ones((2, 2)), tolerance=1.0)


def test_accepts_jax_arrays_and_is_immutable():
    theory = jnp.linspace(1.0, 2.0, 4)  # float32 under the default precision
    sim = theory[None] + jnp.array([[0.25], [-0.25]])
    c = Comparison("j", theory, sim, ("t",), metric="max_abs", tolerance=1e-6)
    assert isinstance(c.theory, np.ndarray) and c.theory.dtype == np.float64
    # +-0.25 is exact in float32, so the seed mean reproduces the theory exactly.
    assert c.value == 0.0 and c.passed
    # std(ddof=1) of {+0.25, -0.25} is 0.25 * sqrt(2); divided by sqrt(2 seeds) gives 0.25.
    np.testing.assert_allclose(c.sim_se, 0.25, rtol=1e-12)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.tolerance = 1.0
    with pytest.raises(ValueError, match="read-only"):
        c.theory[0] = 5.0


_T = np.ones(3)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"simulation": np.ones(4)}, ValueError, "simulation must have the theory's shape"),
        ({"simulation": np.ones((2, 4))}, ValueError, r"got shape \(2, 4\)"),
        ({"metric": "rmse"}, ValueError, "metric must be one of"),
        ({"axes": ("t", "w")}, ValueError, "axes must name every theory axis"),
        ({"axes": "t"}, TypeError, "axes must be a tuple"),
        ({"theory": np.array([1.0, np.nan, 1.0])}, ValueError, "theory must be finite"),
        ({"theory": np.array([1.0, np.inf, 1.0])}, ValueError, "theory must be finite"),
        ({"theory": _T * 1j}, TypeError, "theory must hold real numbers"),
        ({"simulation": np.array(["a", "b", "c"])}, TypeError, "simulation must hold real"),
        ({"metric": "max_z"}, ValueError, "max_z' needs a standard error"),
        ({"metric": "max_z", "simulation": np.ones((1, 3))}, ValueError, "at least 2"),
        ({"tolerance": -0.1}, ValueError, "tolerance must be a non-negative"),
        ({"tolerance": math.nan}, ValueError, "tolerance must be a non-negative"),
        ({"tolerance": "0.1"}, TypeError, "tolerance must be a number"),
        ({"coords": {"t": np.arange(4)}}, ValueError, r"coords\['t'\] must be 1-D of length 3"),
        ({"coords": {"w": np.arange(3)}}, ValueError, "not in axes"),
        ({"axes": ("seed",), "simulation": np.ones((2, 3))}, ValueError, "must be distinct"),
        ({"name": ""}, ValueError, "name must be a non-empty string"),
        ({"yscale": "loglog"}, ValueError, "yscale must be one of"),
    ],
)
def test_validation_errors_name_the_argument(kwargs, error, match):
    args = {"name": "c", "theory": _T, "simulation": _T, "axes": ("t",), "tolerance": 0.1}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        Comparison(**args)


# ------------------------------------------------------------------------------- views


def _grid_comparison():
    t = np.array([0.0, 0.5, 1.0, 1.5, 2.0])
    widths = np.array([64, 256, 1024])
    theory = np.exp(-t)[:, None] * np.ones(3)[None, :]
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((4, 5, 3)) / np.sqrt(widths)[None, None, :]
    sim = theory[None] + noise
    return Comparison(
        "decay",
        theory,
        sim,
        ("time", "width"),
        coords={"time": t, "width": widths},
        tolerance=0.2,
        yscale="log",
        description="loss decay at three widths",
    )


def test_to_dataframe_is_long_format():
    c = _grid_comparison()
    df = c.to_dataframe()
    assert list(df.columns) == ["time", "width", "theory", "sim_mean", "sim_se"]
    assert len(df) == 15
    for i, t in enumerate(c.coords["time"]):
        for j, w in enumerate(c.coords["width"]):
            row = df[(df["time"] == t) & (df["width"] == w)]
            assert len(row) == 1
            assert row["theory"].item() == c.theory[i, j]
            assert row["sim_mean"].item() == pytest.approx(c.simulation[:, i, j].mean(), rel=1e-14)
            se = c.simulation[:, i, j].std(ddof=1) / 2.0
            assert row["sim_se"].item() == pytest.approx(se, rel=1e-12)
    scalar = Comparison.scalar("s", theory=1.0, simulation=1.1, tolerance=1.0).to_dataframe()
    assert list(scalar.columns) == ["theory", "sim_mean", "sim_se"] and len(scalar) == 1
    assert math.isnan(scalar["sim_se"].item())


def test_plot_draws_one_theory_line_per_curve():
    c = _grid_comparison()
    ax = Figure().add_subplot()
    assert c.plot(ax) is ax
    # 3 widths -> 3 theory lines + 3 simulation-mean lines, and 3 standard-error bands.
    assert len(ax.get_lines()) == 6
    assert len(ax.collections) == 3
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), c.theory[:, 0])
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "time"
    one_d = Comparison("one", c.theory[:, 0], c.simulation[:, :, 0], ("time",), tolerance=1.0)
    ax = one_d.plot()  # makes its own Figure
    assert isinstance(ax.figure, Figure)
    assert len(ax.get_lines()) == 2 and len(ax.collections) == 1
    assert "PASS" in ax.get_title()


def test_plot_scalar_parity_and_nan():
    ax = Comparison.scalar("s", theory=1.0, simulation=[0.9, 1.1, 1.0], tolerance=0.2).plot()
    assert ax.get_ylabel() == "s"
    cube = np.ones((2, 3, 4))
    ax = Comparison("cube", cube, cube * 1.1, ("a", "b", "c"), tolerance=1.0).plot()
    assert ax.get_ylabel() == "simulation mean"
    with pytest.raises(ValueError, match="kind='lines'"):
        Comparison("cube", cube, cube, ("a", "b", "c"), tolerance=1.0).plot(kind="lines")
    c = _grid_comparison()
    sim = np.array(c.simulation)
    sim[:, 2:, 1] = np.nan
    ax = dataclasses.replace(c, simulation=sim).plot()
    assert "FAIL" in ax.get_title()
    ax.figure.canvas.draw()  # rendering NaN on a log axis must not warn or raise


def test_reprs_show_name_and_verdict():
    c = _grid_comparison()
    assert "decay" in repr(c) and "passed=True" in repr(c)
    html = c._repr_html_()
    assert "decay" in html and "PASS" in html and "rel_l2" in html and "<table>" in html


# --------------------------------------------------------------------------- scaling


def test_scaling_fit_recovers_exact_power_law():
    xs = 2.0 ** np.arange(3, 9)
    fit = scaling_fit(xs, 3.0 * xs**-0.5)
    assert fit.exponent == pytest.approx(-0.5, abs=1e-12)
    assert fit.prefactor == pytest.approx(3.0, rel=1e-12)
    assert fit.stderr == pytest.approx(0.0, abs=1e-12)
    assert fit.r2 == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(fit.predict(xs), 3.0 * xs**-0.5, rtol=1e-12)


def test_scaling_fit_matches_scipy_linregress_on_noisy_data():
    rng = np.random.default_rng(2)
    xs = 2.0 ** np.arange(4, 12)
    errors = 2.0 * xs**-0.5 * np.exp(0.1 * rng.standard_normal(xs.size))
    fit = scaling_fit(xs, errors, confidence=0.9)
    ref = scipy.stats.linregress(np.log(xs), np.log(errors))  # an independent implementation
    assert fit.exponent == pytest.approx(ref.slope, rel=1e-12)
    assert fit.prefactor == pytest.approx(math.exp(ref.intercept), rel=1e-12)
    assert fit.stderr == pytest.approx(ref.stderr, rel=1e-10)
    assert fit.r2 == pytest.approx(ref.rvalue**2, rel=1e-10)
    half = scipy.stats.t.ppf(0.95, xs.size - 2) * ref.stderr
    assert fit.ci_low == pytest.approx(ref.slope - half, rel=1e-10)
    assert fit.ci_high == pytest.approx(ref.slope + half, rel=1e-10)
    assert fit.contains(-0.5)


def test_scaling_fit_interval_has_its_nominal_coverage():
    # 400 independent noisy fits with planted exponent -0.5: the 95% interval should contain it
    # in a fraction 0.95 +- sqrt(0.95*0.05/400) = 0.95 +- 0.011 of them; allow 4 standard errors.
    rng = np.random.default_rng(3)
    xs = 2.0 ** np.arange(3, 9)
    trials = 400
    hits = 0
    for _ in range(trials):
        errors = 0.7 * xs**-0.5 * np.exp(0.2 * rng.standard_normal(xs.size))
        hits += scaling_fit(xs, errors).contains(-0.5)
    se = math.sqrt(0.95 * 0.05 / trials)
    assert abs(hits / trials - 0.95) < 4 * se


def test_scaling_fit_interval_shrinks_with_more_points():
    rng = np.random.default_rng(4)

    def width(n):
        xs = np.geomspace(16, 4096, n)
        errors = xs**-1.0 * np.exp(0.1 * rng.standard_normal(n))
        fit = scaling_fit(xs, errors)
        assert fit.contains(-1.0)
        return fit.ci_high - fit.ci_low

    # Expected width ratio: t_{.975,2} sqrt(S_uu(64)/S_uu(4)) / t_{.975,62} ~ 4.30*4.3/2.0 ~ 9;
    # asking for a factor 3 leaves room for the scatter of the residual variance.
    assert width(64) < width(4) / 3


@pytest.mark.parametrize(
    ("xs", "errors", "kwargs", "match"),
    [
        ([1, 2], [1, 2], {}, "at least 3 points"),
        ([1, 2, 3], [1, 0, 2], {}, "errors must be finite and positive"),
        ([1, -2, 3], [1, 1, 2], {}, "xs must be finite and positive"),
        ([1, 2, 3], [1, np.nan, 2], {}, "errors must be finite and positive"),
        ([1, 2, 3], [1, 2], {}, "same length"),
        ([2, 2, 2], [1, 2, 3], {}, "two distinct values"),
        ([1, 2, 3], [1, 2, 3], {"confidence": 1.0}, "confidence must be in"),
        ([[1, 2, 3]], [[1, 2, 3]], {}, "must be 1-D"),
    ],
)
def test_scaling_fit_errors(xs, errors, kwargs, match):
    with pytest.raises(ValueError, match=match):
        scaling_fit(xs, errors, **kwargs)


# ---------------------------------------------------------------------------- reports

_EXP = experiments.Experiment(
    name="toy",
    reference="Nobody 2024, arXiv:0000.00000",
    description="a toy check",
    run=lambda config, seed: [],
    small={},
    large={},
)


def _strict_json(path):
    def reject(token):
        raise AssertionError(f"non-standard JSON constant {token}")

    return json.loads(path.read_text(), parse_constant=reject)


def test_write_report_writes_json_npz_png_and_markdown(tmp_path):
    good = _grid_comparison()
    sim = np.array(good.simulation)
    sim[0, 1, 1] = np.nan
    bad = Comparison("diverged run", good.theory, sim, good.axes, tolerance=0.2)
    slope = Comparison.scalar("slope", theory=-0.5, simulation=-0.52, tolerance=0.1)
    res = write_report(tmp_path, _EXP, [good, bad, slope], scale="small", seed=3, seconds=1.25)

    data = _strict_json(tmp_path / "results.json")
    assert data == res
    assert data["experiment"] == "toy" and data["reference"] == _EXP.reference
    assert (data["scale"], data["seed"], data["seconds"]) == ("small", 3, 1.25)
    assert data["passed"] is False and data["n_passed"] == 2 and data["n_comparisons"] == 3
    by_name = {c["name"]: c for c in data["comparisons"]}
    assert by_name["decay"]["value"] == pytest.approx(good.value, rel=1e-15)
    assert by_name["decay"]["passed"] is True
    assert by_name["decay"]["metrics"]["max_abs"] == pytest.approx(good.metrics()["max_abs"])
    assert by_name["diverged run"]["value"] == "nan" and by_name["diverged run"]["passed"] is False
    assert by_name["slope"]["tolerance"] == 0.1

    with np.load(tmp_path / "arrays.npz") as z:
        np.testing.assert_array_equal(z["decay/theory"], good.theory)
        np.testing.assert_array_equal(z["decay/simulation"], good.simulation)
        np.testing.assert_array_equal(z["decay/coords/width"], [64, 256, 1024])
        np.testing.assert_array_equal(z["diverged_run/simulation"], sim)  # NaN kept
        assert "slope/theory" in z.files

    for png in ("decay.png", "diverged_run.png", "slope.png"):
        assert (tmp_path / png).read_bytes()[:8] == PNG_MAGIC

    md = (tmp_path / "report.md").read_text()
    assert md.startswith("# toy")
    assert "**FAIL**: 2 of 3" in md and _EXP.reference in md and "a toy check" in md
    assert "| decay | rel_l2 |" in md and "| PASS |" in md and "| FAIL |" in md
    assert "![decay](decay.png)" in md and "![slope](slope.png)" in md


def test_write_report_with_experiment_result_extras(tmp_path):
    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    result = ExperimentResult(
        comparisons=[Comparison.scalar("slope", theory=-0.5, simulation=-0.5, tolerance=0.1)],
        figures={"phase diagram": fig},
        arrays={"grid": np.arange(6.0).reshape(2, 3)},
        notes="Lazy below lr = 2/lambda.",
    )
    res = write_report(tmp_path, _EXP, result, scale="large", seed=0, seconds=0.0)
    assert res["passed"] is True and res["figures"] == {"phase diagram": "phase_diagram.png"}
    assert (tmp_path / "phase_diagram.png").read_bytes()[:8] == PNG_MAGIC
    with np.load(tmp_path / "arrays.npz") as z:
        np.testing.assert_array_equal(z["extra/grid"], np.arange(6.0).reshape(2, 3))
    md = (tmp_path / "report.md").read_text()
    assert "![phase diagram](phase_diagram.png)" in md and "Lazy below lr = 2/lambda." in md


def test_write_report_rejects_bad_input_and_empty_is_fail(tmp_path):
    c = Comparison.scalar("a b", theory=0.0, simulation=0.0, tolerance=0.0)
    d = Comparison.scalar("a_b", theory=0.0, simulation=0.0, tolerance=0.0)
    with pytest.raises(ValueError, match="distinct as file names"):
        write_report(tmp_path, _EXP, [c, d], scale="small", seed=0, seconds=0.0)
    with pytest.raises(TypeError, match=r"comparisons\[1\] must be a Comparison"):
        write_report(tmp_path, _EXP, [c, 3.0], scale="small", seed=0, seconds=0.0)
    with pytest.raises(TypeError, match="comparisons must be a list"):
        write_report(tmp_path, _EXP, None, scale="small", seed=0, seconds=0.0)
    with pytest.raises(TypeError, match="must be a matplotlib Figure"):
        ExperimentResult([c], figures={"f": "not a figure"})
    res = write_report(tmp_path, _EXP, [], scale="small", seed=0, seconds=0.0)
    assert res["passed"] is False and res["n_comparisons"] == 0
    assert "No comparisons were returned" in (tmp_path / "report.md").read_text()


def test_write_index_summarises_experiments(tmp_path):
    summaries = [
        {
            "name": "alpha",
            "passed": True,
            "seconds": 1.5,
            "dir": str(tmp_path / "alpha"),
            "results": {"n_passed": 2, "n_comparisons": 2},
        },
        {
            "name": "beta",
            "passed": False,
            "seconds": 2.25,
            "dir": str(tmp_path / "beta"),
            "results": {"n_passed": 1, "n_comparisons": 3},
        },
    ]
    path = write_index(tmp_path, summaries)
    assert path == tmp_path / "report.md"
    md = path.read_text()
    assert "**1 of 2 experiments passed** (3.8 s in total)" in md
    assert "| alpha | PASS | 1.5 | 2/2 | [report](alpha/report.md) |" in md
    assert "| beta | FAIL | 2.2 | 1/3 | [report](beta/report.md) |" in md
    with pytest.raises(ValueError, match=r"summaries\[0\] lacks keys \['dir'\]"):
        write_index(tmp_path, [{"name": "x", "passed": True, "seconds": 0.0}])


# ------------------------------------------------------------------------ end to end


def _gaussian_characteristic_function(config, seed):
    """E_w[cos(w x)] = exp(-x^2/2) for w ~ N(0,1): Monte Carlo per seed vs the closed form."""
    x = np.linspace(0.0, 2.0, 9)
    keys = jax.random.split(jax.random.key(seed), config["seeds"])

    def one_seed(k):
        w = jax.random.normal(k, (config["samples"],))
        return jnp.mean(jnp.cos(w[:, None] * jnp.asarray(x)[None, :]), axis=0)

    sim = np.asarray(jax.vmap(one_seed)(keys))
    theory = np.exp(-(x**2) / 2.0)
    # With n seeds each z is Student-t with n - 1 dof; for n = 16, P(|t_15| > 5) = 1.6e-4, so
    # the max over 9 points exceeds 5 with probability < 9 * 1.6e-4 = 1.4e-3 (fixed key anyway).
    return [
        Comparison("char_fn", theory, sim, ("x",), coords={"x": x}, metric="max_z", tolerance=5.0)
    ]


@pytest.fixture
def toy_experiment():
    name = "evaluate_test_toy"
    experiments.register(
        experiments.Experiment(
            name=name,
            reference="textbook: the characteristic function of N(0, 1)",
            description="Monte Carlo E[cos(w x)] against exp(-x^2/2)",
            run=_gaussian_characteristic_function,
            small={"seeds": 16, "samples": 2000},
            large={"seeds": 16, "samples": 100_000},
        )
    )
    try:
        yield name
    finally:
        registry._experiment._REGISTRY.pop(name)


def test_run_experiment_end_to_end(tmp_path, toy_experiment):
    summary = experiments.run_experiment(toy_experiment, out=tmp_path, seed=1)
    assert summary["passed"] is True
    folder = tmp_path / toy_experiment
    assert summary["dir"] == str(folder)
    for f in ("config.json", "results.json", "arrays.npz", "char_fn.png", "report.md"):
        assert (folder / f).is_file(), f
    data = _strict_json(folder / "results.json")
    assert data["seed"] == 1 and data["comparisons"][0]["metrics"]["n_seeds"] == 16


def test_run_demo_writes_index(tmp_path, toy_experiment):
    index = experiments.run_demo(out=tmp_path, names=[toy_experiment])
    assert index == tmp_path / "report.md"
    md = index.read_text()
    assert "**1 of 1 experiments passed**" in md
    assert f"[report]({toy_experiment}/report.md)" in md
    assert (tmp_path / toy_experiment / "report.md").is_file()


def test_public_api():
    assert set(evaluate.__all__) >= {
        "Comparison",
        "ExperimentResult",
        "ScalingFit",
        "scaling_fit",
        "write_report",
        "write_index",
    }


# ---------------------------------------------------------------- power_law_comparisons


def test_power_law_comparisons_against_numpy_fits():
    from nnlab.evaluate import power_law_comparisons
    from nnlab.record import Record

    rng = np.random.default_rng(0)
    n = np.array([64.0, 128.0, 256.0, 512.0])
    draws = 2.0 * n[:, None] ** -0.45 * np.exp(0.05 * rng.standard_normal((4, 8)))
    rec = Record({"err": (("width", "seed"), draws)}, {"width": n})
    fit, (curve, slope) = power_law_comparisons(
        "err_vs_width", rec, "err", exponent=-0.5, tolerances=(0.3, 0.1), metric="max_rel"
    )
    mean = draws.mean(axis=1)
    # Independent: the OLS slope in log-log space and the geometric-mean prefactor.
    expected_slope = np.polyfit(np.log(n), np.log(mean), 1)[0]
    c = np.exp(np.mean(np.log(mean) + 0.5 * np.log(n)))
    np.testing.assert_allclose(fit.exponent, expected_slope, rtol=1e-12)
    np.testing.assert_allclose(slope.value, abs(expected_slope + 0.5), rtol=1e-12)
    np.testing.assert_allclose(
        curve.value, np.max(np.abs(mean - c / np.sqrt(n)) / (c / np.sqrt(n))),
        rtol=1e-9,
    )  # fmt: skip
    assert slope.name == "err_exponent" and slope.passed == (abs(expected_slope + 0.5) <= 0.1)
    with pytest.raises(ValueError, match="pass axis="):
        power_law_comparisons("x", rec, "err", exponent=-0.5, tolerances=(1, 1), axis="time")
    with pytest.raises(ValueError, match="tolerances"):
        power_law_comparisons("x", rec, "err", exponent=-0.5, tolerances=0.1)
