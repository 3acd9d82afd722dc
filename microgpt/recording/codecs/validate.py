"""The one validator of trace columns, behind both codecs (json.py, binary.py).

A codec only turns its bytes into the *plain columns* below; `check(plain)` is
where every field's type and range is checked, so the two formats accept and
refuse the same traces and nothing downstream meets a string where a number
belongs, an id out of range, a cycle, or text that XML cannot hold.

    plain = {
      'op': array('B'), 'data': array('d'), 'grad': array('d'), 'scope': array('I'),
      'child_ptr': array('q'), 'child': array('q'), 'local': array('d'),
      'backward_order': array('q'), 'source': array('I') or None,      # the columns
      'ops':          [name, ...]                   the script's own op names, after OPS
      'scopes':       [[pos, layer, block, head, role], ...]
      'params':       [[name, rows, cols, first_id], ...]
      'pow_exponent': [[node, exponent], ...]
      'probes':       [[node, [[x+h, x-h, f(x+h), f(x-h)] or "why not", ...]], ...]
      'sources':      [[file, line, [functions], text, op_file, op_line, grad_line], ...] or None
      'meta':         {...}
    }

The tables are as a file holds them (unchecked JSON values); the columns are typed
arrays, so the checks on them are whole-column operations (numpy's min/max and
comparisons: whole.py; bytes.translate), not a Python loop per node: a 5.1 M-node
step's columns and stored indexes are checked in about 0.2 s. Only when a check fails is the column
scanned in Python, to name the first offending node in the message.
"""

import re
from array import array
from bisect import bisect_right
from itertools import compress, count, islice
from operator import and_, ne, sub

from ...errors import InputError
from ..ops import ARITY_TABLE, OP_CODE, OPS
from ..scopes import FIELDS, Scope
from ..sources import Source
from .whole import bounds, children_before, running_sum

MAX_TRACE_BYTES = 512 * 1024 * 1024   # 512 MiB: ~3 million nodes (emma on the default model: 7 MB of JSON)
COLUMNS = (('op', 'B'), ('data', 'd'), ('grad', 'd'), ('scope', 'I'), ('child_ptr', 'q'),
           ('child', 'q'), ('local', 'd'), ('backward_order', 'q'))
SOURCE_COLUMN = ('source', 'I')       # traces recorded from a script only
TABLES = ('ops', 'scopes', 'params', 'pow_exponent', 'probes', 'sources', 'meta')
META_TYPES = {'doc': str, 'chars': str, 'tokens': list, 'token_strs': list, 'config': dict,
              'n_positions': int, 'truncated': bool, 'loss_id': int, 'position_loss_ids': list,
              'recorded_from': dict}
# meta.recorded_from (recording.script.build): what the script recorder says about the run
RECORDED_FROM_TYPES = {'script': str, 'class': str, 'convention': str, 'params_from': str, 'tags': dict,
                       'step': int, 'nodes_made': int, 'unreached': int, 'older_nodes': int}
MAX_INT = 1 << 31
_KIND_NAMES = {str: 'a string', list: 'a list', dict: 'an object', int: 'a whole number', bool: 'true or false'}
_PARAM, _POW, _LEAF = OP_CODE['param'], OP_CODE['pow'], OP_CODE['leaf']
# text a picture cannot hold: NUL, lone surrogates (not UTF-8), the XML non-characters U+FFFE/U+FFFF
_BAD_TEXT = re.compile('[\x00\ud800-\udfff\ufffe\uffff]')


class TraceFormatError(InputError):
    """A trace file that is not valid JSON, not a binary trace, or not this schema; says where."""


def fail(message):
    raise TraceFormatError(f"trace: {message}")


def show(x):
    """repr(x), at most 40 characters, for a message."""
    text = repr(x)
    return text if len(text) <= 40 else text[:37] + '...'


