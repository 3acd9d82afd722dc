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
from itertools import chain, compress, count, islice, repeat
from operator import add, and_, eq, lt, ne, or_, sub

from microgpt.recording.figures import Figures, cell_shares, figures_of, magnitudes_of
from microgpt.recording.ops import OP_CODE, count_ops
from microgpt.recording.runs import SCATTERED, gather, id_runs, runs_of, scopes_in, scopes_of
from microgpt.recording.shares import stored_figures, stored_share, whole_scopes
from microgpt.recording.uses import expand, has_figures, held, record_figures, record_magnitudes, record_of

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


def group_figures(trace, node):
    """figures of a group's values (what its label states), found once per node and trace (a
    view reads them for its label, tooltip, legend and overlay), its values read per run or per
    progression (node_column)."""
    def make():
        stored = stored_figures(trace, node.values)     # a whole matrix: its stored record
        if stored is not None:
            return Figures(**stored)
        k = node_record(trace, node)
        if k is not None and has_figures(trace):        # one use record's uses or outputs: its stored figures
            return record_figures(trace, *k)
        return figures_of(node.values, node_column(trace.data, node), node_column(trace.grad, node), ordered=True)
    return once(node, trace, 'figures', make)


def node_record(trace, node):
    """(side, k): the use record (recording.uses) whose uses or outputs are exactly a group's values (a
    matrix's uses or outputs at a position), or None; found once per node and trace. Its values are then
    read per row of the record's pattern (record_strides), not per progression found in them."""
    def make():
        values = getattr(node, 'values', ())
        k = record_of(trace, values) if len(values) > SCATTERED and held(trace) else None
        memo = getattr(node, '__dict__', None)
        if k is not None and memo is not None:
            memo.setdefault('_strides', {}).setdefault(_which(node, True), record_strides(trace, *k))
        return k
    return once(node, trace, 'record', make)


def record_strides(trace, side, k):
    """_strides of record k's uses or outputs (`side`): each row's progressions (those of the pattern's
    offsets) moved to the row's first id; None where progressions would find more than one per 8 ids."""
    col = trace.index
    n, first, period, p = (col(f'{side}_{f}')[k] for f in ('n', 'first', 'period', 'pattern'))
    ptr = col('pattern_ptr')
    offsets = col('pattern')[ptr[p]:ptr[p + 1]]
    starts, stops, steps = progressions(offsets, len(offsets))
    rows = n // len(offsets)
    if rows * len(starts) > n // 8:
        return None
    return (array('q', expand(rows * len(starts), first, period, tuple(starts))),
            array('q', expand(rows * len(stops), first, period, tuple(stops))), steps * rows)


def record_single(trace, side, k):
    """Whether no two of record k's uses or outputs (`side`) are consecutive ids (runs.all_single), from its
    pattern: no two offsets of a row one apart, nor a row's last id and the next row's first."""
    col = trace.index
    n, period, p = (col(f'{side}_{f}')[k] for f in ('n', 'period', 'pattern'))
    ptr = col('pattern_ptr')
    offsets = col('pattern')[ptr[p]:ptr[p + 1]]
    return all(map(lt, map(add, offsets, repeat(1)), islice(offsets, 1, None))) and (
        n == len(offsets) or period - offsets[-1] > 1)


def group_magnitudes(trace, node):
    """(largest |grad|, largest |grad x data|) of a group's values (figures.magnitudes_of), what the
    explorer's overlay colours it by, read once per node and trace; a use record's when they are
    one record's uses or outputs (recording.uses)."""
    def make():
        k = node_record(trace, node)
        if k is not None and has_figures(trace):
            return record_magnitudes(trace, *k)
        return magnitudes_of(group_figures(trace, node), node_column(trace.grad, node), node_column(trace.data, node))
    return once(node, trace, 'magnitudes', make)


def node_op_counts(trace, node):
    """op_counts of a drawn node's ids, found once per node and trace (its tooltip and its panel)."""
    return once(node, trace, 'op_counts', lambda: count_ops(bytes(node_column(trace.op, node, False)), trace.op_names))


