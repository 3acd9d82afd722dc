"""The figures a summary node shows, computed from the trace (and recomputed by the tests).

A group of ops stands for a vector ("q: 16 values") or a block; its figures are
those of its *values*: the members that leave the group (used by a node outside
it) or are used by nothing (26 of the 27 softmax probabilities are never read
again). The partial sums inside a dot product are not values: a teacher asks
"what is q", not "what is the 7th partial sum of q[3]". Boundary groups show all
their members but constants: each of them is a value that crosses the view's border.
A constant (the 1/n of a mean, the -1 of a negation) is a number in the code, never a
value of the group: counted, `--node loss` showed "0.08333 … 38.72" for a sum of 38.72.
"""

import math
from collections import Counter
from dataclasses import dataclass

from microgpt.recording.ops import OP_CODE
from microgpt.recording.sums import fsum

_CONST = OP_CODE['const']


@dataclass(frozen=True)
class Figures:
    n: int              # values summarised
    data_min: float
    data_max: float
    grad_min: float
    grad_max: float
    grad_norm: float    # L2 norm of the grads (math.fsum of squares)
    grad_peak: int      # id of the value with the largest |grad| (its colour is the node's)

    def to_dict(self):
        return {k: getattr(self, k) for k in ('n', 'data_min', 'data_max', 'grad_min', 'grad_max',
                                              'grad_norm', 'grad_peak')}


def group_values(trace, ids, leaving):
    """The values of the group `ids` (sorted): non-const members in `leaving` (the
    nodes with a parent in another group) or with no parent at all; all members
    when that leaves none."""
    pptr = trace.parents_index()[0]
    op = trace.op
    out = [i for i in ids if op[i] != _CONST and (i in leaving or pptr[i] == pptr[i + 1])]
    return out or list(ids)


def boundary_values(trace, ids):
    """The values of a boundary group `ids` (sorted): its non-const members, all of
    them when every member is a constant."""
    op = trace.op
    return [i for i in ids if op[i] != _CONST] or list(ids)


def figures(trace, ids):
    """Figures of the values `ids` (non-empty). NaN-aware: min/max skip NaN unless all are."""
    data, grad = trace.data, trace.grad
    ds = [data[i] for i in ids]
    gs = [grad[i] for i in ids]
    peak = max(ids, key=lambda i: (magnitude(grad[i]), -i))
    return Figures(n=len(ids), data_min=_min(ds), data_max=_max(ds), grad_min=_min(gs), grad_max=_max(gs),
                   grad_norm=math.sqrt(fsum(g * g for g in gs)), grad_peak=peak)


def op_counts(trace, ids):
    """{op name: count}, in the trace's op order."""
    counts = Counter(trace.op[i] for i in ids)
    names = trace.op_names
    return {names[k]: counts[k] for k in sorted(counts)}


def magnitude(g):
    """|g|, NaN as the largest: a broken value is what to look at first."""
    return math.inf if math.isnan(g) else abs(g)


def _min(xs):
    ys = [x for x in xs if not math.isnan(x)]
    return min(ys) if ys else math.nan


def _max(xs):
    ys = [x for x in xs if not math.isnan(x)]
    return max(ys) if ys else math.nan


def param_shares(trace, node, interior):
    """{cell id: this view's share of its grad}: the sum (fsum) of the contributions backward
    added to it along edges from nodes in `interior`; cells nothing in view used are left out."""
    pptr, parent, edge = trace.parents_index()
    contribution = trace.edge_contribution
    shares = {}
    for i in node.ids:
        parts = [contribution(edge[k], parent[k]) for k in range(pptr[i], pptr[i + 1]) if parent[k] in interior]
        if parts:
            shares[i] = fsum(parts)
    return shares


def share_figures(trace, node, interior):
    """Figures of a boundary parameter group whose grads are *this view's share*: per cell,
    the sum of the contributions backward added to it along edges from nodes in `interior`
    (a token view's share of wte is what that position sent back). None if nothing flowed."""
    data = trace.data
    shares = param_shares(trace, node, interior)
    if not shares:
        return None
    ids = sorted(shares)
    gs = [shares[i] for i in ids]
    ds = [data[i] for i in ids]
    peak = max(ids, key=lambda i: (magnitude(shares[i]), -i))
    return Figures(n=len(ids), data_min=_min(ds), data_max=_max(ds), grad_min=_min(gs), grad_max=_max(gs),
                   grad_norm=math.sqrt(fsum(g * g for g in gs)), grad_peak=peak)
