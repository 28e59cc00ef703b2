"""The experiment registry: named, reproducible theory-vs-simulation runs.

An :class:`Experiment` couples a paper's claim with two configurations: a
``small`` one that runs on a laptop CPU in under a minute and a ``large`` one
sized for a GPU. A configuration is a typed frozen dataclass (its fields are the
experiment's knobs, with units in their docs). The ``run`` function takes the
chosen configuration and an integer seed, composes library calls that return
:class:`nnlab.Record` s, and returns what the evaluation layer writes (an
:class:`~nnlab.evaluate.ExperimentResult` or a list of ``Comparison`` s built with
:meth:`~nnlab.evaluate.Comparison.from_records`).

The built-in experiments (:mod:`nnlab.experiments`) register themselves at import time
with :func:`register`, and so can a user's own; the CLI
(``nnlab list``, ``nnlab run NAME``, ``nnlab demo``) reads the registry.
"""

from __future__ import annotations

import dataclasses
import importlib
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
      run: ``run(config, seed) -> ExperimentResult | list[Comparison]``.
      small: configuration for a CPU run (< 1 minute on 2 cores): a frozen dataclass
        (or, for older experiments, a dict).
      large: configuration for a GPU-scale run, of the same type.
    """

    name: str
    reference: str
    description: str
    run: Callable[[Any, int], Any]
    small: Any
    large: Any

    def __post_init__(self):
        for scale in ("small", "large"):
            cfg = getattr(self, scale)
            typed = dataclasses.is_dataclass(cfg) and not isinstance(cfg, type)
            if not (typed or isinstance(cfg, Mapping)):
                raise TypeError(
                    f"experiment {self.name!r}: {scale} must be a frozen config dataclass "
                    f"instance, got {type(cfg).__name__}."
                )

    def config(self, scale: Scale) -> Any:
        """The configuration for ``scale`` ('small' or 'large'): the dataclass (frozen, so
        shared safely) or a fresh dict."""
        if scale not in ("small", "large"):
            raise ValueError(f"scale must be 'small' or 'large', got {scale!r}.")
        cfg = self.small if scale == "small" else self.large
        return dict(cfg) if isinstance(cfg, Mapping) else cfg


def config_dict(config: Any) -> dict[str, Any]:
    """A configuration as a plain dict (for ``config.json``)."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    return dict(config)


_REGISTRY: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    """Add ``experiment`` to the registry; a second one with the same name is an error."""
    if not isinstance(experiment, Experiment):
        raise TypeError(f"experiment must be an Experiment, got {type(experiment).__name__}.")
    if experiment.name in _REGISTRY:
        raise ValueError(f"an experiment named {experiment.name!r} is already registered.")
    _REGISTRY[experiment.name] = experiment
    return experiment


def _load_builtin() -> None:
    # The built-in experiments register themselves when nnlab.experiments is imported.
    importlib.import_module("nnlab.experiments")


def get(name: str) -> Experiment:
    """The registered experiment called ``name`` (the built-in ones are loaded first)."""
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none are registered"
        raise ValueError(f"no experiment named {name!r}; known experiments: {known}.") from None


def names() -> list[str]:
    """Names of all registered experiments, sorted (the built-in ones are loaded first)."""
    _load_builtin()
    return sorted(_REGISTRY)
