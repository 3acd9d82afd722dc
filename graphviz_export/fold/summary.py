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
from array import array
from bisect import bisect_left
from dataclasses import dataclass, replace
from itertools import chain, compress, filterfalse, groupby, islice, repeat
from operator import add, and_, eq, lt, mul, or_, sub

from microgpt.recording.ops import OP_CODE
from microgpt.recording.runs import gather, id_runs, runs_of
from microgpt.recording.sums import fsum

_CONST = OP_CODE['const']
_NOT_CONST = bytes(int(k != _CONST) for k in range(256))


@dataclass(frozen=True)
class Figures:
    n: int              # values summarised
    data_min: float
    data_max: float
    grad_min: float
    grad_max: float
    grad_norm: float    # L2 norm of the grads (math.fsum of squares)
    grad_peak: int      # id of the value with the largest |grad| (its colour is the node's)
    over: str = ''      # '' (the group's values), or what else they are of ('in its 166 ops')

    def to_dict(self):
        return {k: getattr(self, k) for k in ('n', 'data_min', 'data_max', 'grad_min', 'grad_max',
                                              'grad_norm', 'grad_peak')}


def group_values(trace, ids, leaving, ordered=None):
    """The values of the group `ids` (sorted): non-const members in `leaving` (a set: the
    nodes with a parent in another group) or with no parent at all; all members when that
    leaves none. A group of long runs, given `ordered` (leaving, sorted), takes two slices
    by bisection per run (of it, and of the trace's dangling index): the work is what it
    shows, not what it holds; a scattered group (a matrix's uses) is read per id, in C."""
    runs = id_runs(ids)
    if ordered is None or 4 * len(runs) > len(ids):
        pptr = trace.parents_index()[0]
        free = map(eq, map(pptr.__getitem__, ids), map(pptr.__getitem__, map(add, ids, repeat(1))))
        out = list(compress(ids, map(and_, _not_const(trace, ids), map(or_, map(leaving.__contains__, ids), free))))
        return out or list(ids)
    dangling = trace.index('dangling')
    out = []
    for a, b in runs:
        out_of = ordered[bisect_left(ordered, a):bisect_left(ordered, b)]
        kept = set(compress(out_of, _not_const(trace, out_of)))
        kept.update(dangling[bisect_left(dangling, a):bisect_left(dangling, b)])
        out.extend(sorted(kept))
    return out or list(ids)


def boundary_values(trace, ids):
    """The values of a boundary group `ids` (sorted): its non-const members, all of
    them when every member is a constant."""
    return list(compress(ids, _not_const(trace, ids))) or list(ids)


def _not_const(trace, ids):
    """bytes: 1 for each of `ids` that is not a constant."""
    return bytes(map(trace.op.__getitem__, ids)).translate(_NOT_CONST)


def held_figures(trace, node):
    """Figures of everything a group holds but its constants (its partial sums too): what the
    outlined group of a difference says, whose first wrong grad may be inside it while the
    values that leave it still agree ("Δgrad 0 … 0" over the values alone)."""
    return replace(figures(trace, boundary_values(trace, node.ids)), over=f'in its {len(node.ids)} ops')


def figures(trace, ids):
    """Figures of the values `ids` (non-empty). NaN-aware: min/max skip NaN unless all are."""
    ids = ids if isinstance(ids, (list, tuple)) else list(ids)
    return figures_of(ids, array('d', map(trace.data.__getitem__, ids)), array('d', map(trace.grad.__getitem__, ids)))


def figures_of(ids, ds, gs):
    """Figures of values `ids` whose data are `ds` and grads `gs` (in the same order), with
    whole-column operations (in C, not a Python step per value). The peak is the value with
    the largest |grad| (NaN counts as infinite), the smallest id among equals."""
    if any(map(math.isnan, gs)) or any(map(math.isinf, gs)):
        top = compress(ids, map(or_, map(math.isnan, gs), map(math.isinf, gs)))
    else:
        mags = array('d', map(abs, gs))
        top = compress(ids, map(eq, mags, repeat(max(mags))))
    return Figures(n=len(ids), data_min=_min(ds), data_max=_max(ds), grad_min=_min(gs), grad_max=_max(gs),
                   grad_norm=math.sqrt(fsum(map(mul, gs, gs))), grad_peak=min(top))


def op_counts(trace, ids):
    """{op name: count}, in the trace's op order: the op column sliced per run of ids and
    counted in C (a token view of a 4 x 64 model: 440,000 ids in a few hundred runs)."""
    runs = runs_of(ids)
    if not runs:
        return {}
    ops = bytes(gather(trace.op, runs))
    names = trace.op_names
    return {names[k]: ops.count(k) for k in sorted(set(ops))}


def magnitude(g):
    """|g|, NaN as the largest: a broken value is what to look at first."""
    return math.inf if math.isnan(g) else abs(g)


def _min(xs):
    if not any(map(math.isnan, xs)):
        return min(xs)
    ys = list(filterfalse(math.isnan, xs))
    return min(ys) if ys else math.nan


def _max(xs):
    if not any(map(math.isnan, xs)):
        return max(xs)
    ys = list(filterfalse(math.isnan, xs))
    return max(ys) if ys else math.nan


def param_shares(trace, node, interior):
    """{cell id: this view's share of its grad}, in id order: the sum (fsum) of the contributions
    backward added to it along edges from nodes in `interior`; cells nothing in view used are left
    out. Per run of consecutive cells, the reverse edges are one slice: picked in C, summed per cell."""
    pptr, parent, edge = trace.parents_index()
    grad = trace.grad
    shares = {}
    for a, b in id_runs(sorted(node.ids)):
        k0, k1 = pptr[a], pptr[b]
        inside = bytes(map(interior.__contains__, parent[k0:k1]))
        if not any(inside):
            continue
        cells = list(compress(chain.from_iterable(map(repeat, range(a, b), map(sub, pptr[a + 1:b + 1], pptr[a:b]))),
                              inside))
        parts = trace.edge_contribs(compress(edge[k0:k1], inside), map(grad.__getitem__, compress(parent[k0:k1], inside)))
        if all(map(lt, cells, islice(cells, 1, None))):
            # one part a cell (a token view reads each cell once): the part itself, a negative
            # zero as 0.0 (what fsum gives: -0.0 + 0.0 is 0.0, any other x + 0.0 is x), in C
            shares.update(zip(cells, map(add, parts, repeat(0.0))))
            continue
        for cell, group in groupby(range(len(cells)), key=cells.__getitem__):
            group = list(group)
            # fsum of one part is the part, but a negative zero's sum is 0.0
            shares[cell] = (parts[group[0]] or 0.0) if len(group) == 1 else fsum(map(parts.__getitem__, group))
    return shares


def share_figures(trace, node, interior):
    """Figures of a boundary parameter group whose grads are *this view's share*: per cell,
    the sum of the contributions backward added to it along edges from nodes in `interior`
    (a token view's share of wte is what that position sent back). None if nothing flowed."""
    shares = param_shares(trace, node, interior)
    if not shares:
        return None
    ids = list(shares)      # in id order (param_shares)
    return figures_of(ids, array('d', map(trace.data.__getitem__, ids)), array('d', map(shares.__getitem__, ids)))
