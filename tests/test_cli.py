import subprocess
import sys

import pytest

from nnlab import cli, experiments


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
        experiments._registry._REGISTRY.pop("dup_test_tmp")
