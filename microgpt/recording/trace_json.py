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
from ..files import read_capped, write_atomic
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


MAX_TRACE_BYTES = 512 * 1024 * 1024   # 512 MiB: ~3 million nodes (emma on the default model: 7 MB)
META_TYPES = {'doc': str, 'chars': str, 'tokens': list, 'token_strs': list, 'config': dict,
              'n_positions': int, 'truncated': bool, 'loss_id': int, 'position_loss_ids': list}


def _load_json(source):
    if isinstance(source, dict):
        return source
    text = source
    if isinstance(source, (os.PathLike, bytes)) or (isinstance(source, str) and source.lstrip()[:1] not in ('{', '[')):
        text = read_capped(source, MAX_TRACE_BYTES, 'trace file', TraceFormatError)
    try:
        return json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as e:
        raise TraceFormatError(f"trace is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except (ValueError, RecursionError) as e:
        raise TraceFormatError(f"trace is not valid JSON: {str(e)[:200]}") from None


def _parse_int(text):
    """Exact when short; a huge integer (1e400 written out) becomes a float, inf
    when it is past the float range, instead of an OverflowError later."""
    return int(text) if len(text) <= 18 else float(text)


def _show(x):
    """repr(x), at most 40 characters, for a message."""
    text = repr(x)
    return text if len(text) <= 40 else text[:37] + '...'


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _bad_text(x):
    """The first character of str `x` that XML or UTF-8 cannot hold (a lone
    surrogate, U+FFFE, U+FFFF, a NUL), else None."""
    for ch in x:
        o = ord(ch)
        if o == 0 or 0xd800 <= o <= 0xdfff or o in (0xfffe, 0xffff):
            return ch
    return None


def _check_text(x, where, depth=0):
    """Every string in `x` (nested lists/objects too) free of lone surrogates and
    XML non-characters; keys must be strings (JSON's are)."""
    if depth > 32:
        raise TraceFormatError(f"trace: {where} is nested more than 32 levels deep")
    if isinstance(x, str):
        bad = _bad_text(x)
        if bad is not None:
            raise TraceFormatError(f"trace: {where} holds U+{ord(bad):04X}, which cannot be written as text")
    elif isinstance(x, dict):
        for k, v in x.items():
            _check_text(k, where, depth + 1)
            _check_text(v, f"{where}.{k}", depth + 1)
    elif isinstance(x, list):
        for v in x:
            _check_text(v, where, depth + 1)


def _check_meta(meta, n):
    _check_text(meta, 'meta')
    for key, kind in META_TYPES.items():
        if key in meta and not (isinstance(meta[key], kind) and (kind is not int or _is_int(meta[key]))):
            raise TraceFormatError(f"trace: meta.{key} must be {_KIND_NAMES[kind]}, got {_show(meta[key])}")
    if 'loss_id' not in meta:
        raise TraceFormatError("trace: meta.loss_id is missing (the id of the loss node)")
    if not 0 <= meta['loss_id'] < n:
        raise TraceFormatError(f"trace: meta.loss_id {meta['loss_id']!r} is not a node id (0..{n - 1})")
    for key in ('tokens', 'position_loss_ids'):
        high = n if key == 'position_loss_ids' else 1 << 31
        for x in meta.get(key, ()):
            if not _is_int(x) or not 0 <= x < high:
                raise TraceFormatError(f"trace: meta.{key} holds {_show(x)}; it holds whole numbers 0..{high - 1}")
    if 'tokens' in meta and 'token_strs' in meta and len(meta['tokens']) != len(meta['token_strs']):
        raise TraceFormatError(f"trace: meta.tokens has {len(meta['tokens'])} entries but meta.token_strs "
                               f"{len(meta['token_strs'])}; they name the same tokens")
    for x in meta.get('token_strs', ()):
        if not isinstance(x, str):
            raise TraceFormatError(f"trace: meta.token_strs holds {_show(x)}; it holds strings")
    for key, value in meta.get('config', {}).items():
        if not _is_int(value) or not 0 < value <= 1 << 20:
            raise TraceFormatError(f"trace: meta.config.{key} must be a whole number 1..{1 << 20}, got {_show(value)}")


_KIND_NAMES = {str: 'a string', list: 'a list', dict: 'an object', int: 'a whole number', bool: 'true or false'}


def _check_scope(k, s):
    if not isinstance(s, list) or len(s) != len(FIELDS):
        raise TraceFormatError(f"trace: scope {k} must be a list of {len(FIELDS)} fields {FIELDS}")
    for field, value in zip(FIELDS, s):
        if value is None:
            continue
        if field in ('block', 'role'):
            if not isinstance(value, str) or _bad_text(value) is not None:
                raise TraceFormatError(f"trace: scope {k}: {field} must be a string or null, got {_show(value)}")
        elif not _is_int(value) or not -(1 << 31) <= value < 1 << 31:
            raise TraceFormatError(f"trace: scope {k}: {field} must be a whole number or null, got {_show(value)}")
    return Scope(*s)


def read_columns(source):
    """The `Trace(**columns)` keyword arguments from a JSON string, a dict, or a
    path to a JSON file (at most MAX_TRACE_BYTES); TraceFormatError says what is
    wrong and where. Every field's type and range is checked here, so nothing
    downstream meets a string where a number belongs, an id out of range, a
    cycle (a child's id is smaller than its parent's, or the child is a leaf), or
    text that cannot be written back out."""
    d = _load_json(source)
    if not isinstance(d, dict) or d.get('schema') != SCHEMA:
        raise TraceFormatError(f"not a trace: expected \"schema\": \"{SCHEMA}\"")
    if d.get('version') != VERSION:
        raise TraceFormatError(f"trace schema version {repr(d.get('version'))[:20]} is not supported; "
                               f"this tool reads version {VERSION}")
    for key, kind in (('meta', dict), ('scopes', list), ('params', list), ('nodes', list), ('backward_order', list)):
        if not isinstance(d.get(key), kind):
            raise TraceFormatError(f"trace: \"{key}\" is missing or not a{'n object' if kind is dict else ' list'}")

    scopes = [_check_scope(k, s) for k, s in enumerate(d['scopes'])]
    nodes = d['nodes']
    n = len(nodes)
    if n == 0:
        raise TraceFormatError("trace: \"nodes\" is empty; a trace holds at least the loss node")

    extra = d.get('ops', [])
    if (not isinstance(extra, list) or len(extra) > 256 - len(OPS) or len(set(map(repr, extra))) != len(extra)
            or any(not isinstance(x, str) or x in OP_CODE or _bad_text(x) is not None for x in extra)):
        raise TraceFormatError(f"trace: \"ops\" must list the script's own op names (at most {256 - len(OPS)}, "
                               f"distinct), none of {', '.join(OPS)}")
    op_names = OPS + tuple(extra)
    code_of = {name: k for k, name in enumerate(op_names)}
    sources = None
    if 'sources' in d:
        if not isinstance(d['sources'], list) or not all(map(_good_source, d['sources'])):
            raise TraceFormatError("trace: each of \"sources\" must be [file, line, [functions], text, "
                                   "op_file, op_line, grad_line] (strings and whole numbers)")
        sources = [Source(s[0], s[1], tuple(s[2]), s[3], s[4], s[5], s[6]) for s in d['sources']]
    source, probes = (array('I') if sources is not None else None), {}

    names, shapes, base = [], {}, {}
    for k, p in enumerate(d['params']):
        if not isinstance(p, dict):
            raise TraceFormatError(f"trace: params[{k}] must be an object with name, rows, cols and first_id")
        name, rows, cols, first = p.get('name'), p.get('rows'), p.get('cols'), p.get('first_id')
        if not isinstance(name, str) or not name or _bad_text(name) is not None or name in shapes:
            raise TraceFormatError(f"trace: params[{k}].name must be a new non-empty string, got {_show(name)}")
        for field, value, low in (('rows', rows, 1), ('cols', cols, 1), ('first_id', first, 0)):
            if not _is_int(value) or not low <= value <= n:
                raise TraceFormatError(f"trace: parameter {name!r}: {field} must be a whole number {low}..{n}, "
                                       f"got {_show(value)}")
        if first + rows * cols > n:
            raise TraceFormatError(f"trace: parameter {name!r} cells {first}..{first + rows * cols - 1} are not all nodes")
        names.append(name)
        shapes[name] = (rows, cols)
        base[name] = first

    op, data, grad, scope = array('B'), array('d'), array('d'), array('I')
    child, local, counts, exps = array('q'), array('d'), [], {}
    param_code, n_scopes, later = OP_CODE['param'], len(scopes), []
    for i, node in enumerate(nodes):
        where = f"trace: node {i}"
        if not isinstance(node, dict):
            raise TraceFormatError(f"{where} must be an object")
        try:
            if node['id'] != i or not _is_int(node['id']):
                raise TraceFormatError(f"{where}: id is {_show(node['id'])}; ids must be 0..{n - 1} in order")
            code = code_of.get(node['op']) if isinstance(node['op'], str) else None
            if code is None:
                raise TraceFormatError(f"{where}: unknown op {_show(node['op'])}; ops: {', '.join(op_names)}")
            if source is not None:
                k = node['source']
                if not _is_int(k) or not 0 <= k < len(sources):
                    raise TraceFormatError(f"{where}: source {_show(k)} is not an index into \"sources\"")
            x, g, s = node['data'], node['grad'], node['scope']
            if not _is_num(x) or not _is_num(g):
                raise TraceFormatError(f"{where}: data and grad must be numbers, got {_show(x)} and {_show(g)}")
            if not _is_int(s) or not 0 <= s < n_scopes:
                raise TraceFormatError(f"{where}: scope {_show(s)} is not an index into \"scopes\" (0..{n_scopes - 1})")
            ch, lg = node['children'], node['local_grads']
            if not isinstance(ch, list) or not isinstance(lg, list) or len(ch) != len(lg):
                raise TraceFormatError(f"{where}: \"children\" and \"local_grads\" must be lists of the same length")
            for c in ch:
                if not _is_int(c) or not 0 <= c < n:
                    raise TraceFormatError(f"{where}: child {_show(c)} is not a node id (0..{n - 1})")
                if c >= i:
                    later.append((i, c))    # allowed for a childless leaf only (checked below): no cycles
            for v in lg:
                if not _is_num(v):
                    raise TraceFormatError(f"{where}: local_grads holds {_show(v)}; it holds numbers")
            if code == param_code:
                role = scopes[s].role
                if role not in shapes or not 0 <= i - base[role] < shapes[role][0] * shapes[role][1]:
                    raise TraceFormatError(f"{where}: a param node whose scope role {_show(role)} is not a "
                                           f"parameter holding this id")
            if 'exponent' in node:
                e = node['exponent']
                if not _is_num(e):
                    raise TraceFormatError(f"{where}: \"exponent\" must be a number, got {_show(e)}")
                exps[i] = e
            if 'probes' in node:
                probes[i] = _probes(node['probes'], len(ch), where)
        except KeyError as e:
            raise TraceFormatError(f"{where}: missing field {e.args[0]!r}") from None
        op.append(code)
        if source is not None:
            source.append(k)
        data.append(x)
        grad.append(g)
        scope.append(s)
        child.extend(ch)
        local.extend(lg)
        counts.append(len(ch))

    for i, c in later:
        if counts[c]:
            raise TraceFormatError(f"trace: node {i}: child {c} is a later node with children of its own; "
                                   f"ids follow creation order (only a leaf made outside the recording may come later)")
    order = d['backward_order']
    if any(not _is_int(i) or not 0 <= i < n for i in order):
        raise TraceFormatError(f"trace: \"backward_order\" must hold node ids 0..{n - 1}")
    meta = d['meta']
    _check_meta(meta, n)
    return dict(op=op, data=data, grad=grad, scope=scope, scopes=scopes,
                child_ptr=array('q', accumulate(counts, initial=0)), child=child, local=local,
                backward_order=array('q', order), pow_exponent=exps, param_names=names,
                param_shapes=shapes, param_base=base, meta=meta,
                op_names=op_names, source=source, sources=sources, probes=probes)


def _good_source(s):
    return (isinstance(s, list) and len(s) == 7 and all(isinstance(s[k], str) and _bad_text(s[k]) is None
                                                        for k in (0, 3, 4))
            and all(_is_int(s[k]) for k in (1, 5, 6)) and isinstance(s[2], list)
            and all(isinstance(f, str) and _bad_text(f) is None for f in s[2]))


def _probes(p, arity, where):
    """A node's probes: per child [x+h, x-h, f(x+h), f(x-h)] or a string saying why not."""
    ok = isinstance(p, list) and len(p) == arity and all(
        isinstance(x, str) or (isinstance(x, list) and len(x) == 4 and all(_is_num(v) for v in x))
        for x in p)
    if not ok:
        raise TraceFormatError(f"{where}: \"probes\" must hold, per child, [x+h, x-h, f(x+h), f(x-h)] or a reason")
    return p
