"""Writing experiment folders (JSON, NPZ, PNG, Markdown) and the demo index.

Everything a report holds is built in memory first (records, PNG bytes, the NPZ
archive); only then are files written, each atomically (a temporary file in the
same folder, then :func:`os.replace`), ``results.json`` first. So a failed write
never leaves a truncated file behind, and it raises :class:`ReportWriteError`,
which carries the computed results so nothing is lost.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import re
import sys
import traceback as _traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._comparison import Comparison, _fmt
from ._plot import new_axes

_SLUG = re.compile(r"[^A-Za-z0-9_.-]+")


class ReportWriteError(OSError):
    """Writing a report's files failed after its results were computed.

    A subclass of :class:`OSError`, so ``except OSError`` still catches it.

    Attributes:
      path: the file or folder that could not be written.
      results: the dict that :func:`write_report` would have returned (and written to
        ``results.json``), or ``None`` where the writer had no results (the index).
    """

    def __init__(self, path: Path | str, cause: BaseException, results: Any = None):
        reason = getattr(cause, "strerror", None) or str(cause) or type(cause).__name__
        super().__init__(f"could not write {os.fspath(path)}: {reason}")
        self.path = Path(path)
        self.results = results
        self.errno = getattr(cause, "errno", None)


def _atomic_write(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file and :func:`os.replace`.

    Raises the ``OSError`` of the failing step; the temporary file is removed.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(raw)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _write_files(folder: Path, files: Sequence[tuple[str, bytes | str]], results: Any) -> None:
    """Create ``folder`` and write ``files`` (name, data) in order; OSError -> ReportWriteError."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ReportWriteError(folder, err, results) from err
    for name, data in files:
        try:
            _atomic_write(folder / name, data)
        except OSError as err:
            raise ReportWriteError(folder / name, err, results) from err


def _write_results(
    folder: Path, results: dict[str, Any], markdown: str, more: Sequence[tuple[str, bytes]] = ()
) -> None:
    """Write ``results.json`` (valid JSON: non-finite numbers are strings), ``report.md``, then
    ``more``, in that order."""
    data = json.dumps(results, indent=2, allow_nan=False) + "\n"
    _write_files(folder, [("results.json", data), ("report.md", markdown), *more], results)


def _run_fields(exp: Any, scale: str, seed: int, seconds: float) -> dict[str, Any]:
    """What ran and how: the fields that head every ``results.json``."""
    return {
        "experiment": getattr(exp, "name", str(exp)),
        "reference": getattr(exp, "reference", ""),
        "description": getattr(exp, "description", ""),
        "scale": scale,
        "seed": seed,
        "seconds": float(seconds),
    }


def _markdown_head(r: Mapping[str, Any], verdict: str) -> list[str]:
    """The top of every ``report.md``: title, ``verdict`` and how the experiment ran."""
    return [
        f"# {r['experiment']}",
        "",
        verdict,
        "",
        f"- Reference: {r['reference']}",
        f"- What: {r['description']}",
        f"- Scale `{r['scale']}`, seed {r['seed']}, {_num(r['seconds'])} s",
        "",
    ]


def _png_bytes(fig) -> bytes:
    """Render ``fig`` to PNG bytes (rendering errors raise here, not at write time)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


@dataclasses.dataclass(frozen=True, eq=False)
class ExperimentResult:
    """What an experiment's ``run`` may return instead of a plain list of comparisons.

    Attributes:
      comparisons: the :class:`Comparison` records that decide pass/fail.
      figures: extra matplotlib figures by name (e.g. a phase diagram), saved
        as ``<name>.png`` and shown in the report.
      arrays: extra arrays by name, saved in ``arrays.npz`` under ``extra/<name>``.
      notes: free Markdown text appended to the report.
    """

    comparisons: Sequence[Comparison]
    figures: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    arrays: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    notes: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "comparisons", _checked_comparisons(self.comparisons))
        if not isinstance(self.figures, Mapping):
            raise TypeError(f"figures must be a mapping name -> Figure, got {type(self.figures)}.")
        from matplotlib.figure import Figure

        for name, fig in self.figures.items():
            if not isinstance(fig, Figure):
                raise TypeError(
                    f"figures[{name!r}] must be a matplotlib Figure, got {type(fig).__name__}."
                )
        if not isinstance(self.arrays, Mapping):
            raise TypeError(f"arrays must be a mapping name -> array, got {type(self.arrays)}.")
        if not isinstance(self.notes, str):
            raise TypeError(f"notes must be a str, got {type(self.notes).__name__}.")


def _checked_comparisons(comparisons: Any) -> tuple[Comparison, ...]:
    if isinstance(comparisons, Comparison):
        return (comparisons,)
    if isinstance(comparisons, (str, bytes)) or not isinstance(comparisons, Sequence):
        raise TypeError(
            "comparisons must be a list of Comparison records or an ExperimentResult, got "
            f"{type(comparisons).__name__}."
        )
    out = tuple(comparisons)
    for i, c in enumerate(out):
        if not isinstance(c, Comparison):
            raise TypeError(f"comparisons[{i}] must be a Comparison, got {type(c).__name__}.")
    return out


def slug(name: str) -> str:
    """A file-name-safe version of ``name`` (letters, digits, ``_ . -``)."""
    s = _SLUG.sub("_", name).strip("._")
    return s or "unnamed"


def _json_safe(obj: Any) -> Any:
    """Replace non-finite floats by the strings 'nan', 'inf', '-inf'; NumPy scalars by Python."""
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _json_safe(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return x if math.isfinite(x) else str(x)
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def _close(fig) -> None:
    """Release a figure from pyplot's registry if pyplot is in use (no-op otherwise)."""
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close(fig)


