"""Scalar autograd: one `Value` node per add, mul, pow, log, exp and relu.

This is the reference microgpt engine, op for op: every primitive computes its
output and, at creation time, the local derivative with respect to each child;
`backward()` multiplies those by the upstream grad and accumulates them into the
children, walking the graph in the reference's reverse topological order.

Derived ops are built from the primitives exactly as the reference builds them
(`-x` is `x * -1`, `a - b` is `a + (-b)`, `a / b` is `a * b**-1`), so the graph
holds the same nodes, constants included, and every float is the same float.

Recording (microgpt.recording.tape) and fault injection (microgpt.checks.faults) never slow
this file down: while they are active they swap the six primitives on the class
for wrapped versions (`patched_ops`) and restore them afterwards.
"""

import gc
import math
from contextlib import contextmanager

# the primitive ops by the name the trace uses, with the attribute that holds each
PRIMITIVES = {
    'add': '__add__',
    'mul': '__mul__',
    'pow': '__pow__',
    'log': 'log',
    'exp': 'exp',
    'relu': 'relu',
}
# how many Value children each primitive's output has (`pow`'s exponent is a plain number)
ARITY = {'add': 2, 'mul': 2, 'pow': 1, 'log': 1, 'exp': 1, 'relu': 1}


class Value:
    """A scalar in the graph: its data, its grad, its children and d(self)/d(child).

    `_id` is not the reference's: a slot for a recorder (microgpt.recording) to
    number the node in; the engine never sets or reads it.
    """

    __slots__ = ('data', 'grad', '_children', '_local_grads', '_id')

    def __init__(self, data, children=(), local_grads=()):
        self.data = data
        self.grad = 0
        self._children = children
        self._local_grads = local_grads

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"

    # -- primitives: output, local derivative per child, link --------------------
    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data + other.data, (self, other), (1, 1))

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data * other.data, (self, other), (other.data, self.data))

    def __pow__(self, other):  # other is a plain number
        return Value(self.data**other, (self,), (other * self.data**(other - 1),))

    def log(self):
        return Value(math.log(self.data), (self,), (1 / self.data,))

    def exp(self):
        e = math.exp(self.data)  # the reference calls math.exp twice; same float
        return Value(e, (self,), (e,))

    def relu(self):
        return Value(max(0, self.data), (self,), (float(self.data > 0),))

    # -- derived ops: compositions of the primitives, as the reference writes them --
    def __neg__(self):  # self * -1
        return self * -1

    def __radd__(self, other):  # other + self
        return self + other

    def __sub__(self, other):  # self + (-other)
        return self + (-other)

    def __rsub__(self, other):  # other + (-self)
        return other + (-self)

    def __rmul__(self, other):  # other * self
        return self * other

    def __truediv__(self, other):  # self * other**-1
        return self * other**-1

    def __rtruediv__(self, other):  # other * self**-1
        return other * self**-1

    # -- backward ---------------------------------------------------------------
    def backward(self):
        """Set d(self)/d(node) into `.grad` of every node reachable from self."""
        topo = topological_order(self)
        self.grad = 1
        accumulate(topo)


def topological_order(root):
    """Children before parents, in exactly the order of the reference's recursive
    depth-first `build_topo` (children visited left to right), but with an
    explicit stack so deep graphs never hit Python's recursion limit. A leaf is
    emitted where it is met instead of being pushed: same order, fewer pushes."""
    topo = []
    visited = {root}
    stack = [(root, iter(root._children))]
    push, pop, mark, emit = stack.append, stack.pop, visited.add, topo.append
    while stack:
        node, children = stack[-1]
        for child in children:
            if child not in visited:
                mark(child)
                grandchildren = child._children
                if grandchildren:
                    push((child, iter(grandchildren)))
                    break
                emit(child)
        else:
            pop()
            emit(node)
    return topo


def accumulate(topo):
    """The chain rule over a topological order: parents pass grad to children.

    The reference's `for child, local_grad in zip(...)`: child.grad += local_grad * v.grad,
    first child first, unrolled for the two arities there are (ARITY: 1 or 2) and with
    leaves (parameters, constants: no children) passed over. The same products added in
    the same order, so the same floats (`x * x` included: its second += reads the first's
    result, as the loop's does), in about half the time (a third of a training step was this
    loop's zip and inner iteration: benchmarks/bench_engine.py)."""
    for v in reversed(topo):
        children = v._children
        if children:
            g = v.grad
            if len(children) == 2:
                a, b = children
                local_a, local_b = v._local_grads
                a.grad += local_a * g
                b.grad += local_b * g
            else:
                children[0].grad += v._local_grads[0] * g


@contextmanager
def patched_ops(make_op):
    """Swap each primitive for `make_op(name, current_fn)` while the block runs.

    `make_op` returns the replacement function, or None to leave that op alone.
    Patches nest: the innermost wraps whatever is installed when it starts.
    """
    saved = {}
    try:
        for name, attr in PRIMITIVES.items():
            current = Value.__dict__[attr]
            replacement = make_op(name, current)
            if replacement is not None:
                saved[attr] = current
                setattr(Value, attr, replacement)
        yield
    finally:
        for attr, fn in saved.items():
            setattr(Value, attr, fn)


@contextmanager
def gc_paused():
    """Pause Python's cyclic garbage collector while a step builds its graph.

    A step makes ~10^5 Values that refer only to older Values: no cycles, so
    reference counting frees them and the collector finds nothing, yet its full
    passes over them took most of a forward pass (measured in
    benchmarks/bench_engine.py). The previous state is restored afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
