"""The ``nnlab`` command line: ``list``, ``run``, ``demo`` and ``bench``."""

from __future__ import annotations

import argparse
import os
import runpy
import sys
import time
from pathlib import Path

from tqdm import tqdm


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


def _experiments():
    from nnlab import experiments

    return experiments


def _cmd_list(args: argparse.Namespace) -> int:
    exps = _experiments()
    names = exps.names()
    if not names:
        print("No experiments are registered yet.")
        return 0
    width = max(len(n) for n in names)
    for name in names:
        exp = exps.get(name)
        print(f"{name:<{width}}  {exp.description}  [{exp.reference}]")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    if args.scale == "small":
        _compile_fast_for_small_runs()
    from nnlab.experiments import run_experiment

    exps = _experiments()
    try:
        exps.get(args.name)
    except ValueError as err:
        print(f"nnlab run: {err}", file=sys.stderr)
        return 2
    summary = run_experiment(args.name, scale=args.scale, out=Path(args.out), seed=args.seed)
    print(f"{args.name}: {'PASS' if summary['passed'] else 'FAIL'} -> {summary['dir']}")
    return 0 if summary["passed"] else 1


def _cmd_demo(args: argparse.Namespace) -> int:
    _compile_fast_for_small_runs()
    from nnlab.experiments import run_demo

    names = _experiments().names()
    if not names:
        print("nnlab demo: no experiments are registered, so there is nothing to run.")
        return 1
    index = run_demo(out=Path(args.out), seed=args.seed, names=names)
    print(f"Report written to {index}")
    return 0


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
        return 2
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
            return 2
        scripts = [p for p in scripts if p.stem in wanted]
    if not scripts:
        print(f"nnlab bench: no benchmark scripts in {bench_dir}.")
        return 1
    for script in tqdm(scripts, desc="benchmarks", unit="script", disable=len(scripts) < 2):
        print(f"\n== {script.stem} ==", flush=True)
        start = time.perf_counter()
        runpy.run_path(str(script), run_name="__main__")
        print(f"({script.stem} took {time.perf_counter() - start:.1f} s)", flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnlab",
        description="Theory of wide neural networks: analytic predictions against simulation.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("list", help="list the registered experiments")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("run", help="run one experiment and write its report")
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

    p = sub.add_parser("demo", help="run every experiment's small config and write a report")
    p.add_argument("--out", default="nnlab-demo", help="output folder (default: nnlab-demo)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("bench", help="run the timing scripts in benchmarks/")
    p.add_argument("names", nargs="*", help="benchmark names (default: all)")
    p.add_argument("--dir", default=None, help="folder of benchmark scripts")
    p.set_defaults(func=_cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