def _comparison_record(c: Comparison, figure: str | None, error: str | None) -> dict[str, Any]:
    return {
        "name": c.name,
        "description": c.description,
        "metric": c.metric,
        "value": c.value,
        "tolerance": c.tolerance,
        "passed": c.passed,
        "metrics": c.metrics(),
        "axes": list(c.axes),
        "shape": list(c.theory.shape),
        "figure": figure,
        "figure_error": error,
    }


def write_report(
    folder: Path | str,
    exp: Any,
    comparisons: Sequence[Comparison] | ExperimentResult,
    *,
    scale: str,
    seed: int,
    seconds: float,
) -> dict[str, Any]:
    """Write an experiment's ``results.json``, ``arrays.npz``, PNG figures and ``report.md``.

    Args:
      folder: output folder (created if missing).
      exp: the :class:`~nnlab.registry.Experiment` (its ``name``,
        ``reference`` and ``description`` head the report).
      comparisons: a list of :class:`Comparison` records, or an
        :class:`ExperimentResult` with extra figures, arrays and notes.
      scale, seed, seconds: how the experiment was run (recorded).

    Returns:
      The dict written to ``results.json``; ``passed`` is True when there is at
      least one comparison and every comparison passed. Non-finite numbers are
      written as the strings ``"nan"``, ``"inf"``, ``"-inf"`` so the JSON is valid.

    Raises:
      ReportWriteError: a file could not be written (its ``results`` attribute holds the
        returned dict, so the computed results survive). Files are written atomically,
        ``results.json`` first, then ``report.md``, ``arrays.npz`` and the figures.
      ValueError, TypeError: the comparisons are malformed (nothing is written).
    """
    result = (
        comparisons
        if isinstance(comparisons, ExperimentResult)
        else ExperimentResult(comparisons=comparisons)
    )
    comps = result.comparisons
    folder = Path(folder)

    slugs = [slug(c.name) for c in comps]
    fig_slugs = [slug(n) for n in result.figures]
    taken = slugs + fig_slugs
    duplicates = sorted({s for s in taken if taken.count(s) > 1})
    if duplicates:
        raise ValueError(
            f"comparison and figure names must be distinct as file names; {duplicates} repeat "
            f"(names: {[c.name for c in comps] + list(result.figures)})."
        )

    arrays: dict[str, np.ndarray] = {}
    pngs: list[tuple[str, bytes]] = []
    records = []
    for c, s in zip(comps, slugs):
        arrays[f"{s}/theory"] = c.theory
        arrays[f"{s}/simulation"] = c.simulation
        for axis, values in c.coords.items():
            arrays[f"{s}/coords/{axis}"] = values
        figure, error = f"{s}.png", None
        try:
            ax = c.plot(new_axes())
            pngs.append((figure, _png_bytes(ax.figure)))
        except Exception as err:  # a broken figure must not lose the numbers
            figure, error = None, f"{type(err).__name__}: {err}"
        records.append(_comparison_record(c, figure, error))
    for name, values in result.arrays.items():
        arrays[f"extra/{name}"] = np.asarray(values)
    npz = io.BytesIO()
    np.savez_compressed(npz, **arrays)

    extra_figures = {}
    for (name, fig), s in zip(result.figures.items(), fig_slugs):
        pngs.append((f"{s}.png", _png_bytes(fig)))
        _close(fig)
        extra_figures[name] = f"{s}.png"

    n_passed = sum(r["passed"] for r in records)
    results = {
        **_run_fields(exp, scale, seed, seconds),
        "passed": bool(records) and n_passed == len(records),
        "n_comparisons": len(records),
        "n_passed": n_passed,
        "comparisons": records,
        "figures": extra_figures,
        "notes": result.notes,
    }
    results = _json_safe(results)
    _write_results(
        folder, results, _experiment_markdown(results), [("arrays.npz", npz.getvalue()), *pngs]
    )
    return results


