"""Plain trace columns <-> JSON, schema `microgpt-graph.trace` version 1 (for other tools).

    {
      "schema": "microgpt-graph.trace", "version": 1,
      "meta":   {"doc": "emma", "tokens": [26, 4, ...], "loss_id": 103674, "config": {...}, ...},
      "scopes": [[pos, layer, block, head, role], ...],      # a node's "scope" indexes this
      "params": [{"name": "wte", "rows": 27, "cols": 16, "first_id": 0}, ...],
      "backward_order": [103674, 103673, ...],               # ids as backward visited them
      "nodes": [
        {"id": 0, "op": "param", "data": 0.0123, "grad": -0.0004, "scope": 1,
         "children": [], "local_grads": [], "contributions": [],
         "param": {"name": "wte", "row": 0, "col": 0}},
        {"id": 4300, "op": "pow", "exponent": -0.5, "children": [4299], ...},
        ...
      ]
    }

A trace recorded from a user's script (`microgpt-graph record`) adds, all optional
(version 1 readers of the port's traces see nothing new):

      "ops":     ["tanh", "gelu", ...]     # the script's own op names, after the port's
      "sources": [[file, line, [functions], text, op_file, op_line, grad_line], ...]
      node "source": k                     # index into "sources": the line that made it
      node "probes": [[x+h, x-h, f(x+h), f(x-h)] or "why not", ...]   # per child, for ops
                                           # the node check re-ran instead of replaying

Node ids are 0..n-1 in creation order. `contributions[k]` is local_grads[k] *
grad: what backward added to children[k]'s grad (written for other tools; on
loading it is recomputed from the other two), and "param" is derived from
"params" (ignored on loading). Floats are written with Python's shortest
round-trip repr, so a round trip is bit-exact; a NaN or infinite grad (a broken
derivative) is written as the JSON extension tokens NaN / Infinity.

Reading turns the node list into plain columns, checking only what JSON itself
leaves open (a number where a number belongs, each node's fields present);
validate.check does the rest, as it does for the binary format.
"""

import json
import os
from array import array
from bisect import bisect_right
from itertools import accumulate, chain
from operator import itemgetter

from ...errors import InputError
from ...files import read_capped, write_atomic
from ..ops import OPS
from .validate import MAX_TRACE_BYTES, TraceFormatError, check, fail, op_names_of, owner, show

SCHEMA = 'microgpt-graph.trace'
VERSION = 1
NODE_FIELDS = ('id', 'op', 'data', 'grad', 'scope', 'children', 'local_grads')


def chunks(plain):
    """The JSON text of plain columns (validate.plain_of), a node at a time: the text
    json.dumps of the whole object with separators (',', ':') makes, without holding it
    (a 5-million-node trace is over a gigabyte of text)."""
    names = OPS + tuple(plain['ops'])
    source, data, grad = plain['source'], plain['data'], plain['grad']
    ptr, child, local = plain['child_ptr'], plain['child'], plain['local']
    exps, probes, cell_of = dict(plain['pow_exponent']), dict(plain['probes']), _cells(plain['params'])
    dumps = json.JSONEncoder(separators=(',', ':')).encode
    order = plain['backward_order']
    head = {
        'schema': SCHEMA, 'version': VERSION,
        'meta': plain['meta'],
        'scopes': plain['scopes'],
        'params': [dict(zip(('name', 'rows', 'cols', 'first_id'), p)) if isinstance(p, list) else p
                   for p in plain['params']],
    }
    yield dumps(head)[:-1] + ',"backward_order":['
    for k in range(0, len(order), _SLICE):
        yield (',' if k else '') + ','.join(map(str, order[k:k + _SLICE]))
    yield '],"nodes":['
    for i in range(len(plain['op'])):
        a, b = ptr[i], ptr[i + 1]
        g = grad[i]
        lg = local[a:b].tolist()
        node = {'id': i, 'op': names[plain['op'][i]], 'data': data[i], 'grad': g, 'scope': plain['scope'][i],
                'children': child[a:b].tolist(), 'local_grads': lg, 'contributions': [x * g for x in lg]}
        if i in exps:
            node['exponent'] = exps[i]
        cell = cell_of(i)
        if cell is not None:
            node['param'] = cell
        if source is not None:
            node['source'] = source[i]
        if i in probes:
            node['probes'] = probes[i]
        yield (',' if i else '') + dumps(node)
    tail = {}
    if plain['ops']:
        tail['ops'] = plain['ops']
    if plain['sources'] is not None:
        tail['sources'] = plain['sources']
    yield ']' + (',' + dumps(tail)[1:] if tail else '}')


