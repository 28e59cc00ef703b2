"""The ``nnlab`` command line: ``list``, ``run``, ``demo`` and ``bench``."""

from __future__ import annotations

import argparse
import os
import runpy
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

__all__ = ["main"]


def _compile_fast_for_small_runs() -> None:
    """Use XLA's level-0 LLVM backend for CPU-sized runs, unless the user set XLA_FLAGS.

    Small configurations are dominated by compile time (many short programs): level 0 compiles
    about 3x faster and the slower code costs less than it saves (``nnlab demo`` ~30% less CPU
    time). It changes no float semantics. Must run before JAX creates its backend.
    """
    if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
        ).strip()
        # Long training loops are run-time bound: nnlab.train compiles them fully optimised.
        os.environ["NNLAB_FAST_COMPILE"] = "1"


# Exit codes (documented in `nnlab --help` and the README). When several apply, the highest wins.
EXIT_OK = 0  # every experiment passed / the command succeeded
EXIT_FAILED = 1  # an experiment ran but some comparison is out of tolerance
EXIT_USAGE = 2  # bad arguments, unknown name, unusable --out, nothing to run (argparse uses 2 too)
EXIT_ERROR = 3  # an experiment (or benchmark script) raised; the others still ran
EXIT_WRITE = 4  # results were computed but some could not be written (they are printed)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)

EXIT_CODES_HELP = """\
exit status:
  0    every experiment passed (list, bench: the command succeeded)
  1    an experiment ran but FAILED: some comparison is out of tolerance
  2    usage or configuration error: bad arguments, unknown experiment or
       benchmark name, an --out that is a file or cannot be created/written,
       nothing to run (checked before anything runs)
  3    an experiment or benchmark script raised an exception; the others still
       ran and the error is recorded in its report.md
  4    results were computed but could not all be written to --out; they are
       printed on stdout and the write error on stderr
  130  interrupted (Ctrl-C); experiments that finished are already written
When several apply, the highest code is returned."""


def _experiments():
    from nnlab import experiments

    return experiments


def _err(command: str, message: str) -> None:
    print(f"nnlab {command}: {message}", file=sys.stderr, flush=True)


