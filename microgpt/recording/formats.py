"""The trace file formats, by name and by suffix: what `export` writes and how a
file name chooses (graphviz_export.options.output_format does the same for pictures).

    trace_format('anna.mgtrace')           -> 'binary'
    trace_format('anna.json')              -> 'json'   (any other suffix too)
    encode_trace(trace, 'binary')          -> bytes
"""

from .codecs.binary import SUFFIX as BINARY_SUFFIX
from .madeby import replay

TRACE_FORMATS = ('json', 'binary')
TRACE_SUFFIXES = {'json': '.json', 'binary': BINARY_SUFFIX}
DEFAULT_TRACE_FORMAT = 'json'   # the documented schema, for other tools


def trace_format(outfile, format=None):
    """`format` when given, else 'binary' for a name ending in .mgtrace, else json."""
    if format is not None:
        return format
    return 'binary' if outfile and str(outfile).endswith(BINARY_SUFFIX) else DEFAULT_TRACE_FORMAT


def encode_trace(trace, format, progress=None):
    """The trace as the bytes (binary) or text (json) of `format`. A binary file carries the
    "made by" chains (recording.madeby), so opening it never replays the forward pass: a trace
    of the port's model that has none yet (recorded without lines, or loaded from an older file)
    is replayed now, telling `progress(phase, done, total)` how far (it swaps the engine's ops:
    not while another recording runs)."""
    if format != 'binary':
        return trace.to_json()
    replay(trace, progress)
    return trace.to_binary()
