"""Running registered experiments and writing their output folders.

``run_experiment`` writes ``OUT/NAME/config.json`` (before the run), then
``results.json`` (metrics and pass/fail of every comparison), arrays as ``.npz``,
figures as PNG and a ``report.md``. ``run_demo`` runs the small config of every
experiment, writing each folder as soon as that experiment finishes and rewriting
the index ``OUT/report.md`` after each, so an interrupted or partly failed demo
keeps everything it finished.

Failures are kept apart, so the CLI can give each its own exit code:

* the experiment ran and some comparison is out of tolerance: ``status`` is
  ``"FAIL"`` (nothing is raised);
* the experiment raised: with ``errors="record"`` the summary has ``status``
  ``"ERROR"`` and the message in ``error``, and ``OUT/NAME/report.md`` shows the
  traceback; with ``errors="raise"`` the exception propagates;
* the results were computed but a file could not be written: with
  ``errors="record"`` the summary keeps the results and says why in
  ``write_error``; with ``errors="raise"``
  :class:`~nnlab.evaluate._report.ReportWriteError` (an ``OSError``) is raised,
  carrying the results in its ``results`` attribute.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from nnlab import _checks

from ._experiment import Scale, config_dict, get

Summary = dict[str, Any]


def _summary(name: str, scale: str, seed: int, folder: Path) -> Summary:
    return {
        "name": name,
        "scale": scale,
        "seed": seed,
        "status": "ERROR",
        "passed": False,
        "seconds": 0.0,
        "dir": str(folder),
        "results": None,
        "error": None,
        "traceback": None,
        "write_error": None,
    }


def _record_error(summary: Summary, folder: Path, exp: Any, err: Exception) -> Summary:
    from nnlab.evaluate._report import describe_error, write_error_report

    summary.update(
        status="ERROR",
        passed=False,
        error=describe_error(err),
        traceback="".join(traceback.format_exception(type(err), err, err.__traceback__)),
    )
    try:
        summary["results"] = write_error_report(
            folder,
            exp,
            err,
            scale=summary["scale"],
            seed=summary["seed"],
            seconds=summary["seconds"],
        )
    except OSError as werr:
        summary["write_error"] = summary["write_error"] or str(werr)
    return summary


def run_experiment(
    name: str,
    *,
    scale: Scale = "small",
    out: Path | str = "nnlab-out",
    seed: int = 0,
    errors: str = "raise",
) -> Summary:
    """Run experiment ``name`` at ``scale`` and write its folder ``out/name``.

    Args:
      name: a registered experiment (``nnlab list``); an unknown name is a ValueError.
      scale: ``"small"`` (CPU) or ``"large"`` (GPU).
      out: the output folder; the experiment's files go to ``out/name``.
      seed: integer seed passed to the experiment.
      errors: ``"raise"`` (default) lets an exception of the experiment, or an
        ``OSError`` while writing, propagate; ``"record"`` catches both and records
        them in the summary (``error``/``traceback``, ``write_error``), so a caller
        running many experiments can go on. Unknown names and bad arguments raise
        in both modes.

    Returns:
      A summary dict: ``name``, ``scale``, ``seed``, ``status`` (``"PASS"``, ``"FAIL"``
      or ``"ERROR"``), ``passed``, ``seconds``, ``dir``, ``results`` (the dict written
      to ``results.json``; kept even when writing it failed), ``error`` and
      ``traceback`` (``None`` unless the experiment raised), ``write_error`` (``None``
      unless some file could not be written).
    """
    from nnlab.evaluate import write_report
    from nnlab.evaluate._report import ReportWriteError, _atomic_write

    seed = _checks.integer(seed, "seed", minimum=None, fix="Pass an integer seed such as 0.")
    errors = _checks.choice(errors, "errors", ("raise", "record"))
    exp = get(name)
    config = exp.config(scale)
    folder = Path(out) / name
    summary = _summary(name, scale, seed, folder)

    config_json = json.dumps(
        {"name": name, "scale": scale, "seed": seed, "config": config_dict(config)},
        indent=2,
        default=str,
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _atomic_write(folder / "config.json", config_json)
    except OSError as err:
        if errors == "raise":
            raise
        summary["write_error"] = str(ReportWriteError(folder / "config.json", err))

    start = time.perf_counter()
    try:
        comparisons = exp.run(config, seed)
    except Exception as err:
        if errors == "raise":
            raise
        summary["seconds"] = time.perf_counter() - start
        return _record_error(summary, folder, exp, err)
    seconds = time.perf_counter() - start
    summary["seconds"] = seconds

    try:
        results = write_report(folder, exp, comparisons, scale=scale, seed=seed, seconds=seconds)
    except ReportWriteError as err:
        if errors == "raise":
            raise
        results = err.results
        summary["write_error"] = summary["write_error"] or str(err)
    except Exception as err:  # the experiment returned something write_report rejects
        if errors == "raise":
            raise
        return _record_error(summary, folder, exp, err)
    summary.update(
        results=results,
        passed=bool(results["passed"]),
        status="PASS" if results["passed"] else "FAIL",
    )
    return summary


def run_all(
    names: Sequence[str],
    *,
    scale: Scale = "small",
    out: Path | str = "nnlab-demo",
    seed: int = 0,
    on_result: Callable[[Summary], None] | None = None,
) -> tuple[list[Summary], Path, str | None]:
    """Run each experiment in ``names`` with ``errors="record"``; never stops early.

    After each experiment, ``on_result(summary)`` is called (if given) and the index
    ``out/report.md`` is rewritten. Returns ``(summaries, index_path, index_error)``,
    where ``index_error`` is ``None`` when the last index write succeeded and says
    why otherwise. Only ``KeyboardInterrupt`` (and other non-``Exception`` errors)
    stop the loop; what finished is on disk.
    """
    from nnlab.evaluate import write_index

    names = list(names)
    for n in names:
        get(n)  # an unknown name is a configuration error: fail before running anything
    out = Path(out)
    summaries: list[Summary] = []
    index_path = out / "report.md"
    index_error: str | None = None

    def update_index() -> None:
        nonlocal index_error
        try:
            write_index(out, summaries)
            index_error = None
        except OSError as err:
            index_error = str(err)

    update_index()
    bar = tqdm(names, desc="experiments", unit="experiment", disable=len(names) < 2)
    for name in bar:
        bar.set_postfix_str(name)
        summary = run_experiment(name, scale=scale, out=out, seed=seed, errors="record")
        summaries.append(summary)
        update_index()
        if on_result is not None:
            on_result(summary)
    return summaries, index_path, index_error


def run_demo(
    *,
    out: Path | str = "nnlab-demo",
    seed: int = 0,
    names: Sequence[str],
    on_result: Callable[[Summary], None] | None = None,
) -> Path:
    """Run the small config of each experiment in ``names``; return the index report path.

    Each experiment's folder is complete as soon as it finishes, and the index is
    rewritten after each, so an interrupted demo keeps what it finished. An
    experiment that raises, or whose files cannot be written, does not stop the
    others: it is recorded (ERROR in the index, its traceback in its report) and
    passed to ``on_result`` like every other summary (see :func:`run_all`).

    Raises:
      ValueError: a name is not registered (before anything runs).
      OSError: the index could not be written (after every experiment ran).
    """
    _, index, index_error = run_all(names, scale="small", out=out, seed=seed, on_result=on_result)
    if index_error is not None:
        raise OSError(index_error)
    return index
