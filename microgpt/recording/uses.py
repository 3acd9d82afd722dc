"""Use records: what a matrix view (graphviz_export.select.matrix_view) reads of a parameter matrix's
uses, per run of the trace they lie in (recording.indexes.run_start), computed once from the edges so
that selecting and folding a matrix's 196,608 uses at 5 M nodes reads a few hundred records, not their
393,000 child and 393,000 parent edges.

The interior of matrix m's view is its cells and its uses (every node reading a cell). Per matrix (in
trace.param_names order) the records use_ptr[m]..use_ptr[m + 1], one per run r holding uses, in run
order:
    use_run                  r
    use_n, use_first, use_period, use_pattern
                             the uses in run r (n of them) as rows (periodic): row i the ids first + i x
                             period + the offsets of pattern use_pattern (pattern_ptr, pattern: the
                             patterns, each once); -1 when they are not such rows
    out_n, out_first, out_period, out_pattern
                             the same of the run's outputs: the uses' parents outside the interior (sorted)
    out_edges, out_local, out_contrib, out_norm, out_kids, out_inside
                             the outputs' edges into the interior, the outputs in id order and each
                             one's edges in order, as fold's bundle of them (bundles.add_to): their
                             count, local derivatives and contributions added up from 0.0 in that
                             order, the norm of what each child received (from 0.0, in that order), how
                             many children they read, and 1 when those all lie in this run's uses
    use_kid_ptr, use_kids    the uses' children outside the interior (sorted): the view's inputs
    use_scope_ptr, use_scopes, use_scope_n
                             per scope the uses read outside their own uses (sorted: the matrix's,
                             an input's), how many of their edges go there: a run record (r, scope)
                             holding as many edges is exactly theirs (aggregates.run_records)

and, stored beside them (FIGURE_COLUMNS: a file holding the records without them opens, its views read
the values instead), per record and side ('use', 'out'), what a drawn group of exactly those ids shows:
    {side}_fig_data_min, _data_max, _grad_min, _grad_max, _grad_norm, _peak
                             figures.figures_of of the ids in id order (graphviz_export.fold.summary's
                             group_figures of such a group); NaN, peak -1, when they are not rows
    {side}_fig_mag_grad, _mag_gd
                             figures.magnitudes_of (the explorer's overlay: group_magnitudes)

Small: a record a matrix and position (28 matrices x 12 positions at 4 x 64), the inputs a few
dozen ids each, a pattern a matrix and side; the uses and outputs are never stored one by one.
"""

import math
from array import array
from collections import Counter, deque
from contextlib import contextmanager
from functools import reduce
from itertools import chain, compress, islice, repeat
from operator import add, lt, mul, sub

from .figures import Figures, figures_of, magnitudes_of
from .runs import edges_of, holds, repeats, run_pieces, spans
from .shares import matrix_span
from .sums import fsum

PERIODIC = (('n', 'q'), ('first', 'q'), ('period', 'q'), ('pattern', 'i'))
USE_COLUMNS = (('use_ptr', 'q'), ('use_run', 'q'),
               *((f'use_{f}', code) for f, code in PERIODIC), *((f'out_{f}', code) for f, code in PERIODIC),
               ('out_edges', 'q'), ('out_local', 'd'), ('out_contrib', 'd'), ('out_norm', 'd'), ('out_kids', 'q'),
               ('out_inside', 'B'), ('use_kid_ptr', 'q'), ('use_kids', 'I'), ('use_scope_ptr', 'q'),
               ('use_scopes', 'I'), ('use_scope_n', 'q'), ('pattern_ptr', 'q'), ('pattern', 'q'))
FIGURE_FIELDS = ('data_min', 'data_max', 'grad_min', 'grad_max', 'grad_norm', 'mag_grad', 'mag_gd')
FIGURE_COLUMNS = tuple((f'{side}_fig_{f}', code) for side in ('use', 'out')
                       for f, code in (*((f, 'd') for f in FIGURE_FIELDS), ('peak', 'q')))
MAX_ROW = 256       # ids a row of a pattern holds at most (a record's ids that are no rows: one row, when few)
_CELL, _USE = 1, 2      # a node's mark in the interior of one matrix's view (0: outside)
_OUTSIDE = bytes([1]) + bytes(255)      # a mark -> 1 where the node is outside the interior
_INSIDE = bytes([0]) + bytes([1]) * 255
_NOT_USE = bytes([1, 1, 0]) + bytes([1]) * 253      # -> 1 where the node is not a use


