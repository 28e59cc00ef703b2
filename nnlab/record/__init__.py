"""The one result type: :class:`Record` (named axes, coordinates, a ``'time'`` axis, metadata).

See ``docs/architecture.md``. ``nnlab.Record``, ``nnlab.save_record`` and
``nnlab.load_record`` are these.
"""

from ._io import CorruptRecordError as CorruptRecordError
from ._io import load_record as load_record
from ._io import read_extra as read_extra
from ._io import save_record as save_record
from ._record import TIME as TIME
from ._record import Record as Record
from ._record import stack as stack

__all__ = [
    "TIME",
    "CorruptRecordError",
    "Record",
    "load_record",
    "read_extra",
    "save_record",
    "stack",
]
