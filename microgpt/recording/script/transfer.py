"""Trace columns from the child to the parent: a small binary file, data only.

    b'MGSCRIPT1\\n'  8-byte little-endian header length  header (JSON)  column bytes

The header holds the small tables (op names, scopes, sources, params, meta, probes)
and, per numeric column, its name and element count; the columns follow as the raw
bytes of their arrays in a fixed order with fixed type codes. Nothing in it is code:
the parent reads it with json and array, never pickle, so a script cannot make the
parent run anything. A 100,000-node step moves in a few tens of milliseconds
(JSON of the same trace takes seconds).
"""

import json
import struct
from array import array

from ..scopes import Scope
from ..sources import Source

MAGIC = b'MGSCRIPT1\n'
COLUMNS = (('op', 'B'), ('data', 'd'), ('grad', 'd'), ('scope', 'I'), ('source', 'I'),
           ('child_ptr', 'q'), ('child', 'q'), ('local', 'd'), ('backward_order', 'q'))
TABLES = ('op_names', 'scopes', 'sources', 'param_names', 'meta')


class TransferError(ValueError):
    """The child's trace file is damaged or not one of ours."""


def write_columns(path, cols):
    arrays = []
    for name, code in COLUMNS:
        try:
            arrays.append(array(code, cols[name]))
        except (TypeError, OverflowError) as e:
            bad = next((x for x in cols[name] if not isinstance(x, (int, float))), None)
            what = f"{type(bad).__name__} {bad!r}" if bad is not None else str(e)
            raise TypeError(f"a node's {name} is not a number: {what}") from None
    header = {k: cols[k] for k in TABLES}
    header['param_shapes'] = [[n, *cols['param_shapes'][n]] for n in cols['param_names']]
    header['param_base'] = [[n, cols['param_base'][n]] for n in cols['param_names']]
    header['pow_exponent'] = sorted(cols['pow_exponent'].items())
    header['probes'] = sorted(cols['probes'].items())
    header['columns'] = [[name, len(a)] for (name, _), a in zip(COLUMNS, arrays)]
    text = json.dumps(header, separators=(',', ':')).encode('utf-8')
    with open(path, 'wb') as f:
        f.write(MAGIC)
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for a in arrays:
            a.tofile(f)


def read_columns(path):
    """The columns dict (arrays for the numeric columns); raises TransferError."""
    with open(path, 'rb') as f:
        blob = f.read()
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 8:
        raise TransferError("the recorder's output is not a trace file")
    (hlen,) = struct.unpack_from('<Q', blob, len(MAGIC))
    start = len(MAGIC) + 8
    try:
        header = json.loads(blob[start:start + hlen])
        counts = dict(header['columns'])
    except (ValueError, KeyError, TypeError):
        raise TransferError("the recorder's output has a damaged header") from None
    pos = start + hlen
    cols = {}
    for name, code in COLUMNS:
        a = array(code)
        size = counts.get(name, -1) * a.itemsize
        if size < 0 or pos + size > len(blob):
            raise TransferError(f"the recorder's output is truncated (column {name})")
        a.frombytes(blob[pos:pos + size])
        cols[name] = a
        pos += size
    for k in TABLES:
        cols[k] = header[k]
    try:
        cols['scopes'] = [Scope(*s) for s in cols['scopes']]
        cols['sources'] = [Source(s[0], s[1], tuple(s[2]), *s[3:]) for s in cols['sources']]
    except TypeError:
        raise TransferError("the recorder's output has a damaged scope or source table") from None
    cols['param_shapes'] = {n: (r, c) for n, r, c in header['param_shapes']}
    cols['param_base'] = dict(header['param_base'])
    cols['pow_exponent'] = {int(i): e for i, e in header['pow_exponent']}
    cols['probes'] = {int(i): p for i, p in header['probes']}
    _validate(cols)
    cols['op_names'] = tuple(cols['op_names'])
    return cols


def _validate(cols):
    n = len(cols['op'])
    for name in ('data', 'grad', 'scope', 'source'):
        if len(cols[name]) != n:
            raise TransferError(f"the recorder's output has {len(cols[name])} {name} values for {n} nodes")
    ptr, child = cols['child_ptr'], cols['child']
    if len(ptr) != n + 1 or ptr[0] != 0 or ptr[-1] != len(child) or len(cols['local']) != len(child):
        raise TransferError("the recorder's output has inconsistent edges")
    for name, column, limit in (('op', cols['op'], len(cols['op_names'])), ('scope', cols['scope'], len(cols['scopes'])),
                                ('source', cols['source'], len(cols['sources'])), ('child', child, n),
                                ('backward_order', cols['backward_order'], n)):
        if len(column) and not (0 <= min(column) and max(column) < limit):
            raise TransferError(f"the recorder's output has a {name} out of range")
