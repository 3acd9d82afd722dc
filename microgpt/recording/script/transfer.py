"""Trace columns from the child to the parent: the binary trace codec, data only.

The child writes the columns build.py made with microgpt.recording.codecs.binary
(COMPRESSION below); the parent reads them back with the same codec and its one
validator, as it reads any saved trace, so a script cannot hand the parent a
cycle, an id out of range or text a picture cannot hold. Nothing in the file is
code: json and array, never pickle.
"""

from array import array
from types import SimpleNamespace

from ...files import read_capped_bytes
from ..codecs import MAX_TRACE_BYTES, TraceFormatError, binary
from ..codecs.validate import COLUMNS, SOURCE_COLUMN, plain_of

# The file goes through a temp folder and is read at once: compressing it costs more
# than the bytes it saves (benchmarks/bench_record_script.py, "3. the hand-off").
COMPRESSION = 'none'


def write_columns(path, cols, compression=COMPRESSION):
    """Write build.py's columns (lists and tables) to `path`; TypeError names a value
    that is not a number."""
    arrays = {}
    for name, code in COLUMNS + (SOURCE_COLUMN,):
        try:
            arrays[name] = array(code, cols[name])
        except (TypeError, OverflowError) as e:
            bad = next((x for x in cols[name] if not isinstance(x, (int, float))), None)
            what = f"{type(bad).__name__} {bad!r}" if bad is not None else str(e)
            raise TypeError(f"a node's {name} is not a number: {what}") from None
    with open(path, 'wb') as f:
        f.write(binary.encode(plain_of(SimpleNamespace(**{**cols, **arrays})), compression))


def read_columns(path):
    """The `Trace(**columns)` keyword arguments of the child's file; TraceFormatError if damaged."""
    return binary.read(read_capped_bytes(path, MAX_TRACE_BYTES, "the recorder's output", TraceFormatError))
