"""Recording one forward and backward pass: `record()`.

    with record(params) as tape:          # params: {name: matrix of Values}
        with scope(pos=0, block="embed", role="embed"):   # microgpt.tags.scope
            x = a + b                     # recorded with its op and scope
        loss.backward()                   # recorded: the backward order
    trace = tape.to_trace(loss)           # plain columns, detached from Values

Off by default and free when off: `microgpt.tags.scope()` returns a shared null
context and the engine's primitives are the bare ones. While recording, the primitives are
wrapped (engine.patched_ops) so that every Value they create, the constants that
Python numbers are wrapped into included, is appended to the tape in creation
order; a node's id is its index on the tape, never `id()`.

Each op also appends its children's node ids as it makes its output (the Trace's
edge column, with no Value -> id pass afterwards). It reads them from the Values'
`_id` slot, which the engine keeps for recorders and never reads itself: a tape
writes `base + node id` there, `base` being unique per tape, so a Value stamped
by an earlier recording, or never stamped (made outside record()), is told
apart, and joins the Trace as a 'leaf' node instead.
"""

from array import array
from contextlib import contextmanager
from itertools import accumulate, count

from .. import engine, tags
from ..engine import PRIMITIVES, Value
from .ops import ARITY_TABLE, OP_CODE
from .scopes import Scope, ScopeTable
from .trace import Trace

_tape_serials = count(1)  # each Tape's `_id` offset is its serial << 40
_newest_base = 0           # the newest Tape's: an older one's stamps may be overwritten
_active = None  # the Tape being recorded, or None: the only recording state
_ENGINE_OPS = {name: Value.__dict__[attr] for name, attr in PRIMITIVES.items()}


class RecordingError(RuntimeError):
    """Recording misused: nested `record()`, or a trace asked for too early."""


class _ScopeFrame:
    """What `microgpt.tags.scope(**fields)` returns while a tape records.

    Fields nest: an inner scope keeps the outer one's fields it does not set.
    """

    __slots__ = ('tape', 'fields', 'saved')

    def __init__(self, tape, fields):
        self.tape, self.fields = tape, fields

    def __enter__(self):
        tape = self.tape
        self.saved = tape.scope
        tape.set_scope(tape.scopes.child(tape.scope, self.fields))

    def __exit__(self, *exc):
        self.tape.set_scope(self.saved)


class Tape:
    """What `record()` collects: Values in creation order, their op and scope."""

    def __init__(self, params=None):
        self.values = []            # every Value, in creation order: index = node id
        self.ops = array('B')       # OP_CODE per node
        global _newest_base
        self.base = _newest_base = next(_tape_serials) << 40  # a Value's `_id`: base + node id
        self.child = []             # child node ids, op by op: the Trace's edge column
        self.outside = False        # an op read a Value not on this tape
        self.pow_exponent = {}      # node id -> the number a `pow` raised to
        self.scopes = ScopeTable()
        self.scope = self.scopes.root
        # scope changes as (first node id, scope id): nodes between two marks
        # share a scope, so ops pay nothing per node for their scope
        self.scope_marks = [(0, self.scope)]
        self.param_names = []       # matrix names, in registration order
        self.param_shapes = {}      # name -> (rows, cols)
        self.param_cells = []       # (name index, row, col) per parameter node
        self.backward_order = None  # node ids in the order backward visited them
        self.meta = {}              # free-form facts the model adds (doc, tokens, ...)
        for name, matrix in (params or {}).items():
            self.add_param(name, matrix)

    def add_param(self, name, matrix):
        """Register a named matrix of Values as parameter nodes (row by row)."""
        k = len(self.param_names)
        self.param_names.append(name)
        self.param_shapes[name] = (len(matrix), len(matrix[0]) if matrix else 0)
        sid = self.scopes.intern(Scope(block='params', role=name))
        outer = self.scope
        self.set_scope(sid)
        for r, row in enumerate(matrix):
            for c, p in enumerate(row):
                p._id = self.base + len(self.values)
                self.values.append(p)
                self.ops.append(OP_CODE['param'])
                self.param_cells.append((k, r, c))
        self.set_scope(outer)

    def set_scope(self, sid):
        self.scope = sid
        marks = self.scope_marks
        if marks[-1][0] == len(self.values):
            marks[-1] = (len(self.values), sid)  # nothing was made in the last one
        else:
            marks.append((len(self.values), sid))

    def node_scopes(self):
        """The scope id of every node on the tape, from the scope marks."""
        out = array('I')
        marks = self.scope_marks + [(len(self.values), None)]
        for (start, sid), (end, _) in zip(marks, marks[1:]):
            out.extend([sid] * (end - start))
        return out

    def __len__(self):
        return len(self.values)

    @property
    def stamps_current(self):
        """No newer tape has stamped Values since this one (a parameter registered
        again carries the newer tape's `_id`)."""
        return self.base == _newest_base

    def node_id(self, v):
        """The node id of a Value on this tape; KeyError if it is not on it."""
        i = getattr(v, '_id', -1) - self.base
        if not 0 <= i < len(self.values):
            raise KeyError(v)
        return i

    def to_trace(self, loss=None):
        """Detach what was recorded into a `Trace` (see microgpt.recording.trace)."""
        return detach(self, loss)