def write_error_report(
    folder: Path | str,
    exp: Any,
    error: BaseException,
    *,
    scale: str,
    seed: int,
    seconds: float,
) -> dict[str, Any]:
    """Write ``results.json`` and ``report.md`` for an experiment whose run raised ``error``.

    The record has ``passed: False``, no comparisons, and ``error`` (``"Type: message"``)
    and ``traceback`` fields; the report shows both. Returns the record. A failed write
    raises :class:`ReportWriteError` carrying the record.
    """
    tb = "".join(_traceback.format_exception(type(error), error, error.__traceback__))
    results = _json_safe(
        {
            **_run_fields(exp, scale, seed, seconds),
            "passed": False,
            "n_comparisons": 0,
            "n_passed": 0,
            "comparisons": [],
            "figures": {},
            "notes": "",
            "error": describe_error(error),
            "traceback": tb,
        }
    )
    error_line = (
        f"**ERROR**: the experiment raised `{_cell(results['error'])}`, so nothing was checked."
    )
    md = [*_markdown_head(results, error_line), "```text", tb.rstrip("\n"), "```", ""]
    _write_results(Path(folder), results, "\n".join(md))
    return results


def describe_error(error: BaseException) -> str:
    """``"Type: message"`` for ``error`` on one line (just ``"Type"`` without a message)."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _num(x: Any) -> str:
    return _fmt(float(x)) if isinstance(x, (int, float, str)) else str(x)


def _experiment_markdown(r: Mapping[str, Any]) -> str:
    verdict = "PASS" if r["passed"] else "FAIL"
    lines = _markdown_head(
        r, f"**{verdict}**: {r['n_passed']} of {r['n_comparisons']} comparisons within tolerance."
    )
    if not r["comparisons"]:
        lines += ["No comparisons were returned, so nothing was checked (counted as FAIL).", ""]
    else:
        lines += [
            "| Comparison | Metric | Value | Tolerance | Result |",
            "|---|---|---|---|---|",
        ]
        for c in r["comparisons"]:
            lines.append(
                f"| {_cell(c['name'])} | {c['metric']} | {_num(c['value'])} | "
                f"{_num(c['tolerance'])} | {'PASS' if c['passed'] else 'FAIL'} |"
            )
        lines.append("")
    for c in r["comparisons"]:
        lines += [f"## {c['name']}", ""]
        if c["description"]:
            lines += [c["description"], ""]
        m = c["metrics"]
        lines += [
            ", ".join(f"{k} = {_num(v)}" for k, v in m.items()),
            "",
        ]
        if c["figure"]:
            lines += [f"![{c['name']}]({c['figure']})", ""]
        else:
            lines += [f"(figure failed: {c['figure_error']})", ""]
    if r["figures"]:
        lines += ["## Figures", ""]
        for name, path in r["figures"].items():
            lines += [f"### {name}", "", f"![{name}]({path})", ""]
    if r["notes"]:
        lines += ["## Notes", "", r["notes"], ""]
    return "\n".join(lines)


def write_index(out: Path | str, summaries: Sequence[Mapping[str, Any]]) -> Path:
    """Write ``out/report.md``: one row per experiment summary; return its path.

    ``summaries`` are the dicts :func:`nnlab.registry.run_experiment`
    returns (``name``, ``passed``, ``seconds``, ``dir``, ``results``, and optionally
    ``error``, the message of an exception the experiment raised, and ``write_error``,
    why its files could not be written). An experiment with an ``error`` is listed as
    ERROR and its message is repeated under "Errors"; write errors are listed under
    "Write errors". The file is replaced atomically; a failed write raises
    :class:`ReportWriteError`.
    """
    out = Path(out)
    rows = []
    errors = []
    write_errors = []
    for i, s in enumerate(summaries):
        missing = {"name", "passed", "seconds", "dir"} - set(s)
        if missing:
            raise ValueError(f"summaries[{i}] lacks keys {sorted(missing)}; got {sorted(s)}.")
        res = s.get("results") or {}
        counts = (
            f"{res['n_passed']}/{res['n_comparisons']}"
            if "n_passed" in res and "n_comparisons" in res
            else "?"
        )
        link = Path(os.path.relpath(Path(s["dir"]) / "report.md", out)).as_posix()
        if s.get("error"):
            verdict = "ERROR"
            errors.append(f"- {_cell(s['name'])}: `{_cell(s['error'])}`")
        else:
            verdict = "PASS" if s["passed"] else "FAIL"
        if s.get("write_error"):
            write_errors.append(f"- {_cell(s['name'])}: {_cell(s['write_error'])}")
        rows.append(
            f"| {_cell(s['name'])} | {verdict} | "
            f"{float(s['seconds']):.1f} | {counts} | [report]({link}) |"
        )
    n_pass = sum(bool(s["passed"]) for s in summaries)
    total = sum(float(s["seconds"]) for s in summaries)
    headline = f"**{n_pass} of {len(summaries)} experiments passed** ({total:.1f} s in total)."
    if errors:
        headline += f" {len(errors)} raised an error."
    lines = [
        "# nnlab experiments",
        "",
        headline,
        "",
        "| Experiment | Result | Time (s) | Comparisons passed | Report |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ]
    if errors:
        lines += ["## Errors", "", *errors, ""]
    if write_errors:
        lines += ["## Write errors", "", *write_errors, ""]
    path = out / "report.md"
    _write_files(out, [("report.md", "\n".join(lines))], None)
    return path