_SLICE = 1 << 10     # ids of backward_order written at a time
# the shortest node's text: one-digit id, data, grad and scope, a three-letter op, no edges
SMALLEST_NODE = len('{"id":0,"op":"add","data":0,"grad":0,"scope":0,"children":[],"local_grads":[],'
                    '"contributions":[]},')


class TraceTooLarge(InputError):
    """A JSON trace the loader would refuse (over MAX_TRACE_BYTES): write the binary format."""


def _too_large(n, at_least):
    return TraceTooLarge(f"a JSON trace of {n} nodes is {at_least / 2 ** 20:.0f} MiB or more; the loader reads "
                         f"at most {MAX_TRACE_BYTES // 2 ** 20} MiB: use --format binary (a .mgtrace file), "
                         f"about {n * 19 / 2 ** 20:.0f} MiB")


def capped(plain):
    """chunks(plain) as UTF-8 bytes, refused (TraceTooLarge) before the first byte when its
    nodes alone would pass MAX_TRACE_BYTES, and as soon as the text does."""
    n = len(plain['op'])
    if n * SMALLEST_NODE > MAX_TRACE_BYTES:
        raise _too_large(n, n * SMALLEST_NODE)
    size = 0
    for chunk in chunks(plain):
        raw = chunk.encode('utf-8')
        size += len(raw)
        if size > MAX_TRACE_BYTES:
            raise _too_large(n, size)
        yield raw


