"""Writing experiment folders (JSON, NPZ, PNG, Markdown) and the demo index."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._comparison import Comparison, _fmt
from ._plot import new_axes

_SLUG = re.compile(r"[^A-Za-z0-9_.-]+")


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
      exp: the :class:`~nnlab.experiments.Experiment` (its ``name``,
        ``reference`` and ``description`` head the report).
      comparisons: a list of :class:`Comparison` records, or an
        :class:`ExperimentResult` with extra figures, arrays and notes.
      scale, seed, seconds: how the experiment was run (recorded).

    Returns:
      The dict written to ``results.json``; ``passed`` is True when there is at
      least one comparison and every comparison passed. Non-finite numbers are
      written as the strings ``"nan"``, ``"inf"``, ``"-inf"`` so the JSON is valid.
    """
    result = (
        comparisons
        if isinstance(comparisons, ExperimentResult)
        else ExperimentResult(comparisons=comparisons)
    )
    comps = result.comparisons
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

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
    records = []
    for c, s in zip(comps, slugs):
        arrays[f"{s}/theory"] = c.theory
        arrays[f"{s}/simulation"] = c.simulation
        for axis, values in c.coords.items():
            arrays[f"{s}/coords/{axis}"] = values
        figure, error = f"{s}.png", None
        try:
            ax = c.plot(new_axes())
            ax.figure.savefig(folder / figure, dpi=100)
        except Exception as err:  # a broken figure must not lose the numbers
            figure, error = None, f"{type(err).__name__}: {err}"
        records.append(_comparison_record(c, figure, error))
    for name, values in result.arrays.items():
        arrays[f"extra/{name}"] = np.asarray(values)
    np.savez_compressed(folder / "arrays.npz", **arrays)

    extra_figures = {}
    for (name, fig), s in zip(result.figures.items(), fig_slugs):
        fig.savefig(folder / f"{s}.png", dpi=100)
        _close(fig)
        extra_figures[name] = f"{s}.png"

    n_passed = sum(r["passed"] for r in records)
    results = {
        "experiment": getattr(exp, "name", str(exp)),
        "reference": getattr(exp, "reference", ""),
        "description": getattr(exp, "description", ""),
        "scale": scale,
        "seed": seed,
        "seconds": float(seconds),
        "passed": bool(records) and n_passed == len(records),
        "n_comparisons": len(records),
        "n_passed": n_passed,
        "comparisons": records,
        "figures": extra_figures,
        "notes": result.notes,
    }
    results = _json_safe(results)
    (folder / "results.json").write_text(json.dumps(results, indent=2, allow_nan=False) + "\n")
    (folder / "report.md").write_text(_experiment_markdown(results))
    return results


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _num(x: Any) -> str:
    return _fmt(float(x)) if isinstance(x, (int, float, str)) else str(x)


def _experiment_markdown(r: Mapping[str, Any]) -> str:
    verdict = "PASS" if r["passed"] else "FAIL"
    lines = [
        f"# {r['experiment']}",
        "",
        f"**{verdict}**: {r['n_passed']} of {r['n_comparisons']} comparisons within tolerance.",
        "",
        f"- Reference: {r['reference']}",
        f"- What: {r['description']}",
        f"- Scale `{r['scale']}`, seed {r['seed']}, {_num(r['seconds'])} s",
        "",
    ]
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

    ``summaries`` are the dicts :func:`nnlab.experiments.run_experiment`
    returns (``name``, ``passed``, ``seconds``, ``dir``, ``results``).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
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
        rows.append(
            f"| {_cell(s['name'])} | {'PASS' if s['passed'] else 'FAIL'} | "
            f"{float(s['seconds']):.1f} | {counts} | [report]({link}) |"
        )
    n_pass = sum(bool(s["passed"]) for s in summaries)
    total = sum(float(s["seconds"]) for s in summaries)
    text = "\n".join(
        [
            "# nnlab experiments",
            "",
            f"**{n_pass} of {len(summaries)} experiments passed** ({total:.1f} s in total).",
            "",
            "| Experiment | Result | Time (s) | Comparisons passed | Report |",
            "|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    path = out / "report.md"
    path.write_text(text)
    return path
