"""The update: what Adam does to the parameters in view, after backward.

For each parameter cell: its grad (from the trace), the moments before and
after (m, v), their bias-corrected values (m_hat, v_hat), the step's learning
rate lr_t and the change in the value, computed with exactly the reference's
expressions in the reference's order (microgpt.recording.adam, which reads them
from microgpt/optim.py), so the numbers equal what `Adam.step` does to the same
parameter on the same step, bit for bit.

Where the moments come from: an optimizer state {'step': k, 'm': [...], 'v':
[...]} (indexed like the trace's parameter ids: matrix, row, column, the
reference's flat order) when the caller has one; otherwise a fresh optimizer
(m = v = 0) taking its first step (step index 0, "step 1"). The default
learning-rate schedule is the reference's: lr_t = lr * (1 - step / num_steps)
with its num_steps (microgpt.train.NUM_STEPS, 1000).
"""

import math
from array import array
from bisect import bisect_left, bisect_right
from functools import partial
from itertools import compress, repeat
from operator import itemgetter, mul, ne, sub

from microgpt.errors import InputError
from microgpt.files import json_safe
from microgpt.recording import NUM_STEPS
from microgpt.recording.adam import REFERENCE, adam_cell, learning_rate
from microgpt.recording.extremes import largest
from microgpt.recording.names import param_name
from microgpt.recording.ops import OP_CODE
from microgpt.recording.sums import fsum

from ..draw.heatmap import grad_line, grad_rows
from ..draw.ids import node_id
from ..draw.labels import words
from ..draw.style import fmt, heat_fill
from ..fold.summary import magnitude

_PARAM = OP_CODE['param']


class UpdateError(InputError):
    """An optimizer state or step that does not fit the trace."""


COLUMNS = ('m', 'v', 'm_hat', 'v_hat', 'step_size', 'new', 'delta')    # adam_columns' own (the rest are read)


def adam_update(trace, ids, *, state=None, step=None, num_steps=NUM_STEPS, config=REFERENCE):
    """{'step', 'num_steps', 'lr_t', 'source', 'rows': [...]}: one row per parameter id in `ids`.

    `step`: the 0-based index of the step being taken (default: state['step'] if a
    state is given, else 0). Row fields: id, name, grad, m_prev, v_prev, m, v,
    m_hat, v_hat, data, new, delta (new - data), step_size (what is subtracted).
    """
    upd = adam_columns(trace, ids, state=state, step=step, num_steps=num_steps, config=config)
    upd['rows'] = [adam_row(trace, upd, k) for k in range(len(upd['ids']))]
    del upd['ids'], upd['cols'], upd['state']
    return upd


def adam_columns(trace, ids, *, state=None, step=None, num_steps=NUM_STEPS, config=REFERENCE):
    """adam_update's answer as columns: its fields but 'rows', and 'ids' (`ids`, a list), 'state' (the
    moments before, or None) and 'cols' {field of COLUMNS: array('d'), in the order of ids}: Adam stepped
    once a cell (adam_cell); a row made of them (adam_row) only where one is shown."""
    n_params = sum(r * c for r, c in trace.param_shapes.values())
    if state is not None:
        for key in ('m', 'v'):
            if len(state.get(key, ())) != n_params:
                raise UpdateError(f"optimizer state {key!r} has {len(state.get(key, ()))} entries; "
                                  f"this model has {n_params} parameters")
        if step is None:
            step = state.get('step', 0)
    if step is None:
        step = 0
    if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step < num_steps:
        raise UpdateError(f"step must be an integer in 0..{num_steps - 1}, got {step!r}")
    ids = list(ids)
    op = trace.op
    if any(map(ne, map(op.__getitem__, ids), repeat(_PARAM))):      # in C: 200,000 cells in a token view
        i = next(i for i in ids if op[i] != _PARAM)
        raise UpdateError(f"node {i} is not a parameter; the update applies to parameters only")
    lr_t = learning_rate(step, num_steps, config)
    ms, vs = (repeat(0.0), repeat(0.0)) if state is None else (map(state['m'].__getitem__, ids),
                                                                  map(state['v'].__getitem__, ids))
    data = array('d', map(trace.data.__getitem__, ids))
    # one adam_cell a cell, called from C (no loop of ours); its results (m, v, m_hat, v_hat, size, new) as columns
    got = zip(*map(adam_cell, map(trace.grad.__getitem__, ids), ms, vs, data, repeat(step), repeat(lr_t),
                   repeat(config)))
    cols = {k: array('d', c) for k, c in zip(COLUMNS, got)} if ids else {k: array('d') for k in COLUMNS}
    cols['delta'] = array('d', map(sub, cols['new'], data))        # new - data, as a row's
    return {'step': step, 'num_steps': num_steps, 'lr': config.lr, 'lr_t': lr_t,
            'beta1': config.beta1, 'beta2': config.beta2, 'eps': config.eps,
            'source': 'optimizer state' if state is not None else 'fresh optimizer (m = v = 0), step 1',
            'ids': ids, 'state': state, 'cols': cols}


