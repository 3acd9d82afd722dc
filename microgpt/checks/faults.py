"""Fault injection: run the engine with one deliberately wrong derivative.

For teaching gradient debugging: the forward pass stays exactly right (same
floats, same graph), only the local derivative one op kind stores is bent, so
training quietly goes wrong and the checkers (microgpt.checks.params for the
parameters, microgpt.checks.nodes for the recorded graph) have something to find.

    with inject('exp-x2'):                 # a named fault from FAULTS
        trace = record_step(params, config, tok, 'emma')
    check_trace(trace).first               # -> the exp node nearest the loss

    with inject('exp', factor=2.0): ...    # or build one: op + one modifier
    with inject('relu', flip=True): ...    # d relu/dx = 1 - (x > 0)
    with inject('mul', swap=True): ...     # d(a*b)/da = a, d(a*b)/db = b
    with inject('add', factor=0.0, child=1): ...   # second input gets no grad
    with inject('pow', off_by_one=True): ...       # n * x**n
    with inject('log', factor=-1.0): ...

Modifiers (exactly one; `child` only with `factor`):
    factor=f       every local derivative of the op times f (or only the
                   `child`-th argument's: 0 = the left/only one, 1 = the right)
    flip=True      relu only: the derivative becomes 1 - (x > 0)
    swap=True      mul only: the two local derivatives trade places
    off_by_one=True  pow only: n * x**n instead of n * x**(n - 1)

A fault wraps the op currently installed on `Value` (engine.patched_ops), so it
works outside and inside `record()` alike and the trace holds the wrong local
derivatives either way; faults nest. The 'accumulate-overwrite' fault is the one
that is not an op's: it swaps the backward pass's `child.grad += ...` for
`child.grad = ...` (engine.accumulate), the classic bug of a node used twice.
"""

from contextlib import contextmanager
from dataclasses import dataclass

from .. import engine
from ..engine import ARITY, PRIMITIVES
from ..errors import InputError
from ..recording.lab import assign_accumulate

_active = []  # names of the faults in force, outermost first (for reports)


@dataclass(frozen=True)
class Fault:
    """One wrong derivative: which op, how it is bent, and what that means."""
    name: str
    op: str                  # a primitive ('add', 'mul', 'pow', 'log', 'exp', 'relu') or 'accumulate'
    description: str
    factor: float = None
    child: int = None
    flip: bool = False
    swap: bool = False
    off_by_one: bool = False

    def to_dict(self):
        d = {'name': self.name, 'op': self.op, 'description': self.description}
        for key in ('factor', 'child'):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        for key in ('flip', 'swap', 'off_by_one'):
            if getattr(self, key):
                d[key] = True
        return d


FAULTS = {f.name: f for f in (
    Fault('exp-x2', 'exp', "exp: local derivative doubled, 2*e^x instead of e^x", factor=2.0),
    Fault('exp-subtle', 'exp', "exp: local derivative 0.1% too large, 1.001*e^x (hard to see in the loss)",
          factor=1.001),
    Fault('log-sign', 'log', "log: derivative with the wrong sign, -1/x instead of 1/x", factor=-1.0),
    Fault('relu-flip', 'relu', "relu: gradient flipped, passes where x <= 0 and blocks where x > 0", flip=True),
    Fault('mul-swap', 'mul', "mul: local derivatives swapped, d(a*b)/da = a instead of b", swap=True),
    Fault('pow-off-by-one', 'pow', "pow: exponent not decremented, n*x^n instead of n*x^(n-1)", off_by_one=True),
    Fault('add-drop', 'add', "add: the right input gets no gradient, local derivatives (1, 0)", factor=0.0, child=1),
    Fault('accumulate-overwrite', 'accumulate',
          "backward: child.grad = ... instead of +=, a node used twice keeps only its last contribution"),
)}


def fault_names():
    return list(FAULTS)


def describe_faults():
    """'name  description' lines, one per named fault (for `--inject` help)."""
    width = max(map(len, FAULTS))
    return '\n'.join(f"{name:<{width}}  {f.description}" for name, f in FAULTS.items())