def is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def bad_text(x):
    """The first character of str `x` that XML or UTF-8 cannot hold, else None."""
    m = _BAD_TEXT.search(x)
    return m.group() if m else None


def good_text(x):
    return isinstance(x, str) and _BAD_TEXT.search(x) is None


def check_text(x, where, depth=0):
    """Every string in `x` (nested lists/objects too) free of lone surrogates and
    XML non-characters; keys must be strings."""
    if depth > 32:
        fail(f"{where} is nested more than 32 levels deep")
    if isinstance(x, str):
        bad = bad_text(x)
        if bad is not None:
            fail(f"{where} holds U+{ord(bad):04X}, which cannot be written as text")
    elif isinstance(x, dict):
        for k, v in x.items():
            if not isinstance(k, str):
                fail(f"{where} has the key {show(k)}; keys are strings")
            check_text(k, where, depth + 1)
            check_text(v, f"{where}.{k}", depth + 1)
    elif isinstance(x, list):
        for v in x:
            check_text(v, where, depth + 1)


# -- the plain columns of a Trace (what a codec writes) -------------------------------------------
def plain_of(trace):
    """The plain columns of a Trace: what both codecs write."""
    return {
        **{name: getattr(trace, name) for name, _ in COLUMNS}, 'source': trace.source,
        'ops': list(trace.op_names[len(OPS):]),
        'scopes': [list(s) for s in trace.scopes],
        'params': [[n, *trace.param_shapes[n], trace.param_base[n]] for n in trace.param_names],
        'pow_exponent': [[i, e] for i, e in trace.pow_exponent.items()],
        'probes': [[i, p] for i, p in trace.probes.items()],
        'sources': (None if trace.sources is None else
                    [[s.file, s.line, list(s.funcs), s.text, s.op_file, s.op_line, s.grad_line]
                     for s in trace.sources]),
        'meta': trace.meta,
    }


# -- the validator ----------------------------------------------------------------------------------
def check(plain):
    """The `Trace(**columns)` keyword arguments of valid plain columns; TraceFormatError
    (one line, naming the field and what is allowed) for anything else."""
    n = len(plain['op'])
    if n == 0:
        fail("\"nodes\" is empty; a trace holds at least the loss node")
    op_names = op_names_of(plain['ops'])
    scopes = _scopes(plain['scopes'])
    sources = _sources(plain['sources'])
    op, ptr, child, source = plain['op'], plain['child_ptr'], plain['child'], plain['source']
    for name in ('data', 'grad', 'scope') + (('source',) if source is not None else ()):
        if len(plain[name]) != n:
            fail(f"the {name} column has {len(plain[name])} entries for {n} nodes")
    if (sources is None) != (source is None):
        fail("a source column needs its \"sources\" table, and the other way round")
    if len(ptr) != n + 1 or ptr[0] != 0 or ptr[-1] != len(child) or len(plain['local']) != len(child):
        fail(f"the edge offsets (child_ptr, {len(ptr)} entries) do not match {n} nodes and "
             f"{len(child)} edges ({len(plain['local'])} local derivatives)")
    ops = op.tobytes()
    if ops.translate(None, bytes(range(len(op_names)))):
        i = next(i for i, c in enumerate(op) if c >= len(op_names))
        fail(f"node {i}: op code {op[i]} is not one of the {len(op_names)} ops ({', '.join(op_names)})")
    _edges(ptr, child, n)
    _arity(ops, ptr, op_names)
    _index_column(plain['scope'], len(scopes), 'scope', '"scopes"')
    if source is not None:
        _index_column(source, len(sources), 'source', '"sources"')
    order = plain['backward_order']
    low, high = bounds(order) if order else (0, -1)
    if low < 0 or high >= n:
        fail(f"\"backward_order\" must hold node ids 0..{n - 1}, not {show(low if low < 0 else high)}")
    names, shapes, base = _params(plain['params'], ops, plain['scope'], scopes, n)
    exps = _pow(plain['pow_exponent'], ops, n)
    probes = _probes(plain['probes'], ptr, n)
    meta = _meta(plain['meta'], n)
    return dict(op=op, data=plain['data'], grad=plain['grad'], scope=plain['scope'], scopes=scopes,
                child_ptr=ptr, child=child, local=plain['local'], backward_order=order,
                pow_exponent=exps, param_names=names, param_shapes=shapes, param_base=base, meta=meta,
                op_names=op_names, source=source, sources=sources, probes=probes)