def _cells(params):
    """cell(i): the {"name", "row", "col"} of parameter cell i, else None ("param" on a node:
    derived, written for other tools; a table that is not [name, rows, cols, first_id] adds
    none). From the matrices' id ranges, not a table per cell: a big model has millions."""
    spans = sorted((p[3], p[3] + p[1] * p[2], p[0], p[2]) for p in params
                   if isinstance(p, list) and len(p) == 4 and all(isinstance(x, int) for x in p[1:])
                   and 0 < p[1] * p[2] < 1 << 24)
    starts = [first for first, *_ in spans]

    def cell(i):
        k = bisect_right(starts, i) - 1
        if k < 0 or i >= spans[k][1]:
            return None
        first, _, name, cols = spans[k]
        return {'name': name, 'row': (i - first) // cols, 'col': (i - first) % cols}
    return cell


def encode(plain, path=None):
    """The JSON text; or, when `path` is given, the text written there atomically as it is
    made (constant memory) and its size in bytes returned. TraceTooLarge for a text the
    loader would refuse, before anything is written."""
    if path is None:
        return b''.join(capped(plain)).decode('utf-8')
    return write_atomic(path, capped(plain))


def load_json(source):
    """The JSON value of a string, bytes/path (at most MAX_TRACE_BYTES), or a dict as it is."""
    if isinstance(source, dict):
        return source
    text = source
    if isinstance(source, (os.PathLike, bytes)) or (isinstance(source, str) and source.lstrip()[:1] not in ('{', '[')):
        text = read_capped(source, MAX_TRACE_BYTES, 'trace file', TraceFormatError)
    try:
        return parse(text)
    except json.JSONDecodeError as e:
        raise TraceFormatError(f"trace is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except (ValueError, RecursionError) as e:
        raise TraceFormatError(f"trace is not valid JSON: {str(e)[:200]}") from None


def parse(text):
    """json.loads as both codecs read JSON (this file, the binary file's header), so a
    value reads the same from either: a huge integer (1e400 written out) becomes a
    float, inf past the float range, instead of an OverflowError later."""
    return json.loads(text, parse_int=_parse_int)


def _parse_int(text):
    return int(text) if len(text) <= 18 else float(text)


def decode(source):
    """The plain columns of a JSON trace (a string, a dict, or a path to a JSON file)."""
    d = load_json(source)
    if not isinstance(d, dict) or d.get('schema') != SCHEMA:
        raise TraceFormatError(f"not a trace: expected \"schema\": \"{SCHEMA}\"")
    if d.get('version') != VERSION:
        raise TraceFormatError(f"trace schema version {repr(d.get('version'))[:20]} is not supported; "
                               f"this tool reads version {VERSION}")
    for key, kind in (('meta', dict), ('scopes', list), ('params', list), ('nodes', list), ('backward_order', list)):
        if not isinstance(d.get(key), kind):
            fail(f"\"{key}\" is missing or not a{'n object' if kind is dict else ' list'}")
    nodes = d['nodes']
    if not all(isinstance(node, dict) for node in nodes):
        fail(f"node {next(i for i, node in enumerate(nodes) if not isinstance(node, dict))} must be an object")
    fields = {}
    with_source = 'sources' in d or any('source' in node for node in nodes)   # check: both or neither
    for key in NODE_FIELDS + (('source',) if with_source else ()):
        try:
            fields[key] = list(map(itemgetter(key), nodes))
        except KeyError:
            fail(f"node {next(i for i, node in enumerate(nodes) if key not in node)}: missing field {key!r}")
    if fields['id'] != list(range(len(nodes))) or not {type(x) for x in fields['id']} <= {int}:
        i = next(i for i, x in enumerate(fields['id']) if x != i or not isinstance(x, int) or isinstance(x, bool))
        fail(f"node {i}: id is {show(fields['id'][i])}; ids must be 0..{len(nodes) - 1} in order")
    code_of = {name: k for k, name in enumerate(op_names_of(d.get('ops', [])))}
    op = _column('op', 'B', [code_of.get(x) if isinstance(x, str) else None for x in fields['op']], fields['op'],
                 lambda x, raw: f"unknown op {show(raw)}; ops: {', '.join(code_of)}")
    children, local = fields['children'], fields['local_grads']
    if not all(isinstance(x, list) for x in chain(children, local)) or list(map(len, children)) != list(map(len, local)):
        i = next(i for i, (c, g) in enumerate(zip(children, local))
                 if not isinstance(c, list) or not isinstance(g, list) or len(c) != len(g))
        fail(f"node {i}: \"children\" and \"local_grads\" must be lists of the same length")
    for k, p in enumerate(d['params']):
        if not isinstance(p, dict):
            fail(f"params[{k}] must be an object with name, rows, cols and first_id")
    ptr = array('q', accumulate(map(len, children), initial=0))
    plain = {
        'op': op,
        'data': _numbers('data', fields['data']), 'grad': _numbers('grad', fields['grad']),
        'scope': _column('scope', 'I', fields['scope'], fields['scope'],
                         lambda x, raw: f"scope {show(raw)} is not an index into \"scopes\""),
        'child_ptr': ptr,
        'child': _column('child', 'q', list(chain.from_iterable(children)), None,
                         lambda x, raw: f"child {show(x)} is not a node id (0..{len(nodes) - 1})", ptr),
        'local': _numbers('local_grads', list(chain.from_iterable(local)), ptr),
        'backward_order': _ids(d['backward_order'], len(nodes)),
        'source': None if not with_source else _column(
            'source', 'I', fields['source'], fields['source'],
            lambda x, raw: f"source {show(raw)} is not an index into \"sources\""),
        'ops': d.get('ops', []),
        'scopes': d['scopes'],
        'params': [[p.get('name'), p.get('rows'), p.get('cols'), p.get('first_id')] for p in d['params']],
        'pow_exponent': [[i, node['exponent']] for i, node in enumerate(nodes) if 'exponent' in node],
        'probes': [[i, node['probes']] for i, node in enumerate(nodes) if 'probes' in node],
        'sources': d.get('sources'),
        'meta': d['meta'],
    }
    return plain


def _column(what, code, values, raw, message, ptr=None):
    """array(code, values), whole numbers only; else the first bad value, named by its node."""
    if {type(x) for x in values} <= {int}:
        try:
            return array(code, values)
        except OverflowError:
            pass
    k = next(k for k, x in enumerate(values) if type(x) is not int or not 0 <= x < 1 << 63
             or (code == 'I' and x >= 1 << 32) or (code == 'B' and x >= 256))
    node = k if ptr is None else owner(ptr, k)
    fail(f"node {node}: " + message(values[k], raw[k] if raw is not None else values[k]))


def _numbers(what, values, ptr=None):
    """array('d', values): numbers, never true/false or strings."""
    if {type(x) for x in values} <= {int, float}:
        return array('d', values)
    k = next(k for k, x in enumerate(values) if type(x) not in (int, float))
    fail(f"node {k if ptr is None else owner(ptr, k)}: {what} holds {show(values[k])}; "
         f"data, grad and local_grads are numbers")


def _ids(values, n):
    if {type(x) for x in values} <= {int}:
        try:
            return array('q', values)
        except OverflowError:
            pass
    fail(f"\"backward_order\" must hold node ids 0..{n - 1}")


def read(source):
    """The `Trace(**columns)` keyword arguments of a JSON trace; TraceFormatError says what is wrong."""
    return check(decode(source))
