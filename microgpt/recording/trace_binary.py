"""Trace <-> a compact binary file: the columns as they are in memory.

    MAGIC (8 bytes) | header length (4 bytes, little-endian) | header (JSON) | zlib(columns)

The header holds what is small (scopes, parameters, pow exponents, meta, and
each column's name, type code, item size and length); the body is the column
arrays' raw bytes, one after another, compressed with zlib. Loading is a
decompress and one `array.frombytes` per column, plus range checks done in C
(min/max), so a saved trace loads faster than recording the step again, which
the JSON (one Python object per node) does not. Same content as the JSON
schema (microgpt.recording.trace_json), bit-exact floats.
"""

import json
import struct
import sys
import zlib
from array import array
from itertools import islice
from operator import le

from .ops import OP_CODE, OPS
from .scopes import FIELDS, Scope
from .sources import Source
from .trace_json import TraceFormatError

MAGIC = b'MGTRACE\x01'
SCHEMA = 'microgpt-graph.trace-binary'
VERSION = 1
SUFFIX = '.mgtrace'
# (attribute, type code): the order of the columns in the body
COLUMNS = (('op', 'B'), ('data', 'd'), ('grad', 'd'), ('scope', 'I'), ('child_ptr', 'q'),
           ('child', 'q'), ('local', 'd'), ('backward_order', 'q'))


def is_binary_trace(head: bytes) -> bool:
    return head.startswith(MAGIC)


def dump_binary(trace) -> bytes:
    """The file's bytes."""
    columns = [(name, code, getattr(trace, name)) for name, code in COLUMNS]
    if trace.source is not None:  # a trace recorded from a script: the line that made each node
        columns.append(('source', 'I', trace.source))
    header = {
        'schema': SCHEMA, 'version': VERSION, 'byteorder': sys.byteorder,
        'columns': [[name, code, col.itemsize, len(col)] for name, code, col in columns],
        'scopes': [list(s) for s in trace.scopes],
        'params': [[n, *trace.param_shapes[n], trace.param_base[n]] for n in trace.param_names],
        'pow_exponent': [[i, e] for i, e in trace.pow_exponent.items()],
        'meta': trace.meta,
        'ops': list(trace.op_names[len(OPS):]),
        'probes': [[i, p] for i, p in trace.probes.items()],
    }
    if trace.sources is not None:
        header['sources'] = [[s.file, s.line, list(s.funcs), s.text, s.op_file, s.op_line, s.grad_line]
                             for s in trace.sources]
    head = json.dumps(header, separators=(',', ':')).encode('utf-8')
    body = zlib.compress(b''.join(col.tobytes() for _, _, col in columns), 1)
    return MAGIC + struct.pack('<I', len(head)) + head + body