def _check_out(command: str, out: str, names: Sequence[str]) -> Path | None:
    """Create ``out`` and prove it writable (write and remove a probe file), before any run.

    Returns the folder, or prints a one-line error naming ``--out`` and returns None.
    ``out/NAME`` (where experiment NAME writes) must not be an existing file either.
    """
    path = Path(out)
    fix = "pass a writable folder (it is created if missing)."
    if path.exists() and not path.is_dir():
        _err(command, f"--out '{path}' is an existing file, not a folder; {fix}")
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        why = (
            f"'{blocker}' is a file, not a folder"
            if blocker is not None
            else (err.strerror or str(err))
        )
        _err(command, f"--out '{path}' cannot be created: {why}; {fix}")
        return None
    try:
        fd, probe = tempfile.mkstemp(prefix=".nnlab-write-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        _err(command, f"--out '{path}' is not writable ({err.strerror or err}); {fix}")
        return None
    for name in names:
        sub = path / name
        if sub.exists() and not sub.is_dir():
            _err(
                command,
                f"--out '{path}': '{sub}' is an existing file, but experiment {name!r} writes "
                "a folder there; remove it or pass another --out.",
            )
            return None
    return path


def _num(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def _headline(s: dict) -> str:
    """One line per experiment: verdict, comparisons passed, time, where the report is."""
    if s["error"]:
        what = f"ERROR {s['error']}"
    else:
        res = s["results"] or {}
        what = (
            f"{s['status']} ({res.get('n_passed', 0)} of {res.get('n_comparisons', 0)} "
            "comparisons within tolerance)"
        )
    where = " (not all files saved)" if s["write_error"] else f" -> {Path(s['dir']) / 'report.md'}"
    return f"{s['name']}: {what} [{s['seconds']:.1f} s]{where}"


def _comparison_lines(s: dict) -> list[str]:
    res = s["results"] or {}
    return [
        f"  {'PASS' if c['passed'] else 'FAIL'}  {c['name']}: {c['metric']} = {_num(c['value'])}"
        f" (tolerance {_num(c['tolerance'])})"
        for c in res.get("comparisons", [])
    ]


def _exit_code(summaries: Sequence[dict]) -> int:
    code = EXIT_OK
    for s in summaries:
        if s["write_error"]:
            code = max(code, EXIT_WRITE)
        if s["error"]:
            code = max(code, EXIT_ERROR)
        elif not s["passed"]:
            code = max(code, EXIT_FAILED)
    return code


def _cmd_list(args: argparse.Namespace) -> int:
    exps = _experiments()
    names = exps.names()
    if not names:
        print("No experiments are registered yet.")
        return EXIT_OK
    width = max(len(n) for n in names)
    for name in names:
        exp = exps.get(name)
        print(f"{name:<{width}}  {exp.description}  [{exp.reference}]")
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    if args.scale == "small":
        _compile_fast_for_small_runs()
    exps = _experiments()
    try:
        exps.get(args.name)
    except ValueError as err:
        _err("run", str(err))
        return EXIT_USAGE
    out = _check_out("run", args.out, [args.name])
    if out is None:
        return EXIT_USAGE
    from nnlab.experiments import run_experiment

    s = run_experiment(args.name, scale=args.scale, out=out, seed=args.seed, errors="record")
    print(_headline(s))
    for line in _comparison_lines(s):
        print(line)
    if s["error"]:
        print(s["traceback"], file=sys.stderr, end="")
        _err("run", f"experiment {args.name!r} raised {s['error']}")
    if s["write_error"]:
        _err("run", f"{args.name}: results were computed but not all saved: {s['write_error']}")
    return _exit_code([s])


def _cmd_demo(args: argparse.Namespace) -> int:
    _compile_fast_for_small_runs()
    names = _experiments().names()
    if not names:
        _err("demo", "no experiments are registered, so there is nothing to run.")
        return EXIT_USAGE
    out = _check_out("demo", args.out, names)
    if out is None:
        return EXIT_USAGE
    from nnlab.registry import run_all

    def report(s: dict) -> None:
        tqdm.write(_headline(s), file=sys.stdout)
        if s["write_error"]:
            for line in _comparison_lines(s):
                tqdm.write(line, file=sys.stdout)
            tqdm.write(
                f"nnlab demo: {s['name']}: results were computed but not all saved: "
                f"{s['write_error']}",
                file=sys.stderr,
            )
        sys.stdout.flush()

    summaries, index, index_error = run_all(names, out=out, seed=args.seed, on_result=report)
    code = _exit_code(summaries)
    n = len(summaries)
    n_pass = sum(s["status"] == "PASS" for s in summaries)
    n_fail = sum(s["status"] == "FAIL" for s in summaries)
    n_error = sum(s["status"] == "ERROR" for s in summaries)
    print(f"{n_pass} of {n} experiments passed, {n_fail} failed, {n_error} raised an error.")
    if index_error is None:
        print(f"Report written to {index}")
    else:
        _err("demo", f"the index report could not be written: {index_error}")
        code = max(code, EXIT_WRITE)
    return code


def _benchmark_dir(explicit: str | None) -> Path:
    if explicit is not None:
        return Path(explicit)
    here = Path(__file__).resolve().parents[1] / "benchmarks"
    return here if here.is_dir() else Path.cwd() / "benchmarks"


def _cmd_bench(args: argparse.Namespace) -> int:
    bench_dir = _benchmark_dir(args.dir)
    if not bench_dir.is_dir():
        print(
            f"nnlab bench: no benchmarks/ folder at {bench_dir}; pass --dir or run from a "
            "source checkout.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    scripts = sorted(p for p in bench_dir.glob("*.py") if not p.name.startswith("_"))
    if args.names:
        wanted = set(args.names)
        unknown = wanted - {p.stem for p in scripts}
        if unknown:
            print(
                f"nnlab bench: unknown benchmark(s) {sorted(unknown)}; have "
                f"{[p.stem for p in scripts]}.",
                file=sys.stderr,
            )
            return EXIT_USAGE
        scripts = [p for p in scripts if p.stem in wanted]
    if not scripts:
        _err("bench", f"no benchmark scripts in {bench_dir}.")
        return EXIT_USAGE
    failed = []
    for script in tqdm(scripts, desc="benchmarks", unit="script", disable=len(scripts) < 2):
        print(f"\n== {script.stem} ==", flush=True)
        start = time.perf_counter()
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as err:
            if err.code not in (None, 0):
                failed.append(script.stem)
                _err("bench", f"{script.stem} exited with status {err.code!r}")
        except Exception as err:
            failed.append(script.stem)
            traceback.print_exc()
            _err("bench", f"{script.stem} raised {type(err).__name__}: {err}")
        print(f"({script.stem} took {time.perf_counter() - start:.1f} s)", flush=True)
    if failed:
        _err("bench", f"{len(failed)} of {len(scripts)} benchmark(s) failed: {failed}")
        return EXIT_ERROR
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnlab",
        description="Theory of wide neural networks: analytic predictions against simulation.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    extra = {"epilog": EXIT_CODES_HELP, "formatter_class": argparse.RawDescriptionHelpFormatter}
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("list", help="list the registered experiments")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("run", help="run one experiment and write its report", **extra)
    p.add_argument("name", help="experiment name (see `nnlab list`)")
    p.add_argument(
        "--scale",
        choices=("small", "large"),
        default="small",
        help="small: CPU-sized (default); large: GPU-sized",
    )
    p.add_argument("--out", default="nnlab-out", help="output folder (default: nnlab-out)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser(
        "demo", help="run every experiment's small config and write a report", **extra
    )
    p.add_argument("--out", default="nnlab-demo", help="output folder (default: nnlab-demo)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("bench", help="run the timing scripts in benchmarks/", **extra)
    p.add_argument("names", nargs="*", help="benchmark names (default: all)")
    p.add_argument("--dir", default=None, help="folder of benchmark scripts")
    p.set_defaults(func=_cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``nnlab`` command line; returns the exit status (see ``EXIT_CODES_HELP``).

    Bad arguments make argparse raise ``SystemExit(2)``.
    """
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        _err(args.command, "interrupted; experiments that finished are already written.")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())
