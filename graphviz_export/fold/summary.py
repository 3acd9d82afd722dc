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
from dataclasses import replace
from functools import cached_property
from itertools import chain, compress, repeat
from operator import add, and_, eq, or_, sub

from microgpt.recording.figures import Figures, cell_shares, figures_of
from microgpt.recording.ops import OP_CODE, count_ops
from microgpt.recording.runs import gather, id_runs, runs_of, scopes_of
from microgpt.recording.shares import stored_figures, stored_share, whole_scopes

_CONST = OP_CODE['const']
_NOT_CONST = bytes(int(k != _CONST) for k in range(256))


def group_values(trace, ids, leaving, ordered=None, runs=None):
    """The values of the group `ids` (sorted): non-const members in `leaving` (a set: the
    nodes with a parent in another group) or with no parent at all; all members when that
    leaves none. A group of long runs, given `ordered` (leaving, sorted), takes two slices
    by bisection per run (of it, and of the trace's dangling index): the work is what it
    shows, not what it holds; a scattered group (a matrix's uses) is read per id, in C.
    `runs`: id_runs(ids), when known."""
    runs = id_runs(ids) if runs is None else runs
    if ordered is None or 4 * len(runs) > len(ids):
        if leaving.issuperset(ids) and 0 not in _not_const(trace, ids):
            return ids      # every member leaves and none is a constant (a matrix's uses): all of them, as they are
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


def boundary_values(trace, ids, runs=None):
    """The values of a boundary group `ids` (sorted): its non-const members, all of
    them when every member is a constant. `runs`: id_runs(ids), when known. All of them:
    `ids` itself (a token view's 200,000 parameter cells: not copied, their runs known)."""
    kept = list(compress(ids, _not_const(trace, ids, runs)))
    return kept if 0 < len(kept) < len(ids) else ids


def _not_const(trace, ids, runs=None):
    """bytes: 1 for each of `ids` that is not a constant; given their runs, the op column read
    per run (a token view's boundary holds 200,000 parameter cells)."""
    ops = bytes(gather(trace.op, runs)) if runs else bytes(map(trace.op.__getitem__, ids))
    return ops.translate(_NOT_CONST)


def held_figures(trace, node):
    """Figures of everything a group holds but its constants (its partial sums too): what the
    outlined group of a difference says, whose first wrong grad may be inside it while the
    values that leave it still agree ("Δgrad 0 … 0" over the values alone)."""
    return replace(figures(trace, boundary_values(trace, node.ids)), over=f'in its {len(node.ids)} ops')


def figures(trace, ids):
    """Figures of the values `ids` (non-empty). NaN-aware: min/max skip NaN unless all are."""
    ids = ids if isinstance(ids, (list, tuple)) else list(ids)
    stored = stored_figures(trace, ids)     # a whole matrix: its stored record
    if stored is not None:
        return Figures(**stored)
    return figures_of(ids, array('d', map(trace.data.__getitem__, ids)), array('d', map(trace.grad.__getitem__, ids)))


def op_counts(trace, ids, runs=None):
    """{op name: count}, in the trace's op order: the op column sliced per run of ids and
    counted in C (a token view of a 4 x 64 model: 440,000 ids in a few hundred runs)."""
    runs = runs_of(ids) if runs is None else runs
    if not runs:
        return {}
    return count_ops(bytes(gather(trace.op, runs)), trace.op_names)


def magnitude(g):
    """|g|, NaN as the largest: a broken value is what to look at first."""
    return math.inf if math.isnan(g) else abs(g)


def param_shares(trace, node, interior):
    """{cell id: this view's share of its grad}, in id order: the sum (fsum) of the contributions
    backward added to it along edges from nodes in `interior`; cells nothing in view used are left
    out. Per run of consecutive cells, the reverse edges are one slice: picked in C, summed per
    cell (recording.figures.cell_shares, the rule the stored share records follow)."""
    pptr, parent, edge = trace.parents_index()
    grad = trace.grad
    shares = {}
    for a, b in id_runs(sorted(node.ids)):
        k0, k1 = pptr[a], pptr[b]
        inside = bytes(map(getattr(interior, 'members', interior).__contains__, parent[k0:k1]))
        if not any(inside):
            continue
        cells = list(compress(chain.from_iterable(map(repeat, range(a, b), map(sub, pptr[a + 1:b + 1], pptr[a:b]))),
                              inside))
        parts = trace.edge_contribs(compress(edge[k0:k1], inside), map(grad.__getitem__, compress(parent[k0:k1], inside)))
        shares.update(cell_shares(cells, parts))
    return shares


class Interior:
    """A view's interior: its node ids (sorted), `scopes` (the scope ids it is made of when it
    holds every node of each: recording.shares.whole_scopes, else None), and `members`, the
    ids as a frozenset, made only when a membership test needs it (not for a view whose
    shares come from the stored records: the whole document holds 2.2 M ids)."""

    def __init__(self, trace, ids):
        self.ids = ids
        self.scopes = whole_scopes(trace, None, len(ids), scopes_of(trace, ids)) if ids else None

    @cached_property
    def members(self):
        return frozenset(self.ids)

    def __contains__(self, i):
        return i in self.members


def share_figures(trace, node, interior):
    """Figures of a boundary parameter group whose grads are *this view's share*: per cell,
    the sum of the contributions backward added to it along edges from nodes in `interior`
    (a token view's share of wte is what that position sent back). None if nothing flowed.
    An interior of whole scopes reads them from the matrix's stored share record."""
    scopes = getattr(interior, 'scopes', None)
    if scopes is not None:
        found, fields = stored_share(trace, node.scope.role, node.ids, scopes)
        if found:
            return fields and Figures(**fields)
    shares = param_shares(trace, node, interior)
    if not shares:
        return None
    ids = list(shares)      # in id order (param_shares)
    return figures_of(ids, array('d', map(trace.data.__getitem__, ids)), array('d', map(shares.__getitem__, ids)))