def _recording_op(tape, name, current):
    """The primitive `name` made to append what it creates to `tape`.

    When `current` is the engine's own primitive, the recording op is a copy of
    it with the appends inlined (a wrapper call would cost a frame per node);
    the tests hold the two to bit-identical results. Any other `current` (a
    fault injected by microgpt.checks.faults) is wrapped, so recording shows it too.
    """
    values, ops, child, base = tape.values, tape.ops, tape.child, tape.base
    code, const = OP_CODE[name], OP_CODE['const']
    exponents = tape.pow_exponent
    own = current is _ENGINE_OPS[name]

    # every op below stamps what it makes (`_id = base + node id`) and appends its
    # children's node ids; an unstamped child (AttributeError) or one stamped by an
    # earlier tape (a negative id) is from outside: detach() handles both
    if own and name == 'add':
        def op(self, other):
            n = len(values)
            if not isinstance(other, Value):
                other = Value(other)
                other._id = base + n
                n += 1
                values.append(other)
                ops.append(const)
            out = Value(self.data + other.data, (self, other), (1, 1))
            out._id = base + n
            try:
                child.append(self._id - base)
                child.append(other._id - base)
            except AttributeError:
                tape.outside = True
            values.append(out)
            ops.append(code)
            return out
    elif own and name == 'mul':
        def op(self, other):
            n = len(values)
            if not isinstance(other, Value):
                other = Value(other)
                other._id = base + n
                n += 1
                values.append(other)
                ops.append(const)
            out = Value(self.data * other.data, (self, other), (other.data, self.data))
            out._id = base + n
            try:
                child.append(self._id - base)
                child.append(other._id - base)
            except AttributeError:
                tape.outside = True
            values.append(out)
            ops.append(code)
            return out
    elif name in ('add', 'mul'):
        def op(self, other):
            if not isinstance(other, Value):  # the constant the bare op would wrap
                other = Value(other)
                other._id = base + len(values)
                values.append(other)
                ops.append(const)
            out = current(self, other)
            try:
                child.append(self._id - base)
                child.append(other._id - base)
            except AttributeError:
                tape.outside = True
            out._id = base + len(values)
            values.append(out)
            ops.append(code)
            return out
    elif name == 'pow':
        def op(self, other):
            out = current(self, other)
            try:
                child.append(self._id - base)
            except AttributeError:
                tape.outside = True
            exponents[len(values)] = other
            out._id = base + len(values)
            values.append(out)
            ops.append(code)
            return out
    else:  # log, exp, relu: one child, no constant
        def op(self):
            out = current(self)
            try:
                child.append(self._id - base)
            except AttributeError:
                tape.outside = True
            out._id = base + len(values)
            values.append(out)
            ops.append(code)
            return out
    op.__name__ = current.__name__
    op.__doc__ = current.__doc__
    return op