def adam_row(trace, upd, k):
    """Row k of adam_columns' answer `upd`: adam_update's row of its k-th id. Its name is Trace.name's of a
    cell (recording.names: param_name's), made without a memo entry (200,000 cells in a token view's panel)."""
    i, cols, state = upd['ids'][k], upd['cols'], upd['state']
    cell = trace.param_cell(i)
    return {'id': i, 'name': param_name(trace, *cell), 'matrix': cell[0],
            'grad': trace.grad[i], 'm_prev': 0.0 if state is None else state['m'][i],
            'v_prev': 0.0 if state is None else state['v'][i], 'm': cols['m'][k], 'v': cols['v'][k],
            'm_hat': cols['m_hat'][k], 'v_hat': cols['v_hat'][k], 'data': trace.data[i], 'new': cols['new'][k],
            'delta': cols['delta'][k], 'step_size': cols['step_size'][k]}


def stepped(trace, state=None, num_steps=NUM_STEPS):
    """Whether every_cell keeps the trace's cells stepped for moments `state` (that object) and `num_steps`."""
    kept = trace._cache.get('adam_every')
    return kept is not None and kept[0] is state and kept[1] == num_steps


def every_cell(trace, state=None, num_steps=NUM_STEPS):
    """adam_columns of every parameter cell of `trace` in id order, for the moments `state` (None: a fresh
    optimizer's): a figure of the step, not of a view, so kept with the trace for the last `state` asked
    (that very object: the explorer's are read once and never changed; a played run's are a new copy at
    each step) -- the panel of a 4 x 64 step reads 201,088 cells at each view (1.5 s), and search max:dw."""
    if stepped(trace, state, num_steps):
        return trace._cache['adam_every'][2]
    ids = sorted(i for m in trace.param_names for i in trace.param_nodes(m))
    upd = adam_columns(trace, ids, state=state, num_steps=num_steps)
    trace._cache['adam_every'] = (state, num_steps, upd)
    return upd


def params_in_view(view):
    """Ids of the parameter cells a view shows (its focus cell, a matrix, parameter groups)."""
    out = set()
    for ids in params_per_node(view).values():
        out.update(ids)
    return sorted(out)