def op_names_of(extra):
    """OPS + the script's own op names (distinct strings, none of OPS, at most 256 in all)."""
    if (not isinstance(extra, list) or len(extra) > 256 - len(OPS) or not all(map(good_text, extra))
            or len(set(extra)) != len(extra) or any(x in OP_CODE for x in extra)):
        fail(f"\"ops\" must list the script's own op names (at most {256 - len(OPS)}, distinct), "
             f"none of {', '.join(OPS)}")
    return OPS + tuple(extra)


def _scopes(table):
    if not isinstance(table, list):
        fail("\"scopes\" is missing or not a list")
    out = []
    for k, s in enumerate(table):
        if not isinstance(s, list) or len(s) != len(FIELDS):
            fail(f"scope {k} must be a list of {len(FIELDS)} fields {FIELDS}")
        for field, value in zip(FIELDS, s):
            if value is None:
                continue
            if field in ('block', 'role'):
                if not good_text(value):
                    fail(f"scope {k}: {field} must be a string or null, got {show(value)}")
            elif not is_int(value) or not -MAX_INT <= value < MAX_INT:
                fail(f"scope {k}: {field} must be a whole number or null, got {show(value)}")
        out.append(Scope(*s))
    return out


def _good_source(s):
    return (isinstance(s, list) and len(s) == 7 and all(good_text(s[k]) for k in (0, 3, 4))
            and all(is_int(s[k]) and -MAX_INT <= s[k] < MAX_INT for k in (1, 5, 6))
            and isinstance(s[2], list) and all(map(good_text, s[2])))


def _sources(table):
    if table is None:
        return None
    if not isinstance(table, list) or not all(map(_good_source, table)):
        fail("each of \"sources\" must be [file, line, [functions], text, op_file, op_line, grad_line] "
             "(strings and whole numbers)")
    return [Source(s[0], s[1], tuple(s[2]), s[3], s[4], s[5], s[6]) for s in table]


def owner(ptr, k):
    """The node whose edge k is."""
    return bisect_right(ptr, k) - 1


def _arity(ops, ptr, op_names):
    """Offsets that never go backwards, and the port's ops with their own number of
    children (add, mul: 2; pow, log, exp, relu: 1; param, const: 0). A 'leaf' (a
    Value made outside the recording) and a script's own ops may have any number."""
    if not ops.translate(None, bytes(range(len(OPS)))) and ops.find(_LEAF) < 0:
        # only the port's fixed-arity ops: the offsets are the running sum of their arities (C speed)
        if running_sum(ops.translate(ARITY_TABLE), ptr):
            return
    counts = array('q', map(sub, islice(ptr, 1, None), ptr))
    if counts and min(counts) < 0:
        i = next(i for i, c in enumerate(counts) if c < 0)
        fail(f"node {i}: the edge offsets (child_ptr) go backwards")
    fixed = ops.translate(_FIXED_TABLE)          # 1 where the op's arity is fixed
    bad = next(compress(count(), map(and_, map(ne, counts, ops.translate(ARITY_TABLE)), fixed)), None)
    if bad is not None:
        fail(f"node {bad}: {op_names[ops[bad]]} takes {ARITY_TABLE[ops[bad]]} children, "
             f"this node has {counts[bad]}")


_FIXED_TABLE = bytes(int(k < len(OPS) and k != _LEAF) for k in range(256))