def read_binary(raw: bytes) -> dict:
    """The `Trace(**columns)` keyword arguments; TraceFormatError says what is wrong."""
    if not raw.startswith(MAGIC):
        raise TraceFormatError("not a binary trace (it does not start with the microgpt-graph trace signature)")
    try:
        (size,) = struct.unpack_from('<I', raw, len(MAGIC))
        start = len(MAGIC) + 4
        header = json.loads(raw[start:start + size].decode('utf-8'))
        body = zlib.decompress(raw[start + size:])
    except (struct.error, UnicodeDecodeError, json.JSONDecodeError, zlib.error) as e:
        raise TraceFormatError(f"binary trace is damaged ({type(e).__name__}: {e})") from None
    if not isinstance(header, dict) or header.get('schema') != SCHEMA:
        raise TraceFormatError(f"binary trace: expected schema {SCHEMA!r}")
    if header.get('version') != VERSION:
        raise TraceFormatError(f"binary trace version {header.get('version')!r} is not supported; "
                               f"this tool reads version {VERSION}")
    cols, offset = {}, 0
    try:
        for name, code, itemsize, count in header['columns']:
            col = array(code)
            if col.itemsize != itemsize:
                raise TraceFormatError(f"binary trace: column {name!r} has {itemsize}-byte items; "
                                       f"this platform's {code!r} has {col.itemsize}")
            end = offset + itemsize * count
            if end > len(body):
                raise TraceFormatError(f"binary trace is cut short in column {name!r}")
            col.frombytes(body[offset:end])
            offset = end
            if header['byteorder'] != sys.byteorder:
                col.byteswap()
            cols[name] = col
        missing = [name for name, _ in COLUMNS if name not in cols]
        if missing:
            raise TraceFormatError(f"binary trace: missing columns {', '.join(missing)}")
        scopes = [Scope(*s) for s in header['scopes']]
        if any(len(s) != len(FIELDS) for s in header['scopes']):
            raise TraceFormatError(f"binary trace: each scope needs the {len(FIELDS)} fields {FIELDS}")
        names, shapes, base = [], {}, {}
        for name, rows, ncols, first in header['params']:
            names.append(name)
            shapes[name] = (rows, ncols)
            base[name] = first
        exps = {int(i): e for i, e in header['pow_exponent']}
        meta = header['meta']
        extra = header.get('ops', [])
        if any(not isinstance(x, str) or x in OP_CODE for x in extra):
            raise TraceFormatError("binary trace: \"ops\" must list a script's own op names")
        op_names = OPS + tuple(extra)
        probes = {int(i): p for i, p in header.get('probes', [])}
        sources = None
        if 'sources' in header:
            sources = [Source(str(s[0]), int(s[1]), tuple(map(str, s[2])), str(s[3]), str(s[4]), int(s[5]),
                              int(s[6])) for s in header['sources']]
    except (KeyError, TypeError, ValueError) as e:
        raise TraceFormatError(f"binary trace: malformed header ({type(e).__name__}: {e})") from None
    if (sources is None) != ('source' not in cols):
        raise TraceFormatError("binary trace: a source column needs its sources, and the other way round")
    _check(cols, scopes, names, shapes, base, exps, meta, op_names, sources, probes)
    return dict(scopes=scopes, pow_exponent=exps, param_names=names, param_shapes=shapes,
                param_base=base, meta=meta, op_names=op_names, sources=sources, probes=probes,
                source=cols.pop('source', None), **cols)


def _check(cols, scopes, names, shapes, base, exps, meta, op_names, sources, probes):
    """Every id in range and every length consistent, so queries cannot fail later."""
    n = len(cols['op'])
    ptr, child = cols['child_ptr'], cols['child']
    if any(len(cols[k]) != n for k in ('data', 'grad', 'scope')):
        raise TraceFormatError("binary trace: the node columns have different lengths")
    if len(ptr) != n + 1 or ptr[0] != 0 or ptr[-1] != len(child) or len(cols['local']) != len(child):
        raise TraceFormatError("binary trace: the edge offsets do not match the edge columns")
    if not all(map(le, ptr, islice(ptr, 1, None))):
        raise TraceFormatError("binary trace: the edge offsets go backwards")
    if n and max(cols['op']) >= len(op_names):
        raise TraceFormatError(f"binary trace: an op code is not one of {len(op_names)} ops")
    if 'source' in cols and (len(cols['source']) != n or (n and max(cols['source']) >= len(sources))):
        raise TraceFormatError("binary trace: a node's source is not an index into the sources")
    if any(not 0 <= i < n for i in probes):
        raise TraceFormatError("binary trace: probes belong to no node")
    if n and max(cols['scope']) >= len(scopes):
        raise TraceFormatError("binary trace: a node's scope is not an index into the scopes")
    for what, ids in (('child', child), ('backward_order', cols['backward_order'])):
        if ids and not (min(ids) >= 0 and max(ids) < n):
            raise TraceFormatError(f"binary trace: a {what} id is not a node id (0..{n - 1})")
    for name in names:
        rows, ncols = shapes[name]
        if not (0 <= base[name] and base[name] + rows * ncols <= n):
            raise TraceFormatError(f"binary trace: parameter {name!r} cells are not all nodes")
    if any(not 0 <= i < n for i in exps):
        raise TraceFormatError("binary trace: a pow exponent belongs to no node")
    if not isinstance(meta, dict):
        raise TraceFormatError("binary trace: meta is not an object")
    for key in ('loss_id',):
        if key in meta and not (isinstance(meta[key], int) and 0 <= meta[key] < n):
            raise TraceFormatError(f"binary trace: meta.{key} {meta[key]!r} is not a node id")
