"""A micrograd `_backward` closure, read the way micrograd runs it: which child it adds
to, how much, on which line, in which order.

    read = closure_reader()                 # in the child process, once per recording
    edges = read(node, children)            # per node
    derivative_line(trace, node, k)         # later, on the Trace: where edge k is written
    assigning_use(trace, node)              # the use whose closure set node's grad with =

Why one edge per addition. micrograd keeps a node's children as `_prev =
set(_children)`, so `p*p` (its demo's L2 term) has ONE child, and its closure adds
`p.data*out.grad` to `p.grad` twice: once per line. One edge with local 2p would make
a trace's sum (2p*g added once) differ from micrograd's (p*g, then p*g) in the last
bit whenever another use of p was added first, i.e. depending on the set's order. So
every addition is an edge: two edges p -> p*p, each with local p, in the order the
closure adds them; summed in backward order they are micrograd's grad bit for bit.

How a closure is read. Each child's grad is replaced by an `_Added` (a float that logs
every `+` and `-` applied to it: the amount and the caller's line), the node's
grad is set to 1.0, the closure is called once, and every grad is restored. With a
unit upstream grad each amount is that addition's local derivative, the very number
micrograd multiplies by out.grad. Then:

  added        one edge per logged amount (a `-=` logs minus the amount), on the line
               of that `+=`: the line of the operand, so a bent second operand of
               add or mul is named by its own line, not by the closure's first
  assigned     a child whose grad ends as anything but its own `_Added` was set
               with `=` (`other.grad = out.grad`): one edge holding the value left,
               marked, on the line that assigned it (found only then, by calling the
               closure once more under a line tracer)
  untouched    a child the closure never adds to: one edge with local 0.0, on the
               closure's `def` line

Edges of added amounts come first, in the order they were added; assigned and
untouched children follow, in the order given (the trace's id order).

On the Trace. A node's `Source.grad_line` is its first edge's line. Where a node's
edges sit on different lines (add and mul: one line per operand) or one of them was
assigned, `meta['recorded_from']['closure_lines']` holds, per source id,
`[source id, [line of each edge], [indexes of assigned edges]]`; build.py interns one
Source per distinct entry, so the table is per source, not per node.
"""

import sys

TABLE = 'closure_lines'


def closure_reader():
    """A function `read(v, kids)` -> [(child, local derivative, line, assigned)] per
    edge of v's `_backward` closure over its distinct children `kids` (see the module
    docstring), grads restored. One per recording: it owns the log its `_Added` grads
    write to (a node's closure is read to the end before the next one)."""
    log = []
    getframe = sys._getframe

    class _Added(float):
        """A child's grad while a closure is read: logs (itself, amount, line) for every
        `+` and `-` applied to it and returns itself, so a child whose grad is still its
        own `_Added` afterwards was only added to. Its value (0.0) is never read."""
        __slots__ = ()

        def __add__(self, x):
            log.append((self, x, getframe(1).f_lineno))
            return self

        __radd__ = __add__

        def __sub__(self, x):
            log.append((self, -x, getframe(1).f_lineno))
            return self

    def read(v, kids):
        fn = v._backward
        probes = [_Added() for _ in kids]
        ids = list(map(id, probes))
        del log[:]
        left = _call(v, kids, fn, probes)
        edges, added = [], set()
        for p, x, line in log:
            j = ids.index(id(p))
            added.add(j)
            edges.append((kids[j], x, line, False))
        if len(added) == len(kids) and list(map(id, left)) == ids:
            return edges            # the usual closure: every child added to, nothing assigned
        assigned = [j for j, (g, p) in enumerate(zip(left, probes)) if g is not p]
        code = getattr(fn, '__code__', None)
        def_line = code.co_firstlineno if code is not None else 0
        edges = [e for e in edges if not any(e[0] is kids[j] for j in assigned)]
        lines = _assign_lines(v, kids, fn, code, assigned, [_Added() for _ in kids]) if assigned else {}
        for j, c in enumerate(kids):
            if j in assigned:
                edges.append((c, float(left[j]) if isinstance(left[j], _Added) else left[j],
                              lines.get(j, def_line), True))
            elif j not in added:
                edges.append((c, 0.0, def_line, False))
        return edges

    return read


def _call(v, kids, fn, probes):
    """Call the closure once on a unit upstream grad with the children's grads set to
    `probes`; the children's grads as it left them (every grad restored)."""
    saved_v, saved = v.grad, [c.grad for c in kids]
    try:
        for c, p in zip(kids, probes):
            c.grad = p
        v.grad = 1.0
        fn()
        return [c.grad for c in kids]
    finally:
        for c, g in zip(kids, saved):
            c.grad = g
        v.grad = saved_v


def _assign_lines(v, kids, fn, code, assigned, probes):
    """{child slot: the closure line after which its grad stopped being its `probes`
    entry}, by calling the closure again under a line tracer."""
    found, last = {}, [None]

    def watch(frame, event, arg):
        if event in ('line', 'return') and last[0] is not None:
            for j in assigned:
                if j not in found and kids[j].grad is not probes[j]:
                    found[j] = last[0]
        if event == 'line':
            last[0] = frame.f_lineno
        return watch

    def calls(frame, event, arg):
        return watch if frame.f_code is code else None

    if code is None:
        return found
    before = sys.gettrace()
    sys.settrace(calls)
    try:
        _call(v, kids, fn, probes)
    finally:
        sys.settrace(before)
    return found


# -- reading the table back from a Trace ------------------------------------------------------
def _table(trace):
    rows = trace.meta.get('recorded_from', {}).get(TABLE) or ()
    return {sid: (lines, set(assigned)) for sid, lines, assigned in rows}


def derivative_line(trace, node, k):
    """(file, line) where d node / d child k is written: the line of that edge's `+=`
    for a closure, else the node's grad line (microgpt: the line storing _local_grads).
    None for a trace without sources (the port's own)."""
    src = trace.source_of(node)
    if src is None:
        return None
    row = _table(trace).get(trace.source[node])
    if row is not None and k < len(row[0]):
        return src.op_file, row[0][k]
    return src.op_file, src.grad_line or src.op_line


def assigning_use(trace, node):
    """(parent, edge index, (file, line)) of the last use, in backward order, whose
    closure set node's grad with `=` instead of adding to it after another use had
    added to it (what lost a contribution); None if there is none. The first use's
    `=` loses nothing: backward's grads start from 0 there too."""
    table = _table(trace)
    if not table:
        return None
    pptr, parent, pedge = trace.parents_index()
    rank, ptr = trace.backward_rank, trace.child_ptr
    uses = [(rank[p], p, pedge[k] - ptr[p]) for k, p in enumerate(parent[pptr[node]:pptr[node + 1]], pptr[node])
            if rank[p] >= 0]
    for _, p, j in sorted(uses, reverse=True)[:-1]:     # the last applied first, the first use left out
        row = table.get(trace.source[p])
        if row is not None and j in row[1]:
            return p, j, (trace.sources[trace.source[p]].op_file, row[0][j])
    return None