def active_faults():
    """Names of the faults in force right now, outermost first."""
    return list(_active)


def make_fault(name, *, factor=None, child=None, flip=False, swap=False, off_by_one=False):
    """The `Fault` for a registered name, or one built from an op and one modifier."""
    modifiers = {'factor': factor, 'child': child, 'flip': flip, 'swap': swap, 'off_by_one': off_by_one}
    given = [k for k, v in modifiers.items() if v not in (None, False)]
    if name in FAULTS:
        if given:
            raise InputError(f"{name!r} is a named fault; give modifiers ({', '.join(given)}) "
                             f"with an op name instead: {', '.join(PRIMITIVES)}")
        return FAULTS[name]
    if name not in PRIMITIVES:
        raise InputError(f"unknown fault {name!r}; named faults: {', '.join(FAULTS)}; "
                         f"or an op ({', '.join(PRIMITIVES)}) with factor=, flip=, swap= or off_by_one=")
    kinds = [k for k in given if k != 'child']
    if len(kinds) != 1:
        raise InputError(f"inject({name!r}) needs exactly one of factor=, flip=, swap=, off_by_one=; "
                         f"got {', '.join(kinds) or 'none'}")
    kind = kinds[0]
    allowed = {'flip': 'relu', 'swap': 'mul', 'off_by_one': 'pow'}
    if kind in allowed and name != allowed[kind]:
        raise InputError(f"{kind}= applies to {allowed[kind]} only, not {name}")
    if child is not None:
        if kind != 'factor':
            raise InputError("child= goes with factor= only")
        if not isinstance(child, int) or not 0 <= child < ARITY[name]:
            raise InputError(f"child must be 0..{ARITY[name] - 1} for {name}, got {child!r}")
    if factor is not None:
        factor = float(factor)
    which = f" of argument {child}" if child is not None else ''
    text = {'factor': f"{name}: local derivative{which} times {factor:g}",
            'flip': "relu: gradient flipped", 'swap': "mul: local derivatives swapped",
            'off_by_one': "pow: n*x^n instead of n*x^(n-1)"}[kind]
    return Fault(f"{name}-custom", name, text, factor=factor, child=child, flip=flip, swap=swap,
                 off_by_one=off_by_one)


def _bend(fault, current):
    """`current` (the installed primitive) with its output's local derivatives bent."""
    factor, child = fault.factor, fault.child

    if fault.swap:
        def wrong(out, self, other):
            a, b = out._local_grads
            return (b, a)
    elif fault.flip:
        def wrong(out, self, other):
            return tuple(1.0 - g for g in out._local_grads)
    elif fault.off_by_one:
        def wrong(out, self, other):
            return (other * self.data**other,)
    elif child is None:
        def wrong(out, self, other):
            return tuple(g * factor for g in out._local_grads)
    else:
        def wrong(out, self, other):
            grads = list(out._local_grads)
            grads[child] = grads[child] * factor
            return tuple(grads)

    if ARITY[fault.op] == 2 or fault.op == 'pow':
        def op(self, other):
            out = current(self, other)
            out._local_grads = wrong(out, self, other)
            return out
    else:
        def op(self):
            out = current(self)
            out._local_grads = wrong(out, self, None)
            return out
    op.__name__ = current.__name__
    op.__doc__ = current.__doc__
    return op


@contextmanager
def inject(name, **modifiers):
    """Run the block with one wrong derivative: a name from FAULTS, or an op and
    one modifier (see the module docstring). Unknown names raise ValueError
    listing the known ones. Yields the `Fault`."""
    fault = make_fault(name, **modifiers)
    _active.append(fault.name)
    try:
        if fault.op == 'accumulate':
            saved = engine.accumulate
            engine.accumulate = assign_accumulate
            try:
                yield fault
            finally:
                engine.accumulate = saved
        else:
            with engine.patched_ops(lambda op, current: _bend(fault, current) if op == fault.op else None):
                yield fault
    finally:
        _active.pop()