@contextmanager
def record(params=None):
    """Record every Value op (and the backward order) made inside the block."""
    global _active
    if _active is not None:
        raise RecordingError("record() is already active: recordings do not nest")
    tape = Tape(params)
    saved_backward = Value.backward

    def backward(self):
        topo = engine.topological_order(self)
        tape.backward_order = topo
        self.grad = 1
        engine.accumulate(topo)

    backward.__doc__ = saved_backward.__doc__
    _active = tape
    previous = tags.listen(lambda fields: _ScopeFrame(tape, fields))
    try:
        with engine.gc_paused(), engine.patched_ops(lambda name, bare: _recording_op(tape, name, bare)):
            Value.backward = backward
            try:
                yield tape
            finally:
                Value.backward = saved_backward
    finally:
        tags.listen(previous)
        _active = None


def detach(tape, loss=None, meta=None):
    """The Trace of a finished `record()` tape: its columns, detached from the live Values;
    `loss` defaults to the root of the recorded backward pass."""
    values = tape.values
    ops = array('B', tape.ops)
    scope = tape.node_scopes()
    topo = tape.backward_order or ()
    try:  # an unsigned column refuses a negative id: a child stamped by an earlier tape
        edges = array('Q', tape.child) if tape.stamps_current and not tape.outside else None
    except OverflowError:
        edges = None
    if edges is not None:  # the ops recorded every edge as a node id while they made the graph
        child = array('q')
        child.frombytes(edges.tobytes())
        offset = tape.base
        order = array('q', [v._id - offset for v in reversed(topo)])
        node_id = tape.node_id
        # each op makes a fixed number of children (faults bend local grads, never children)
        child_ptr = array('q', list(accumulate(ops.tobytes().translate(ARITY_TABLE), initial=0)))
        if child_ptr[-1] != len(child):
            raise RuntimeError(f"the tape's edges disagree with its ops: {len(child)} children "
                                  f"for {child_ptr[-1]} op arguments")
    else:  # an op read a Value made outside record(): it joins as a 'leaf' node
        values = list(values)
        index = {v: i for i, v in enumerate(values)}  # identity map, internal only
        leaf, root = OP_CODE['leaf'], tape.scopes.root
        k = 0
        while k < len(values):
            for c in values[k]._children:
                   if c not in index:
                       index[c] = len(values)
                       values.append(c)
                       ops.append(leaf)
                       scope.append(root)
            k += 1
        child = array('q', [index[c] for v in values for c in v._children])
        order = array('q', [index[v] for v in reversed(topo)])
        node_id = index.__getitem__
        child_ptr = array('q', accumulate((len(v._children) for v in values), initial=0))
    local = array('d', [lg for v in values for lg in v._local_grads])
    data = array('d', [v.data for v in values])
    grad = array('d', [v.grad for v in values])
    if loss is None and tape.backward_order is not None:
        loss = tape.backward_order[-1]
    base, k = {}, 0
    for name in tape.param_names:
        rows, cols = tape.param_shapes[name]
        base[name] = k
        k += rows * cols
    meta = dict(tape.meta, **(meta or {}))
    if loss is not None:
        meta['loss_id'] = node_id(loss)
    if 'position_loss_values' in meta:  # Values -> ids, so meta stays plain data
        meta['position_loss_ids'] = [node_id(v) for v in meta.pop('position_loss_values')]
    return Trace(op=ops, data=data, grad=grad, scope=scope, scopes=list(tape.scopes.scopes),
                  child_ptr=child_ptr, child=child, local=local,
                  backward_order=order, pow_exponent=dict(tape.pow_exponent),
                  param_names=list(tape.param_names), param_shapes=dict(tape.param_shapes),
                  param_base=base, meta=meta)
