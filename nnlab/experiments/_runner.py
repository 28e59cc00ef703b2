"""Running registered experiments and writing their output folders.

``run_experiment`` writes ``OUT/NAME/config.json``, ``results.json`` (metrics and
pass/fail of every comparison), arrays as ``.npz``, figures as PNG and a
``report.md``. ``run_demo`` runs the small config of every experiment, writing
each as it finishes, then an index ``report.md`` with a summary table.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from ._registry import Scale, get


def run_experiment(
    name: str, *, scale: Scale = "small", out: Path | str = "nnlab-out", seed: int = 0
) -> dict:
    """Run experiment ``name`` at ``scale`` and write its folder ``out/name``.

    Returns a summary dict: ``name``, ``passed``, ``seconds``, ``dir`` and the
    per-comparison ``results``.
    """
    from nnlab.evaluate import write_report

    if not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}.")
    exp = get(name)
    config = exp.config(scale)
    folder = Path(out) / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(
        json.dumps(
            {"name": name, "scale": scale, "seed": seed, "config": config}, indent=2, default=str
        )
    )
    start = time.perf_counter()
    comparisons = exp.run(config, seed)
    seconds = time.perf_counter() - start
    results = write_report(folder, exp, comparisons, scale=scale, seed=seed, seconds=seconds)
    return {
        "name": name,
        "passed": results["passed"],
        "seconds": seconds,
        "dir": str(folder),
        "results": results,
    }


def run_demo(*, out: Path | str = "nnlab-demo", seed: int = 0, names: Sequence[str]) -> Path:
    """Run the small config of each experiment in ``names``; return the index report path.

    Each experiment's folder is complete as soon as it finishes, so an
    interrupted demo keeps what it finished; the index is rewritten after each.
    """
    from nnlab.evaluate import write_index

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summaries = []
    index = write_index(out, summaries)
    bar = tqdm(list(names), desc="nnlab demo", unit="experiment")
    for name in bar:
        bar.set_postfix_str(name)
        summaries.append(run_experiment(name, scale="small", out=out, seed=seed))
        index = write_index(out, summaries)
    return index
