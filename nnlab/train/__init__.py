"""Training engine: compiled loops, vmapped ensembles, sharding, sweeps and observables.

See ``docs/train.md``. Loss normalisation: ``loss='mse'`` with the default
``loss_normalization='mean'`` is ``L = ½ (1/n) Σ_i ‖f(x_i) − y_i‖²``, which matches
:mod:`nnlab.predict` with ``loss_normalization='mean'``. Online learning on fresh samples:
pass ``data=Stream(sample)``.
"""

from ._ensemble import train_ensemble as train_ensemble
from ._loop import Data as Data
from ._loop import make_loss as make_loss
from ._loop import train as train
from ._observables import Observable as Observable
from ._observables import ntk_relative_change as ntk_relative_change
from ._observables import ntk_top_eigenvalue as ntk_top_eigenvalue
from ._observables import weight_distance as weight_distance
from ._precision import matmul_precision as matmul_precision
from ._record import TrainRecord as TrainRecord
from ._record import load_record as load_record
from ._record import save_record as save_record
from ._record import stack_records as stack_records
from ._stream import Stream as Stream
from ._sweep import sweep as sweep
from ._sweep import width_sweep as width_sweep

__all__ = [
    "Data",
    "Observable",
    "Stream",
    "TrainRecord",
    "load_record",
    "make_loss",
    "matmul_precision",
    "ntk_relative_change",
    "ntk_top_eigenvalue",
    "save_record",
    "stack_records",
    "sweep",
    "train",
    "train_ensemble",
    "weight_distance",
    "width_sweep",
]
