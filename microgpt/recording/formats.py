"""The trace file formats, by name and by suffix: what `export` writes and how a
file name chooses (graphviz_export.options.output_format does the same for pictures).

    trace_format('anna.mgtrace')           -> 'binary'
    trace_format('anna.json')              -> 'json'   (any other suffix too)
    encode_trace(trace, 'binary')          -> bytes
"""

from .codecs.binary import SUFFIX as BINARY_SUFFIX

TRACE_FORMATS = ('json', 'binary')
TRACE_SUFFIXES = {'json': '.json', 'binary': BINARY_SUFFIX}
DEFAULT_TRACE_FORMAT = 'json'   # the documented schema, for other tools


def trace_format(outfile, format=None):
    """`format` when given, else 'binary' for a name ending in .mgtrace, else json."""
    if format is not None:
        return format
    return 'binary' if outfile and str(outfile).endswith(BINARY_SUFFIX) else DEFAULT_TRACE_FORMAT


def encode_trace(trace, format):
    """The trace as the bytes (binary) or text (json) of `format`."""
    return trace.to_binary() if format == 'binary' else trace.to_json()
