"""Trace <-> JSON, schema `microgpt-graph.trace` version 1.

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
loading it is recomputed from the other two). Floats are written with Python's
shortest round-trip repr, so a round trip is bit-exact; a NaN or infinite grad
(a broken derivative) is written as the JSON extension tokens NaN / Infinity.
"""

import json
import os
from array import array
from itertools import accumulate

from ..errors import InputError
from ..files import write_atomic
from .ops import OP_CODE, OPS
from .scopes import FIELDS, Scope
from .sources import Source

SCHEMA = 'microgpt-graph.trace'
VERSION = 1


class TraceFormatError(InputError):
    """A trace file that is not valid JSON or not this schema; says where."""


def trace_to_dict(trace):
    nodes = []
    names, source, probes = trace.op_names, trace.source, trace.probes
    ptr, child, local = trace.child_ptr, trace.child, trace.local
    contrib = trace.contrib
    for i in range(len(trace)):
        a, b = ptr[i], ptr[i + 1]
        node = {'id': i, 'op': names[trace.op[i]], 'data': trace.data[i], 'grad': trace.grad[i],
                'scope': trace.scope[i], 'children': child[a:b].tolist(),
                'local_grads': local[a:b].tolist(), 'contributions': contrib[a:b].tolist()}
        if i in trace.pow_exponent:
            node['exponent'] = trace.pow_exponent[i]
        cell = trace.param_cell(i)
        if cell is not None:
            node['param'] = {'name': cell[0], 'row': cell[1], 'col': cell[2]}
        if source is not None:
            node['source'] = source[i]
        if i in probes:
            node['probes'] = probes[i]
        nodes.append(node)
    out = {
        'schema': SCHEMA, 'version': VERSION,
        'meta': trace.meta,
        'scopes': [list(s) for s in trace.scopes],
        'params': [{'name': n, 'rows': trace.param_shapes[n][0], 'cols': trace.param_shapes[n][1],
                    'first_id': trace.param_base[n]} for n in trace.param_names],
        'backward_order': trace.backward_order.tolist(),
        'nodes': nodes,
    }
    if len(names) > len(OPS):
        out['ops'] = list(names[len(OPS):])
    if source is not None:
        out['sources'] = [[s.file, s.line, list(s.funcs), s.text, s.op_file, s.op_line, s.grad_line]
                          for s in trace.sources]
    return out


def dump_trace(trace, path=None):
    """The JSON text; also written atomically to `path` when given."""
    text = json.dumps(trace_to_dict(trace), separators=(',', ':'))
    if path is not None:
        write_atomic(path, text)
    return text


