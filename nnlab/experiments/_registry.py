"""The experiment registry: named, reproducible theory-vs-simulation runs.

An :class:`Experiment` couples a paper's claim with two configurations: a
``small`` one that runs on a laptop CPU in under a minute and a ``large`` one
sized for a GPU. Its ``run`` function takes the chosen configuration (a plain
dict) and an integer seed and returns whatever the evaluation layer knows how
to write (a list of ``Comparison`` records, see :mod:`nnlab.evaluate`).

Experiments register themselves at import time with :func:`register`; the CLI
(``nnlab list``, ``nnlab run NAME``, ``nnlab demo``) reads the registry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Literal

Scale = Literal["small", "large"]


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A registered experiment.

    Attributes:
      name: identifier used on the command line (``nnlab run NAME``).
      reference: the paper whose result is reproduced (authors, year, arXiv id).
      description: one sentence saying what is compared with what.
      run: ``run(config, seed) -> list[Comparison]``.
      small: configuration for a CPU run (< 1 minute on 2 cores).
      large: configuration for a GPU-scale run.
    """

    name: str
    reference: str
    description: str
    run: Callable[[Mapping[str, Any], int], Any]
    small: Mapping[str, Any]
    large: Mapping[str, Any]

    def config(self, scale: Scale) -> dict[str, Any]:
        """The configuration for ``scale`` ('small' or 'large') as a fresh dict."""
        if scale not in ("small", "large"):
            raise ValueError(f"scale must be 'small' or 'large', got {scale!r}.")
        return dict(self.small if scale == "small" else self.large)


_REGISTRY: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    """Add ``experiment`` to the registry; a second one with the same name is an error."""
    if not isinstance(experiment, Experiment):
        raise TypeError(f"experiment must be an Experiment, got {type(experiment).__name__}.")
    if experiment.name in _REGISTRY:
        raise ValueError(f"an experiment named {experiment.name!r} is already registered.")
    _REGISTRY[experiment.name] = experiment
    return experiment


def get(name: str) -> Experiment:
    """The registered experiment called ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none are registered"
        raise ValueError(f"no experiment named {name!r}; known experiments: {known}.") from None


def names() -> list[str]:
    """Names of all registered experiments, sorted."""
    return sorted(_REGISTRY)