def params_per_node(view):
    """{drawn node name: its parameter cells' ids, ascending} of every drawn node (not a reference): each
    run of its ids cut by the matrices' id ranges (Trace.param_nodes: a matrix's cells are consecutive ids),
    not a look-up per id (a token view holds 400,000 ids at 4 x 64, issue 25)."""
    trace = view.trace
    spans = sorted((trace.param_base[m], trace.param_base[m] + r * c) for m, (r, c) in trace.param_shapes.items())
    starts = [a for a, _ in spans]
    first, end = (spans[0][0], max(b for _, b in spans)) if spans else (0, 0)
    out = {}
    for n in view.folded.nodes:
        if n.kind == 'ref':
            continue
        got = []
        runs = n.runs
        if not runs or runs[0][0] >= end or runs[-1][1] <= first:
            runs = ()       # no cell among its ids (a matrix's 196,608 uses): not a bisection a run
        for a, b in runs:
            j = max(bisect_right(starts, a) - 1, 0)
            while j < len(spans) and spans[j][0] < b:
                lo, hi = max(a, spans[j][0]), min(b, spans[j][1])
                got.extend(range(lo, hi))
                j += 1
        out[n.name] = got
    return out


def matrices_of(trace, ids):
    """The names of the matrices holding parameter ids `ids`, in the model's order (trace.param_names)."""
    bases = sorted((trace.param_base[m], m) for m in trace.param_names)
    firsts = [b for b, _ in bases]
    held = {bases[bisect_right(firsts, i) - 1][1] for i in ids}
    return [m for m in trace.param_names if m in held]


def matrix_summary(trace, rows):
    """Per parameter matrix the rows touch, in the model's order: how much Adam moves it.

    {'name', 'shape', 'cells' (rows of this matrix), 'size' (cells in the matrix),
    'norm_delta' = sqrt(sum of delta^2) over its rows (in id order), 'max_delta' =
    the largest |delta|, 'largest' = that cell's name (the first of equals), 'norm_grad'
    = sqrt(sum of grad^2)}. A matrix's few large changes hide among thousands of rows;
    this is where the panel starts."""
    by = {}
    for r in rows:
        by.setdefault(r['matrix'], []).append(r)
    return [matrix_figures(trace, name, list(map(itemgetter('id'), rs)), list(map(itemgetter('delta'), rs)),
                           list(map(itemgetter('grad'), rs))) for name in trace.param_names if (rs := by.get(name))]


def matrix_figures(trace, name, ids, ds, gs):
    """matrix_summary's entry of matrix `name` whose rows in view are cells `ids` (in id order) with
    deltas `ds` and grads `gs` (sequences of floats: read as columns, in C)."""
    k = largest_at(ds)
    rows_, cols = trace.param_shapes[name]
    return {'name': name, 'shape': [rows_, cols], 'cells': len(ds), 'size': rows_ * cols,
            'norm_delta': math.sqrt(fsum(list(map(mul, ds, ds)))), 'max_delta': abs(ds[k]),
            'largest': param_name(trace, *trace.param_cell(ids[k])), 'largest_delta': ds[k],
            'norm_grad': math.sqrt(fsum(list(map(mul, gs, gs))))}


def largest_at(xs):
    """The index of the first of the largest magnitude(x) of the floats `xs` (NaN the largest): max(...,
    key=magnitude)'s, found in C (abs, max, index: max keeps the first of equals, index finds it;
    magnitude per value only when one is NaN)."""
    mags = list(map(magnitude if any(map(math.isnan, xs)) else abs, xs))
    return mags.index(max(mags))


SORTS = ('id', 'delta')     # row order: parameter id (matrix, row, column) or largest |delta| first


def page_rows(rows, *, matrix=None, sort='id', offset=0, limit=100):
    """(the rows of one page, how many rows match): rows of `matrix` (None: all), in `sort` order."""
    if sort not in SORTS:
        raise UpdateError(f"sort {sort!r} is not one of: {', '.join(SORTS)}")
    got = [r for r in rows if matrix is None or r['matrix'] == matrix]
    if sort == 'delta':
        got = [got[j] for j in by_delta(range(len(got)), list(map(itemgetter('delta'), got)))]
    return got[offset:offset + limit], len(got)


def by_delta(indexes, ds):
    """`indexes` into the deltas `ds`, largest |delta| first: stable (equal changes keep their order), NaN first."""
    return sorted(indexes, key=lambda j: -magnitude(ds[j]))