def node_scopes(trace, node, values=True):
    """The scope ids of a drawn node's values (values=False: its ids), a set, found once per node and
    trace (its title, tooltip and roles): from the trace's scope runs for a few long runs (scopes_in),
    else its scope column read per progression."""
    def make():
        if _strides(node, values) is None:
            return scopes_in(trace, _ids_runs(node, values)[1])
        return set(node_column(trace.scope, node, values))
    return once(node, trace, ('scopes', _which(node, values)), make)


def node_column(column, node, values=True):
    """column[i] for each of a drawn node's values (values=False: its ids), in id order (an array
    for an array column): per run of ids (a token's groups: a few long runs), or, when its runs
    are short, per arithmetic progression (a matrix's uses at a position: 16,384 single ids, 256
    rows of 64 two apart between the partial sums: 256 slices in C, not 16,384 look-ups)."""
    st = _strides(node, values)
    if st is None:
        return gather(column, _ids_runs(node, values)[1])
    out = column[0:0]
    for a, b, step in zip(*st):
        out += column[a:b:step]
    return out


def _ids_runs(node, values):
    """(ids, their runs) of a node's values or ids (a folded node keeps its runs: VNode)."""
    if values and node.values:
        return node.values, node.value_runs if hasattr(node, 'value_runs') else runs_of(node.values)
    return node.ids, node.runs if hasattr(node, 'runs') else runs_of(node.ids)


def _strides(node, values):
    """(starts, stops, steps) of the arithmetic progressions making up a node's values or ids
    (progressions), found once per node; None for few or long runs (gather reads those per run) or
    when the ids make more than one progression per 8 ids."""
    ids, runs = _ids_runs(node, values)
    if len(runs) <= SCATTERED or len(ids) >= 4 * len(runs):
        return None
    memo = getattr(node, '__dict__', {}).setdefault('_strides', {})
    key = _which(node, values)
    if key not in memo:
        memo[key] = progressions(ids, len(ids) // 8)
    return memo[key]


def _which(node, values):
    """True for a node's ids, False for its values: one for both when they are the same ids (a
    matrix's use group, its values equal to its ids)."""
    ids, own = _ids_runs(node, values)[0], getattr(node, 'ids', None)
    return ids is own or ids == own


def progressions(ids, most):
    """(starts, stops, steps): the sorted ids `ids` (two or more) as arithmetic progressions, each
    as long as it goes from where the last ended (range(start, stop, step) for each, in order);
    None when that makes more than `most`. The differences and where they change found in C."""
    n = len(ids)
    diffs = array('q', map(sub, islice(ids, 1, None), ids))
    changes = array('q', compress(count(1), map(ne, islice(diffs, 1, None), diffs)))   # diffs[k] != diffs[k - 1]
    starts, stops, steps = array('q'), array('q'), array('q')
    k = 0
    while k < n:
        if len(starts) == most:
            return None
        if k == n - 1:
            end, step = k, 1
        else:
            j = bisect_left(changes, k + 1)
            end, step = (changes[j] if j < len(changes) else n - 1), diffs[k]    # diffs[k:end] all equal step
        starts.append(ids[k])
        stops.append(ids[end] + 1)
        steps.append(step)
        k = end + 1
    return starts, stops, steps


def once(node, trace, what, make):
    """make(), kept on drawn node `node` for `trace`: what a view reads of a node several times (its
    title, tooltip, legend and panel) found once per node and trace (a played step's trace has other
    numbers); made each time for a node that keeps nothing."""
    memo = getattr(node, '__dict__', None)
    if memo is None:
        return make()
    held = memo.setdefault('_once', {}).get(what)
    if held is None or held[0] is not trace:
        held = memo['_once'][what] = (trace, make())
    return held[1]


def interior_of(trace, selection):
    """The Interior of a view's selection, made once per view (its drawing and its panel's figures)."""
    return once(selection, trace, 'interior', lambda: Interior(trace, selection.nodes))


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
