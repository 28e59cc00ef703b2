"""Registered experiments (``nnlab list`` shows them).

Importing this package imports every experiment module, which registers its
experiments. Each module reproduces one published result at a CPU-sized
``small`` scale and a GPU-sized ``large`` scale.
"""

from ._registry import Experiment as Experiment
from ._registry import Scale as Scale
from ._registry import get as get
from ._registry import names as names
from ._registry import register as register
from ._runner import run_demo as run_demo
from ._runner import run_experiment as run_experiment