def positions(upd, ids):
    """array('q'): where each of `ids` (sorted, among upd's) is in adam_columns' answer `upd` of sorted ids (every_cell's)."""
    every = upd['ids']
    if every and every[-1] - every[0] + 1 == len(every):      # the cells are consecutive ids (the port's)
        return array('q', map(sub, ids, repeat(every[0])))
    return array('q', map(partial(bisect_left, every), ids))


def largest_changes_of(trace, upd, k):
    """adam_row of the k largest |delta| of adam_columns' answer `upd` of sorted ids (every_cell's), ties by id:
    what extremes.largest_changes finds among every row, without making every row (search max:dw)."""
    return [adam_row(trace, upd, j) for j in largest(upd['cols']['delta'], k)]


def first_step(upd):
    """The first step's lesson, with this update's own figures, or None when the moments are not
    a fresh optimizer's (m = v = 0 before step 1): then m̂ = grad and v̂ = grad², so m̂/√v̂ = ±1
    and every cell whose grad is not 0 moves by lr_t against its grad's sign; ε shaves
    lr_t·ε/(|grad| + ε) off that, and a grad of 0 moves nothing.
    {'moved', 'still', 'lr_t', 'off'}: cells that move, cells that do not, the rate, and the
    largest |lr_t - |Δvalue|| among those that move."""
    rows = upd['rows']
    return first_step_of(upd['step'], upd['lr_t'], *(list(map(itemgetter(k), rows))
                                                     for k in ('m_prev', 'v_prev', 'grad', 'delta')))


def first_step_of(step, lr_t, m0s, v0s, gs, ds):
    """first_step of the cells whose moments before are `m0s`, `v0s` (None: a fresh optimizer's), grads `gs`
    and deltas `ds` (floats in id order, read as columns in C)."""
    if step != 0 or m0s is not None and (any(map(ne, m0s, repeat(0))) or any(map(ne, v0s, repeat(0)))):
        return None
    moved = bytes(map(ne, gs, repeat(0)))
    off = max(map(abs, map(sub, repeat(lr_t), map(abs, compress(ds, moved)))), default=0.0)
    n = moved.count(1)
    return {'moved': n, 'still': len(moved) - n, 'lr_t': lr_t, 'off': off}


def delta_heatmap(trace, view, rows):
    """A matrix view's heat-map in the update phase: its grad column repainted with Δvalue, on
    the same colour scale as the grads (style.heat_fill: sign, and |Δ| as a share of the
    largest). {'rows': {svg id of a grad row: [fill per column]}, 'line': [its grad line as
    drawn, the line in the update phase]}; None when the view has no heat-map."""
    return delta_heatmap_of(trace, view, lambda: {r['id']: r['delta'] for r in rows})


def delta_heatmap_of(trace, view, deltas):
    """delta_heatmap of `deltas()`: {cell id: its delta} of the cells in view (made only for a heat-map)."""
    name = view.selection.matrix
    node = next((n for n in view.folded.nodes if n.kind == 'matrix'), None)
    if name is None or node is None:
        return None
    delta = deltas()
    base = trace.param_base[name]
    n_rows, cols = trace.param_shapes[name]
    values = [delta.get(base + k, 0.0) for k in range(n_rows * cols)]
    top = max((abs(x) for x in values), default=0.0)
    out = {node_id(dot): [heat_fill(x, top) for x in values[r * cols:(r + 1) * cols]]
           for r, dot in enumerate(grad_rows(trace, node, name))}
    gmax = max((abs(trace.grad[base + k]) for k in range(n_rows * cols)), default=0.0)
    return {'rows': out, 'max': json_safe(top),
            'line': [grad_line(words(trace)[1], fmt(gmax)), f'right: \u0394value, Adam\'s step (max |\u0394| {fmt(top)})']}
