"""d loss / d node by replaying the forward pass from one node of a recorded Trace.

The node's data is moved by +-h and every node that depends on it is recomputed in
id order (ids are a topological order) with its op, exactly as the engine computes
it; constants and everything upstream keep their recorded data. The node check
(nodes.py, its 'dloss' kind) and `gradcheck`'s confirmation of the first wrong node
(diagnose.py) both read d loss / d node from here.
"""

import math

from ..errors import InputError
from ..recording.ops import OP_CODE, OPS
from .params import EPS as DLOSS_EPS

_ADD, _MUL, _POW, _LOG, _EXP, _RELU = (OP_CODE[o] for o in ('add', 'mul', 'pow', 'log', 'exp', 'relu'))


class NodeCheckError(InputError):
    """The check cannot run on this trace (no backward pass, a bad node id, a replay that cannot run)."""


def _is_float(v):
    return isinstance(v, (float, int))


def _descendants_sorted(trace, node):
    return sorted(trace.descendants([node]))


def replay_loss(trace, node, value, order=None):
    """The loss recomputed with node's data set to `value`: every node that depends
    on it is re-evaluated, in id order, from its op and its children's (new or
    recorded) data; everything else, constants included, keeps its recorded data.
    `order`: the sorted descendant ids of node, if already known."""
    order = _descendants_sorted(trace, node) if order is None else order
    vals = trace.data.tolist()
    vals[node] = value
    ops, child, ptr, exps = trace.op, trace.child, trace.child_ptr, trace.pow_exponent
    for j in order:
        if j == node:
            continue
        a = ptr[j]
        code = ops[j]
        if code == _ADD:
            vals[j] = vals[child[a]] + vals[child[a + 1]]
        elif code == _MUL:
            vals[j] = vals[child[a]] * vals[child[a + 1]]
        elif code == _EXP:
            vals[j] = math.exp(vals[child[a]])
        elif code == _POW:
            vals[j] = vals[child[a]] ** exps[j]
        elif code == _LOG:
            vals[j] = math.log(vals[child[a]])
        elif code == _RELU:
            vals[j] = max(0, vals[child[a]])
    return vals[trace.meta['loss_id']]


def numeric_dloss(trace, node, eps=DLOSS_EPS):
    """(d loss / d node by central difference of `replay_loss`, the step used, the
    one-sided differences) — the step is eps * max(|x|, 1), or eps * |x| if the
    wider step leaves an op's domain."""
    order = _descendants_sorted(trace, node)
    own = next((j for j in order if trace.op[j] >= len(OPS)), None)
    if own is not None:
        raise NodeCheckError(f"node {node}: d loss / d node needs a replay through {trace.op_name(own)} "
                             f"(node {own}), the script's own op, which a trace cannot re-run")
    x = trace.data[node]
    base = trace.data[trace.meta['loss_id']]
    for h in (eps * max(abs(x), 1.0), eps * abs(x)):
        if h == 0:
            continue
        xp, xm = x + h, x - h
        try:
            up = replay_loss(trace, node, xp, order)
            down = replay_loss(trace, node, xm, order)
        except (ValueError, ZeroDivisionError, OverflowError):
            continue
        if not (_is_float(up) and _is_float(down)):
            continue
        return (up - down) / (xp - xm), h, ((up - base) / (xp - x), (base - down) / (x - xm))
    raise NodeCheckError(f"node {node}: the forward cannot be replayed around {x!r}")