def _edges(ptr, child, n):
    """Every child id is a node id, and smaller than its parent's (ids follow creation
    order, so there is no cycle) unless it is a childless leaf made outside the
    recording (the tape numbers those last).

    Edge k belongs to the node p with ptr[p] <= k < ptr[p + 1], so child c < p
    exactly when ptr[c + 1] <= k: one pass over the edges (whole.children_before)."""
    if children_before(ptr, child):
        return
    after = memoryview(ptr)[1:]                  # after[c] = ptr[c + 1]
    for k, c in enumerate(child):                # something is off: find it, in Python
        if not 0 <= c < n:
            fail(f"node {owner(ptr, k)}: child {show(c)} is not a node id (0..{n - 1})")
        if after[c] > k and ptr[c] != after[c]:
            fail(f"node {owner(ptr, k)}: child {c} is a later node with children of its own; ids follow "
                 f"creation order (only a leaf made outside the recording may come later)")


def _index_column(col, size, what, table):
    if col and bounds(col)[1] >= size:
        i = next(i for i, s in enumerate(col) if s >= size)
        fail(f"node {i}: {what} {col[i]} is not an index into {table} (0..{size - 1})")


def _params(table, ops, scope, scopes, n):
    """names, shapes, first ids. Each matrix's cells are param nodes whose scope's role
    is its name, and every param node is a cell of one matrix."""
    if not isinstance(table, list):
        fail("\"params\" is missing or not a list")
    names, shapes, base = [], {}, {}
    for k, p in enumerate(table):
        if not isinstance(p, list) or len(p) != 4:
            fail(f"params[{k}] must be [name, rows, cols, first_id]")
        name, rows, cols, first = p
        if not good_text(name) or not name or name in shapes:
            fail(f"params[{k}].name must be a new non-empty string, got {show(name)}")
        for field, value, low in (('rows', rows, 1), ('cols', cols, 1), ('first_id', first, 0)):
            if not is_int(value) or not low <= value <= n:
                fail(f"parameter {name!r}: {field} must be a whole number {low}..{n}, got {show(value)}")
        if first + rows * cols > n:
            fail(f"parameter {name!r} cells {first}..{first + rows * cols - 1} are not all nodes")
        names.append(name)
        shapes[name] = (rows, cols)
        base[name] = first
    param = bytes([_PARAM])
    cells = 0
    for name in names:
        first, size = base[name], shapes[name][0] * shapes[name][1]
        own = {sid for sid, s in enumerate(scopes) if s.role == name}
        if ops.count(param, first, first + size) != size or not set(scope[first:first + size]) <= own:
            i = next(i for i in range(first, first + size) if ops[i] != _PARAM or scope[i] not in own)
            _bad_param_node(i, ops, scope, scopes, name)
        cells += size
    if ops.count(param) != cells:   # a param node outside every matrix (they cannot overlap: one role each)
        inside = set()
        for name in names:
            inside.update(range(base[name], base[name] + shapes[name][0] * shapes[name][1]))
        _bad_param_node(next(i for i in range(n) if ops[i] == _PARAM and i not in inside), ops, scope, scopes, None)
    return names, shapes, base


def _bad_param_node(i, ops, scope, scopes, name):
    if ops[i] != _PARAM:
        fail(f"node {i}: a cell of parameter {name!r} is not a param node (op code {ops[i]})")
    role = scopes[scope[i]].role
    fail(f"node {i}: a param node whose scope role {show(role)} is not a parameter holding this id")


def _by_node(table, name, n):
    """{node: value} of a [[node, value], ...] table, each node a node id listed once."""
    if not isinstance(table, list):
        fail(f"\"{name}\" must be a list of [node, value]")
    out = {}
    for entry in table:
        if not isinstance(entry, list) or len(entry) != 2:
            fail(f"\"{name}\" holds {show(entry)}; each entry is [node, value]")
        i, value = entry
        if not is_int(i) or not 0 <= i < n or i in out:
            fail(f"\"{name}\" names {show(i)}, not a node id (0..{n - 1}) listed once")
        out[i] = value
    return out