def periodic(ids, widths):
    """(n, first, period, offsets) of the sorted ids `ids` when they are rows of len(offsets) ids, row i
    the ids first + i * period + offsets (a matrix product's uses: a row's products, its sum's adds
    between them), for the first of `widths` that fits (checked against all ids in C); else
    (n, first, 0, None)."""
    n = len(ids)
    if n == 0:
        return 0, 0, 0, None
    for w in widths:
        if 0 < w <= n and n % w == 0:
            period = ids[w] - ids[0] if w < n else ids[-1] - ids[0] + 1
            offsets = tuple(map(sub, ids[:w], repeat(ids[0])))
            if period > offsets[-1] and list(ids) == expand(n, ids[0], period, offsets):
                return n, ids[0], period, offsets
    return n, ids[0], 0, None


def expand(n, first, period, offsets):
    """The ids of rows of `offsets` (periodic): a list, made in C."""
    rows = range(first, first + (n // len(offsets)) * period, period)
    return list(chain.from_iterable(map(map, repeat(add), repeat(offsets), map(repeat, rows))))


def use_records(trace, progress=None):
    """The USE_COLUMNS of `trace`, from its edges, reverse edges and grads; `progress(done, total)`
    told per matrix (matrices done of all), and again after each record."""
    say = progress or (lambda done, total: None)
    out = {name: array(code) for name, code in USE_COLUMNS}
    for name in ('use_ptr', 'use_kid_ptr', 'use_scope_ptr', 'pattern_ptr'):
        out[name].append(0)
    patterns = {}       # offsets -> their index in the pattern table (every position's rows alike: one)
    pptr, parent, _ = trace.parents_index()
    for m, name in enumerate(trace.param_names):
        say(m, len(trace.param_names))
        a, b = matrix_span(trace.param_shapes, trace.param_base, name)
        widths = trace.param_shapes[name][::-1]
        uses = sorted(set(parent[pptr[a]:pptr[b]]))
        mark = bytearray(len(trace))
        mark[a:b] = bytes([_CELL]) * (b - a)
        deque(map(mark.__setitem__, uses, repeat(_USE)), maxlen=0)
        cells = trace.scope[a] if trace.scope[a:b].count(trace.scope[a]) == b - a else None    # their one scope
        for r, lo, hi in run_pieces(trace, uses):
            _record(trace, out, (mark, cells), r, uses[lo:hi], (widths, patterns))
            say(m, len(trace.param_names))      # again a record (~20 ms at 5 M nodes): where a caller may yield
        out['use_ptr'].append(len(out['use_run']))
    say(len(trace.param_names), len(trace.param_names))
    return out


def use_figures(trace, cols):
    """The FIGURE_COLUMNS of the use records `cols` ({name: column}): each record's uses and outputs read
    as the explorer reads a group of them (figures_of in id order, magnitudes_of)."""
    out = {name: array(code) for name, code in FIGURE_COLUMNS}
    for k in range(len(cols['use_run'])):
        for side in ('use', 'out'):
            ids = _ids_of(cols.__getitem__, side, k)
            if ids:
                ds, gs = array('d', map(trace.data.__getitem__, ids)), array('d', map(trace.grad.__getitem__, ids))
                fig = figures_of(ids, ds, gs, ordered=True)
                values = (*(getattr(fig, f) for f in FIGURE_FIELDS[:5]), *magnitudes_of(fig, gs, ds), fig.grad_peak)
            else:
                values = (*repeat(math.nan, len(FIGURE_FIELDS)), -1)
            for (name, _), x in zip((c for c in FIGURE_COLUMNS if c[0].startswith(side)), values):
                out[name].append(x)
    return out


def with_uses(trace, progress=None):
    """{name: column} of every index of `trace` (Trace.indexes), its use records and their figures built if it
    lacks them (`progress(done, total)` per matrix; a file's records without figures: the figures) and attached
    in one assignment of a new dict: a view reading the trace meanwhile (another thread: the explorer stores a
    step in the background) sees them all or none (held, stored_uses, fold.use_bundles read trace._index afresh
    at each look-up; it only grows)."""
    index = trace.build_indexes()
    if 'use_ptr' not in index:
        records = use_records(trace, progress)
        trace._index = {**trace._index, **records, **use_figures(trace, records)}
    elif FIGURE_COLUMNS[0][0] not in index:     # a file's records written before their figures: those only
        trace._index = {**trace._index, **use_figures(trace, index)}
    return dict(trace._index)


def _edges(trace, ids):
    """The edge indexes of the nodes `ids` (id order, each one's edges in order) and each edge's parent."""
    edges, counts = edges_of(trace, ids)
    return edges, repeats(ids, counts)


def _rows(out, side, ids, widths, patterns):
    """Append the ids `ids` (sorted) as rows (periodic) to the columns of `side` ('use', 'out')."""
    n, first, period, offsets = periodic(ids, (*widths, len(ids)) if len(ids) <= MAX_ROW else widths)
    if offsets is not None and offsets not in patterns:
        patterns[offsets] = len(patterns)
        out['pattern'].extend(offsets)
        out['pattern_ptr'].append(len(out['pattern']))
    for f, x in zip(('n', 'first', 'period', 'pattern'), (n, first, period, patterns.get(offsets, -1))):
        out[f'{side}_{f}'].append(x)


def _record(trace, out, marked, r, us, rows):
    """Append the record of the uses `us` (sorted), all in run r (every use of the matrix in it); `marked`:
    (each node's mark, the scope of all the matrix's cells or None); `rows`: (the matrix's (cols, rows),
    the patterns so far) for _rows."""
    child, local, grad, scope = trace.child, trace.local, trace.grad, trace.scope
    mark, cells = marked
    pptr, parent, _ = trace.parents_index()
    out['use_run'].append(r)
    _rows(out, 'use', us, *rows)
    # the uses' children: outside the interior, the inputs; per scope outside the uses, an edge count
    cs = list(map(child.__getitem__, edges_of(trace, us)[0]))
    marks = bytes(map(mark.__getitem__, cs))
    out['use_kids'].extend(sorted(set(compress(cs, marks.translate(_OUTSIDE)))))
    out['use_kid_ptr'].append(len(out['use_kids']))
    if cells is None:
        counts = Counter(map(scope.__getitem__, compress(cs, marks.translate(_NOT_USE))))
    else:       # the cells' edges counted in C, not looked up one by one
        counts = Counter(map(scope.__getitem__, compress(cs, marks.translate(_OUTSIDE))))
        counts[cells] += marks.count(_CELL)
        counts = +counts        # none: not a scope read
    for sid in sorted(counts):
        out['use_scopes'].append(sid)
        out['use_scope_n'].append(counts[sid])
    out['use_scope_ptr'].append(len(out['use_scopes']))
    # the uses' parents outside the interior, and their edges into it (the uses), in edge order
    ps = list(map(parent.__getitem__, spans(pptr, us)[0]))
    outs = sorted(set(compress(ps, bytes(map(mark.__getitem__, ps)).translate(_OUTSIDE))))
    _rows(out, 'out', outs, *rows)
    edges, owners = _edges(trace, outs)
    ks = list(map(child.__getitem__, edges))
    kmarks = bytes(map(mark.__getitem__, ks))
    kept = kmarks.translate(_INSIDE)
    edges, owners, ks = list(compress(edges, kept)), list(compress(owners, kept)), list(compress(ks, kept))
    # their children all this run's uses: uses (marked so), in run r's ids (no other run's uses)
    starts = trace.index('run_start')
    inside = bytes(compress(kmarks, kept)).count(_USE) == len(ks) and (
        not ks or (starts[r] <= min(ks) and max(ks) < starts[r + 1]))
    ls = list(map(local.__getitem__, edges))
    gs = trace.edge_contribs(edges, map(grad.__getitem__, owners), ls)    # as the fold reads them (a diff's: its own)
    if len(set(ks)) == len(ks):       # each child read once (a use by its sum's add): 0.0 + its part
        per_child = dict(zip(ks, map(add, repeat(0.0), gs)))
    else:
        per_child = {}
        for c, g in zip(ks, gs):
            per_child[c] = per_child.get(c, 0.0) + g
    values = list(per_child.values())
    out['out_edges'].append(len(edges))
    out['out_local'].append(reduce(add, ls, 0.0))
    out['out_contrib'].append(reduce(add, gs, 0.0))
    out['out_norm'].append(math.sqrt(fsum(map(mul, values, values))))
    out['out_kids'].append(len(per_child))
    out['out_inside'].append(int(inside))


def held(trace):
    """Whether `trace` holds use records: never built on first use (7 s at 5 M nodes, more than walking a
    view's edges), only by Trace.indexes() (saving), or read from a file that stores them."""
    return 'use_ptr' in trace._index


def stored_uses(trace, name):
    """(uses, inputs, outputs) of matrix `name`'s view, sorted lists, from its use records: the uses and
    their boundary (outputs that are also inputs left out), as select walks the edges for them. None when
    the trace holds no use records (a file written before them: the view walks the edges, as before) or
    some of the matrix's uses or outputs are not rows of a pattern."""
    if not held(trace):
        return None
    col = trace.index
    m = trace.param_names.index(name)
    ks = range(col('use_ptr')[m], col('use_ptr')[m + 1])
    sides = []
    for side in ('use', 'out'):
        rows = [record_ids(trace, side, k) for k in ks]
        if any(r is None for r in rows):
            return None
        ids = list(chain.from_iterable(rows))
        sides.append(ids if all(map(lt, ids, islice(ids, 1, None))) else sorted(set(ids)))
    kptr, kids = col('use_kid_ptr'), col('use_kids')
    inputs = sorted(set(chain.from_iterable(kids[kptr[k]:kptr[k + 1]] for k in ks)))
    uses, outputs = sides
    if inputs and any(map(holds, repeat(outputs), inputs)):     # a few hundred inputs looked up, not a set of outputs
        outputs = sorted(set(outputs).difference(inputs))
    return uses, inputs, outputs


def record_ids(trace, side, k):
    """The ids of record k's uses (side 'use') or outputs ('out'), a list (not to be changed); None when they are
    not rows. Made once while `remembered`: a view reads one matrix's records 3-4 times (its selection, its fold's
    and its drawing's checks that a group is exactly a record's), compared then in C by identity of their ints."""
    rows = trace._cache.get('use_rows')
    if rows is None:
        return _ids_of(trace.index, side, k)
    got = rows.get((side, k))
    if got is None:
        got = rows[side, k] = _ids_of(trace.index, side, k)
    return got


@contextmanager
def remembered(trace):
    """Within, record_ids keeps the ids it makes; after, they are forgotten (a matrix's 400,000 uses and outputs
    are not kept at rest). Nested: the outermost forgets."""
    own = 'use_rows' not in trace._cache
    if own:
        trace._cache['use_rows'] = {}
    try:
        yield
    finally:
        if own:
            trace._cache.pop('use_rows', None)


def record_of(trace, ids):
    """(side, k): a use record whose uses (side 'use') or outputs ('out') are exactly the sorted ids `ids`
    (checked id for id), else None; the records found by their first id (a dict made once per trace)."""
    if not ids or not held(trace):
        return None
    col = trace.index
    firsts = trace._cache.get('use_firsts')
    if firsts is None:
        firsts = trace._cache['use_firsts'] = {
            (col(f'{side}_first')[k], col(f'{side}_n')[k]): (side, k)
            for side in ('out', 'use') for k in range(len(col('use_run'))) if col(f'{side}_pattern')[k] >= 0}
    got = firsts.get((ids[0], len(ids)))
    return got if got is not None and list(ids) == record_ids(trace, *got) else None


def has_figures(trace):
    """Whether `trace` holds the use records' figures (FIGURE_COLUMNS): a file may hold the records without them."""
    return FIGURE_COLUMNS[0][0] in trace._index


def record_figures(trace, side, k):
    """The stored Figures of record k's uses or outputs (`side`): a trace that has_figures."""
    col = trace.index
    return Figures(col(f'{side}_n')[k], *(col(f'{side}_fig_{f}')[k] for f in FIGURE_FIELDS[:5]), col(f'{side}_fig_peak')[k])


def record_magnitudes(trace, side, k):
    """The stored (largest |grad|, largest |grad x data|) of record k's uses or outputs: a trace that has_figures."""
    return tuple(trace.index(f'{side}_fig_{f}')[k] for f in FIGURE_FIELDS[5:])


def _ids_of(col, side, k):
    """record_ids of the columns `col` (a name -> column function)."""
    p = col(f'{side}_pattern')[k]
    if p < 0:
        return None if col(f'{side}_n')[k] else []
    ptr = col('pattern_ptr')
    return expand(col(f'{side}_n')[k], col(f'{side}_first')[k], col(f'{side}_period')[k],
                  tuple(col('pattern')[ptr[p]:ptr[p + 1]]))