def read_columns(source):
    """The `Trace(**columns)` keyword arguments from a JSON string, a dict, or a
    path to a JSON file; TraceFormatError says what is wrong and where."""
    if isinstance(source, dict):
        d = source
    else:
        text = source
        if isinstance(source, (os.PathLike,)) or (isinstance(source, str) and source.lstrip()[:1] not in ('{', '[')):
            try:
                with open(source, encoding='utf-8') as f:
                    text = f.read()
            except OSError as e:
                raise TraceFormatError(f"cannot read trace file {source}: {e.strerror or e}") from None
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise TraceFormatError(f"trace is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if not isinstance(d, dict) or d.get('schema') != SCHEMA:
        raise TraceFormatError(f"not a trace: expected \"schema\": \"{SCHEMA}\"")
    if d.get('version') != VERSION:
        raise TraceFormatError(f"trace schema version {d.get('version')!r} is not supported; this tool reads version {VERSION}")
    for key, kind in (('meta', dict), ('scopes', list), ('params', list), ('nodes', list), ('backward_order', list)):
        if not isinstance(d.get(key), kind):
            raise TraceFormatError(f"trace: \"{key}\" is missing or not a{'n object' if kind is dict else ' list'}")

    scopes = []
    for k, s in enumerate(d['scopes']):
        if not isinstance(s, list) or len(s) != len(FIELDS):
            raise TraceFormatError(f"trace: scope {k} must be a list of {len(FIELDS)} fields {FIELDS}")
        scopes.append(Scope(*s))

    extra = d.get('ops', [])
    if not isinstance(extra, list) or any(not isinstance(x, str) or x in OP_CODE for x in extra):
        raise TraceFormatError(f"trace: \"ops\" must list the script's own op names, none of {', '.join(OPS)}")
    op_names = OPS + tuple(extra)
    code_of = {name: k for k, name in enumerate(op_names)}
    sources = None
    if 'sources' in d:
        try:
            sources = [Source(str(s[0]), int(s[1]), tuple(map(str, s[2])), str(s[3]), str(s[4]), int(s[5]),
                              int(s[6])) for s in d['sources']]
        except (TypeError, ValueError, IndexError):
            raise TraceFormatError("trace: each of \"sources\" must be [file, line, [functions], text, "
                                   "op_file, op_line, grad_line]") from None
    source, probes = (array('I') if sources is not None else None), {}

    nodes = d['nodes']
    n = len(nodes)
    op, data, grad, scope = array('B'), array('d'), array('d'), array('I')
    child, local, counts, exps = array('q'), array('d'), [], {}
    for i, node in enumerate(nodes):
        where = f"trace: node {i}"
        try:
            if node['id'] != i:
                raise TraceFormatError(f"{where}: id is {node['id']!r}; ids must be 0..{n - 1} in order")
            if node['op'] not in code_of:
                raise TraceFormatError(f"{where}: unknown op {node['op']!r}; ops: {', '.join(op_names)}")
            op.append(code_of[node['op']])
            if source is not None:
                k = node['source']
                if not isinstance(k, int) or not 0 <= k < len(sources):
                    raise TraceFormatError(f"{where}: source {k!r} is not an index into \"sources\"")
                source.append(k)
            if 'probes' in node:
                probes[i] = _probes(node['probes'], len(node['children']), where)
            data.append(node['data'])
            grad.append(node['grad'])
            s = node['scope']
            if not isinstance(s, int) or not 0 <= s < len(scopes):
                raise TraceFormatError(f"{where}: scope {s!r} is not an index into \"scopes\"")
            scope.append(s)
            ch, lg = node['children'], node['local_grads']
            if not isinstance(ch, list) or not isinstance(lg, list) or len(ch) != len(lg):
                raise TraceFormatError(f"{where}: \"children\" and \"local_grads\" must be lists of the same length")
            for c in ch:
                if not isinstance(c, int) or not 0 <= c < n:
                    raise TraceFormatError(f"{where}: child {c!r} is not a node id (0..{n - 1})")
            child.extend(ch)
            local.extend(lg)
            counts.append(len(ch))
            if 'exponent' in node:
                exps[i] = node['exponent']
        except KeyError as e:
            raise TraceFormatError(f"{where}: missing field {e.args[0]!r}") from None
        except TypeError:
            raise TraceFormatError(f"{where}: a field has the wrong type (data and grad are numbers)") from None

    names, shapes, base = [], {}, {}
    for p in d['params']:
        try:
            name, rows, cols, first = p['name'], p['rows'], p['cols'], p['first_id']
        except (KeyError, TypeError):
            raise TraceFormatError("trace: each of \"params\" needs name, rows, cols and first_id") from None
        if not (0 <= first and first + rows * cols <= n):
            raise TraceFormatError(f"trace: parameter {name!r} cells {first}..{first + rows * cols - 1} are not all nodes")
        names.append(name)
        shapes[name] = (rows, cols)
        base[name] = first

    order = d['backward_order']
    if any(not isinstance(i, int) or not 0 <= i < n for i in order):
        raise TraceFormatError(f"trace: \"backward_order\" must hold node ids 0..{n - 1}")
    meta = d['meta']
    if 'loss_id' in meta and not (isinstance(meta['loss_id'], int) and 0 <= meta['loss_id'] < n):
        raise TraceFormatError(f"trace: meta.loss_id {meta['loss_id']!r} is not a node id")
    return dict(op=op, data=data, grad=grad, scope=scope, scopes=scopes,
                 child_ptr=array('q', accumulate(counts, initial=0)), child=child, local=local,
                 backward_order=array('q', order), pow_exponent=exps, param_names=names,
                param_shapes=shapes, param_base=base, meta=meta,
                op_names=op_names, source=source, sources=sources, probes=probes)


def _probes(p, arity, where):
    """A node's probes: per child [x+h, x-h, f(x+h), f(x-h)] or a string saying why not."""
    ok = isinstance(p, list) and len(p) == arity and all(
        isinstance(x, str) or (isinstance(x, list) and len(x) == 4 and all(isinstance(v, (int, float)) for v in x))
        for x in p)
    if not ok:
        raise TraceFormatError(f"{where}: \"probes\" must hold, per child, [x+h, x-h, f(x+h), f(x-h)] or a reason")
    return p
