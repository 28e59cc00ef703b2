import errno
import json
import os
import subprocess
import sys

import pytest

from nnlab import cli, experiments, registry
from nnlab.evaluate import Comparison, _report


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("list", "run", "demo", "bench"):
        assert command in out


@pytest.mark.parametrize("command", ["list", "run", "demo", "bench"])
def test_subcommand_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    assert "usage" in capsys.readouterr().out


def test_list_names_every_registered_experiment(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for name in experiments.names():
        assert name in out


def test_run_unknown_experiment_is_a_clear_error(capsys):
    assert cli.main(["run", "no_such_experiment"]) == 2
    assert "no experiment named 'no_such_experiment'" in capsys.readouterr().err


def test_run_rejects_bad_scale():
    with pytest.raises(SystemExit):
        cli.main(["run", "x", "--scale", "huge"])


def test_module_entry_point():
    proc = subprocess.run(
        [sys.executable, "-m", "nnlab", "--help"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0
    assert "nnlab" in proc.stdout


def test_registry_rejects_duplicates_and_bad_input():
    with pytest.raises(TypeError, match="experiment must be an Experiment"):
        experiments.register("not an experiment")
    exp = experiments.Experiment("dup_test_tmp", "ref", "desc", lambda c, s: [], {}, {})
    experiments.register(exp)
    try:
        with pytest.raises(ValueError, match="already registered"):
            experiments.register(exp)
        with pytest.raises(ValueError, match="scale must be"):
            exp.config("medium")
    finally:
        registry._experiment._REGISTRY.pop("dup_test_tmp")


# ---------------------------------------------------------------- exit codes and robust output


def _ok(config, seed):
    return [Comparison.scalar("slope", theory=-0.5, simulation=-0.5 + config["err"], tolerance=0.1)]


def _boom(config, seed):
    raise RuntimeError("boom: the fake experiment broke")


def _interrupt(config, seed):
    raise KeyboardInterrupt


@pytest.fixture
def fake(monkeypatch):
    """Replace the registry by an empty one; ``fake(name, run, err)`` registers a tiny experiment.

    Every call of an experiment's run is logged in ``fake.calls``, so tests can check what ran.
    """
    monkeypatch.setattr(registry._experiment, "_REGISTRY", {})
    calls = []

    def add(name, run=_ok, err=0.0):
        def logged(config, seed):
            calls.append(name)
            return run(config, seed)

        experiments.register(
            experiments.Experiment(name, "ref", f"fake {name}", logged, {"err": err}, {"err": err})
        )

    add.calls = calls
    return add


def _one_line_error(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, err)


def test_help_documents_every_exit_code(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "exit status:" in out
    for code in (cli.EXIT_OK, cli.EXIT_FAILED, cli.EXIT_USAGE, cli.EXIT_ERROR, cli.EXIT_WRITE):
        assert f"\n  {code}  " in out
    assert len({0, 1, 2, 3, 4}) == len(
        {cli.EXIT_OK, cli.EXIT_FAILED, cli.EXIT_USAGE, cli.EXIT_ERROR, cli.EXIT_WRITE}
    )


@pytest.mark.parametrize("command", ["run", "demo"])
def test_out_below_a_file_is_a_usage_error_before_running(command, tmp_path, fake, capsys):
    fake("alpha")
    (tmp_path / "file.txt").write_text("not a folder")
    out = tmp_path / "file.txt" / "out"
    argv = (
        [command, "alpha", "--out", str(out)] if command == "run" else [command, "--out", str(out)]
    )
    assert cli.main(argv) == cli.EXIT_USAGE == 2
    err = capsys.readouterr().err
    _one_line_error(err, f"nnlab {command}:", "--out", str(out), "is a file, not a folder")
    assert fake.calls == []  # nothing ran


@pytest.mark.parametrize("command", ["run", "demo"])
def test_out_that_is_an_existing_file_is_a_usage_error(command, tmp_path, fake, capsys):
    fake("alpha")
    out = tmp_path / "file.txt"
    out.write_text("not a folder")
    argv = (
        [command, "alpha", "--out", str(out)] if command == "run" else [command, "--out", str(out)]
    )
    assert cli.main(argv) == 2
    _one_line_error(capsys.readouterr().err, "--out", str(out), "existing file")
    assert fake.calls == [] and out.read_text() == "not a folder"


def test_out_without_write_permission_is_a_usage_error(tmp_path, fake, capsys, monkeypatch):
    # Root ignores chmod, so the permission failure of the probe file is simulated.
    fake("alpha")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cli.tempfile, "mkstemp", denied)
    assert cli.main(["run", "alpha", "--out", str(tmp_path / "ro")]) == 2
    _one_line_error(capsys.readouterr().err, "--out", str(tmp_path / "ro"), "not writable")
    assert fake.calls == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores chmod")
def test_out_in_a_read_only_folder_is_a_usage_error(tmp_path, fake, capsys):
    fake("alpha")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert cli.main(["demo", "--out", str(ro)]) == 2
    finally:
        ro.chmod(0o700)
    _one_line_error(capsys.readouterr().err, "--out", str(ro))
    assert fake.calls == []


def test_probe_file_is_removed(tmp_path, fake):
    fake("alpha")
    assert cli.main(["run", "alpha", "--out", str(tmp_path)]) == 0
    assert not list(tmp_path.glob(".nnlab-write-probe-*"))
    assert not list((tmp_path / "alpha").glob(".*.tmp"))


def test_experiment_folder_that_is_a_file_is_a_usage_error(tmp_path, fake, capsys):
    fake("alpha")
    (tmp_path / "alpha").write_text("in the way")
    assert cli.main(["run", "alpha", "--out", str(tmp_path)]) == 2
    _one_line_error(capsys.readouterr().err, "--out", str(tmp_path / "alpha"))
    assert fake.calls == []


def test_unwritable_out_from_the_command_line(tmp_path):
    (tmp_path / "file.txt").write_text("")
    out = tmp_path / "file.txt" / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "nnlab", "run", "saxe_modes", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    _one_line_error(proc.stderr, "nnlab run:", "--out", str(out))
    assert proc.stdout == ""


@pytest.mark.parametrize(("err", "code", "verdict"), [(0.0, 0, "PASS"), (1.0, 1, "FAIL")])
def test_run_pass_and_fail_codes(err, code, verdict, tmp_path, fake, capsys):
    fake("alpha", err=err)
    assert cli.main(["run", "alpha", "--out", str(tmp_path)]) == code
    out = capsys.readouterr().out
    assert out.startswith(f"alpha: {verdict} (")
    assert f"{verdict}  slope: max_abs = " in out
    data = json.loads((tmp_path / "alpha" / "results.json").read_text())
    assert data["passed"] is (code == 0)
    assert data["comparisons"][0]["value"] == pytest.approx(err, abs=1e-15)


def test_run_of_a_raising_experiment_is_exit_3_with_the_error_recorded(tmp_path, fake, capsys):
    fake("alpha", run=_boom)
    assert cli.main(["run", "alpha", "--out", str(tmp_path)]) == cli.EXIT_ERROR == 3
    cap = capsys.readouterr()
    assert "alpha: ERROR RuntimeError: boom" in cap.out
    assert "Traceback" in cap.err and "experiment 'alpha' raised RuntimeError: boom" in cap.err
    data = json.loads((tmp_path / "alpha" / "results.json").read_text())
    assert data["passed"] is False and data["error"].startswith("RuntimeError: boom")
    md = (tmp_path / "alpha" / "report.md").read_text()
    assert "**ERROR**" in md and "boom: the fake experiment broke" in md and "_boom" in md
    assert (tmp_path / "alpha" / "config.json").is_file()


def test_demo_records_a_raising_experiment_and_runs_the_others(tmp_path, fake, capsys):
    fake("a_pass")
    fake("b_raise", run=_boom)
    fake("c_fail", err=1.0)
    assert cli.main(["demo", "--out", str(tmp_path)]) == 3
    assert fake.calls == ["a_pass", "b_raise", "c_fail"]
    out = capsys.readouterr().out
    assert "a_pass: PASS" in out and "b_raise: ERROR RuntimeError: boom" in out
    assert "c_fail: FAIL" in out
    assert "1 of 3 experiments passed, 1 failed, 1 raised an error." in out
    assert json.loads((tmp_path / "a_pass" / "results.json").read_text())["passed"] is True
    assert json.loads((tmp_path / "c_fail" / "results.json").read_text())["passed"] is False
    assert "error" in json.loads((tmp_path / "b_raise" / "results.json").read_text())
    index = (tmp_path / "report.md").read_text()
    assert "**1 of 3 experiments passed** (" in index and "1 raised an error" in index
    assert "| b_raise | ERROR |" in index and "| c_fail | FAIL |" in index
    assert "## Errors" in index and "RuntimeError: boom" in index


def test_demo_exit_code_is_1_when_only_checks_fail(tmp_path, fake):
    fake("a_pass")
    fake("c_fail", err=1.0)
    assert cli.main(["demo", "--out", str(tmp_path)]) == 1


def _failing_writes(monkeypatch, folder_name, file_name="results.json"):
    """Make writing ``file_name`` inside any folder called ``folder_name`` fail (disk full)."""
    real = _report._atomic_write

    def write(path, data):
        if path.parent.name == folder_name and path.name == file_name:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data)

    monkeypatch.setattr(_report, "_atomic_write", write)


def test_run_write_failure_prints_results_and_exits_4(tmp_path, fake, capsys, monkeypatch):
    fake("alpha", err=0.03)
    _failing_writes(monkeypatch, "alpha")
    assert cli.main(["run", "alpha", "--out", str(tmp_path)]) == cli.EXIT_WRITE == 4
    cap = capsys.readouterr()
    assert "alpha: PASS (1 of 1 comparisons within tolerance)" in cap.out
    assert "PASS  slope: max_abs = 0.03 (tolerance 0.1)" in cap.out  # the result is not lost
    assert "(not all files saved)" in cap.out
    _one_line_error(cap.err, "could not write", str(tmp_path / "alpha" / "results.json"))
    assert "No space left on device" in cap.err
    assert not (tmp_path / "alpha" / "results.json").exists()
    assert not list((tmp_path / "alpha").glob(".*.tmp"))


def test_demo_keeps_finished_results_when_a_later_write_fails(tmp_path, fake, capsys, monkeypatch):
    fake("a_first", err=0.01)
    fake("b_second", err=0.02)
    fake("c_third", err=0.04)
    _failing_writes(monkeypatch, "b_second", "arrays.npz")
    assert cli.main(["demo", "--out", str(tmp_path)]) == 4
    assert fake.calls == ["a_first", "b_second", "c_third"]
    cap = capsys.readouterr()
    # the first experiment's files were written when it finished
    first = json.loads((tmp_path / "a_first" / "results.json").read_text())
    assert first["passed"] is True and first["comparisons"][0]["value"] == pytest.approx(0.01)
    for f in ("config.json", "report.md", "arrays.npz", "slope.png"):
        assert (tmp_path / "a_first" / f).is_file(), f
    # the failed write is reported, and its results printed
    assert "PASS  slope: max_abs = 0.02 (tolerance 0.1)" in cap.out
    assert str(tmp_path / "b_second" / "arrays.npz") in cap.err and "No space left" in cap.err
    assert "Traceback" not in cap.err
    # the experiment after it still ran and was written; the index lists everything
    assert json.loads((tmp_path / "c_third" / "results.json").read_text())["passed"] is True
    index = (tmp_path / "report.md").read_text()
    assert "**3 of 3 experiments passed**" in index and "## Write errors" in index


def test_demo_index_updated_after_each_experiment(tmp_path, fake, monkeypatch):
    seen = []

    def check_index(config, seed):
        seen.append((tmp_path / "report.md").read_text())
        return _ok(config, seed)

    fake("a_first")
    fake("b_second", run=check_index)
    assert cli.main(["demo", "--out", str(tmp_path)]) == 0
    assert "**1 of 1 experiments passed**" in seen[0] and "| a_first | PASS |" in seen[0]


def test_demo_index_write_failure_is_exit_4(tmp_path, fake, capsys, monkeypatch):
    fake("a_first")
    _failing_writes(monkeypatch, tmp_path.name, "report.md")
    assert cli.main(["demo", "--out", str(tmp_path)]) == 4
    cap = capsys.readouterr()
    assert "a_first: PASS" in cap.out
    _one_line_error(cap.err, "index report could not be written", "No space left")
    assert (tmp_path / "a_first" / "results.json").is_file()


def test_interrupt_keeps_finished_experiments(tmp_path, fake, capsys):
    fake("a_first")
    fake("b_second", run=_interrupt)
    fake("c_third")
    assert cli.main(["demo", "--out", str(tmp_path)]) == cli.EXIT_INTERRUPTED == 130
    assert fake.calls == ["a_first", "b_second"]
    assert (tmp_path / "a_first" / "results.json").is_file()
    assert "| a_first | PASS |" in (tmp_path / "report.md").read_text()
    assert "interrupted" in capsys.readouterr().err


def test_demo_with_no_experiments_is_a_usage_error(tmp_path, fake, capsys):
    assert cli.main(["demo", "--out", str(tmp_path)]) == 2
    assert "nothing to run" in capsys.readouterr().err


def test_library_run_experiment_raises_or_records(tmp_path, fake, monkeypatch):
    fake("alpha", run=_boom)
    with pytest.raises(RuntimeError, match="boom"):
        experiments.run_experiment("alpha", out=tmp_path)
    s = experiments.run_experiment("alpha", out=tmp_path, errors="record")
    assert s["status"] == "ERROR" and s["passed"] is False and "boom" in s["error"]
    with pytest.raises(ValueError, match="errors must be one of"):
        experiments.run_experiment("alpha", out=tmp_path, errors="ignore")
    with pytest.raises(TypeError, match="seed must be an int"):
        experiments.run_experiment("alpha", out=tmp_path, seed=1.5)

    fake("beta", err=0.05)
    _failing_writes(monkeypatch, "beta", "report.md")
    with pytest.raises(_report.ReportWriteError) as exc:
        experiments.run_experiment("beta", out=tmp_path)
    assert isinstance(exc.value, OSError) and exc.value.errno == errno.ENOSPC
    assert exc.value.path == tmp_path / "beta" / "report.md"
    assert exc.value.results["comparisons"][0]["value"] == pytest.approx(0.05)
    # results.json is written first, so it is on disk even though report.md failed
    assert json.loads((tmp_path / "beta" / "results.json").read_text())["passed"] is True
    s = experiments.run_experiment("beta", out=tmp_path, errors="record")
    assert s["status"] == "PASS" and "report.md" in s["write_error"]


def test_library_run_demo_goes_on_after_an_error(tmp_path, fake):
    fake("a_raise", run=_boom)
    fake("b_pass")
    seen = []
    index = experiments.run_demo(out=tmp_path, names=["a_raise", "b_pass"], on_result=seen.append)
    assert [s["status"] for s in seen] == ["ERROR", "PASS"]
    assert "| a_raise | ERROR |" in index.read_text()
    with pytest.raises(ValueError, match="no experiment named 'nope'"):
        experiments.run_demo(out=tmp_path, names=["b_pass", "nope"])
    assert fake.calls == ["a_raise", "b_pass"]  # the unknown name stopped it before running


def test_bench_records_a_raising_script_and_runs_the_rest(tmp_path, capsys):
    (tmp_path / "a_ok.py").write_text("print('a ran')\n")
    (tmp_path / "b_bad.py").write_text("raise ValueError('bench broke')\n")
    (tmp_path / "c_ok.py").write_text("print('c ran')\n")
    assert cli.main(["bench", "--dir", str(tmp_path)]) == 3
    cap = capsys.readouterr()
    assert "a ran" in cap.out and "c ran" in cap.out
    assert "b_bad raised ValueError: bench broke" in cap.err
    assert cli.main(["bench", "--dir", str(tmp_path), "a_ok"]) == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["bench", "--dir", str(empty)]) == 2


def test_fast_compile_flag_exempts_long_training_loops(monkeypatch):
    from nnlab.cli import _compile_fast_for_small_runs
    from nnlab.train._loop import LONG_LOOP_STEPS, loop_compiler_options

    monkeypatch.delenv("NNLAB_FAST_COMPILE", raising=False)
    monkeypatch.setenv("XLA_FLAGS", "")
    assert loop_compiler_options(10 * LONG_LOOP_STEPS) is None  # no demo flag: XLA defaults
    _compile_fast_for_small_runs()
    assert "--xla_backend_optimization_level=0" in os.environ["XLA_FLAGS"]
    assert loop_compiler_options(LONG_LOOP_STEPS - 1) is None  # short loops: compile fast
    assert loop_compiler_options(LONG_LOOP_STEPS) == {"xla_backend_optimization_level": 3}
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=1")  # the user's choice
    monkeypatch.delenv("NNLAB_FAST_COMPILE")
    _compile_fast_for_small_runs()
    assert os.environ["XLA_FLAGS"] == "--xla_backend_optimization_level=1"
    assert loop_compiler_options(10 * LONG_LOOP_STEPS) is None
