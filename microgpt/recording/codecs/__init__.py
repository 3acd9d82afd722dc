"""Trace files: two codecs behind one validator.

    validate.py  the plain columns a codec carries, and check(plain): every type,
                 range, id, cycle, table and text checked once for both formats
    json.py      schema microgpt-graph.trace v1, one object per node (for other tools)
    binary.py    the columns' raw bytes, zstd (zlib in older files) or not (for speed;
                 the script recorder's hand-off from its child process too)

`read_file(path)` tells them apart by their first bytes, not by the file's name.
"""

from ...files import read_capped_bytes
from . import binary, json
from .validate import MAX_TRACE_BYTES, TraceFormatError, check, plain_of

__all__ = ['binary', 'json', 'check', 'plain_of', 'read_file', 'MAX_TRACE_BYTES', 'TraceFormatError']


def read_file(path, progress=None):
    """The `Trace(**columns)` keyword arguments of a file saved by `export` (binary or JSON).
    `progress(phase, done, total)`: told where the load is ('reading', then the binary codec's
    'inflating' and 'checking', or 'parsing' and 'checking' of JSON: one step each, nothing to count)."""
    say = progress or (lambda *_: None)
    say('reading', 0, 1)
    raw = read_capped_bytes(path, MAX_TRACE_BYTES, 'trace file', TraceFormatError)
    say('reading', 1, 1)
    if binary.is_binary_trace(raw):
        return binary.read(raw, progress)
    try:
        text = raw.decode('utf-8-sig')
    except UnicodeDecodeError:
        text = ''
    del raw
    if text.lstrip()[:1] != '{':
        raise TraceFormatError(f"{path} is neither a JSON trace nor a binary one (from `export`)")
    say('parsing', 0, 1)
    plain = json.decode(text)
    say('parsing', 1, 1)
    say(binary.CHECKING, 0, 1)
    kwargs = check(plain)
    say(binary.CHECKING, 1, 1)
    return kwargs