def _pow(table, ops, n):
    """{node: exponent}: exactly the pow nodes have one, a number."""
    exps = _by_node(table, 'pow_exponent', n)
    for i, e in exps.items():
        if not is_num(e):
            fail(f"node {i}: \"exponent\" must be a number, got {show(e)}")
        if ops[i] != _POW:
            fail(f"node {i}: has an exponent but is not a pow node")
    if ops.count(_POW) != len(exps):
        i = next(i for i in range(n) if ops[i] == _POW and i not in exps)
        fail(f"node {i}: a pow node without its exponent")
    return exps


def _probes(table, ptr, n):
    """{node: per child [x+h, x-h, f(x+h), f(x-h)] or a string saying why not}."""
    probes = _by_node(table, 'probes', n)
    for i, p in probes.items():
        ok = isinstance(p, list) and len(p) == ptr[i + 1] - ptr[i] and all(
            good_text(x) or (isinstance(x, list) and len(x) == 4 and all(map(is_num, x))) for x in p)
        if not ok:
            fail(f"node {i}: \"probes\" must hold, per child, [x+h, x-h, f(x+h), f(x-h)] or a reason")
    return probes


def _meta(meta, n):
    if not isinstance(meta, dict):
        fail("\"meta\" is missing or not an object")
    check_text(meta, 'meta')
    _types(meta, META_TYPES, 'meta')
    if 'loss_id' not in meta:
        fail("meta.loss_id is missing (the id of the loss node)")
    if not 0 <= meta['loss_id'] < n:
        fail(f"meta.loss_id {meta['loss_id']!r} is not a node id (0..{n - 1})")
    for key in ('tokens', 'position_loss_ids'):
        high = n if key == 'position_loss_ids' else MAX_INT
        for x in meta.get(key, ()):
            if not is_int(x) or not 0 <= x < high:
                fail(f"meta.{key} holds {show(x)}; it holds whole numbers 0..{high - 1}")
    if 'tokens' in meta and 'token_strs' in meta and len(meta['tokens']) != len(meta['token_strs']):
        fail(f"meta.tokens has {len(meta['tokens'])} entries but meta.token_strs "
             f"{len(meta['token_strs'])}; they name the same tokens")
    for x in meta.get('token_strs', ()):
        if not isinstance(x, str):
            fail(f"meta.token_strs holds {show(x)}; it holds strings")
    for key, value in meta.get('config', {}).items():
        if not is_int(value) or not 0 < value <= 1 << 20:
            fail(f"meta.config.{key} must be a whole number 1..{1 << 20}, got {show(value)}")
    if 'n_positions' in meta and not 0 <= meta['n_positions'] < MAX_INT:
        fail(f"meta.n_positions must be a whole number 0..{MAX_INT - 1}, got {show(meta['n_positions'])}")
    rf = meta.get('recorded_from')
    if rf is not None:
        _types(rf, RECORDED_FROM_TYPES, 'meta.recorded_from')
        for key in ('script', 'step'):      # every recording writes both; inspect and explore read them
            if key not in rf:
                fail(f"meta.recorded_from must name its {key}, got the keys {show(sorted(rf))}")
        for key in ('step', 'nodes_made', 'unreached', 'older_nodes'):
            if key in rf and not 0 <= rf[key] < 1 << 53:
                fail(f"meta.recorded_from.{key} must be a whole number >= 0, got {show(rf[key])}")
        for field, names in rf.get('tags', {}).items():
            if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
                fail(f"meta.recorded_from.tags.{field} must be a list of variable names, got {show(names)}")
    return meta


def _types(d, types, where):
    for key, kind in types.items():
        if key in d and not (isinstance(d[key], kind) and (kind is not int or is_int(d[key]))):
            fail(f"{where}.{key} must be {_KIND_NAMES[kind]}, got {show(d[key])}")
