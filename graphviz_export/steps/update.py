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
from bisect import bisect_right

from microgpt.errors import InputError
from microgpt.files import json_safe
from microgpt.recording import NUM_STEPS
from microgpt.recording.adam import REFERENCE, adam_cell, learning_rate
from microgpt.recording.names import param_name
from microgpt.recording.sums import fsum

from ..draw.heatmap import grad_line, grad_rows
from ..draw.ids import node_id
from ..draw.labels import words
from ..draw.style import fmt, heat_fill
from ..fold.summary import magnitude


class UpdateError(InputError):
    """An optimizer state or step that does not fit the trace."""


def adam_update(trace, ids, *, state=None, step=None, num_steps=NUM_STEPS, config=REFERENCE):
    """{'step', 'num_steps', 'lr_t', 'source', 'rows': [...]}: one row per parameter id in `ids`.

    `step`: the 0-based index of the step being taken (default: state['step'] if a
    state is given, else 0). Row fields: id, name, grad, m_prev, v_prev, m, v,
    m_hat, v_hat, data, new, delta (new - data), step_size (what is subtracted).
    """
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
    lr_t = learning_rate(step, num_steps, config)
    rows = []
    for i in ids:
        cell = trace.param_cell(i)
        if cell is None:
            raise UpdateError(f"node {i} is not a parameter; the update applies to parameters only")
        g, data = trace.grad[i], trace.data[i]
        m0 = state['m'][i] if state is not None else 0.0
        v0 = state['v'][i] if state is not None else 0.0
        m, v, m_hat, v_hat, size, new = adam_cell(g, m0, v0, data, step, lr_t, config)
        # Trace.name of a cell (recording.names: a parameter's name is param_name's), without a memo entry
        # a cell: 200,000 cells in a token view's panel at 4 x 64
        rows.append({'id': i, 'name': param_name(trace, *cell), 'matrix': cell[0],
                     'grad': g, 'm_prev': m0, 'v_prev': v0, 'm': m, 'v': v, 'm_hat': m_hat, 'v_hat': v_hat,
                     'data': data, 'new': new,
                     'delta': new - data, 'step_size': size})
    return {'step': step, 'num_steps': num_steps, 'lr': config.lr, 'lr_t': lr_t,
            'beta1': config.beta1, 'beta2': config.beta2, 'eps': config.eps,
            'source': 'optimizer state' if state is not None else 'fresh optimizer (m = v = 0), step 1',
            'rows': rows}


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
    out = []
    for name in trace.param_names:
        rs = by.get(name)
        if not rs:
            continue
        top = max(rs, key=lambda r: magnitude(r['delta']))
        rows_, cols = trace.param_shapes[name]
        out.append({'name': name, 'shape': [rows_, cols], 'cells': len(rs), 'size': rows_ * cols,
                    'norm_delta': math.sqrt(fsum(r['delta'] * r['delta'] for r in rs)),
                    'max_delta': abs(top['delta']), 'largest': top['name'], 'largest_delta': top['delta'],
                    'norm_grad': math.sqrt(fsum(r['grad'] * r['grad'] for r in rs))})
    return out


SORTS = ('id', 'delta')     # row order: parameter id (matrix, row, column) or largest |delta| first


def page_rows(rows, *, matrix=None, sort='id', offset=0, limit=100):
    """(the rows of one page, how many rows match): rows of `matrix` (None: all), in `sort` order."""
    if sort not in SORTS:
        raise UpdateError(f"sort {sort!r} is not one of: {', '.join(SORTS)}")
    got = [r for r in rows if matrix is None or r['matrix'] == matrix]
    if sort == 'delta':
        got = sorted(got, key=lambda r: -magnitude(r['delta']))     # stable: equal changes keep id order; nan first
    return got[offset:offset + limit], len(got)


def first_step(upd):
    """The first step's lesson, with this update's own figures, or None when the moments are not
    a fresh optimizer's (m = v = 0 before step 1): then m̂ = grad and v̂ = grad², so m̂/√v̂ = ±1
    and every cell whose grad is not 0 moves by lr_t against its grad's sign; ε shaves
    lr_t·ε/(|grad| + ε) off that, and a grad of 0 moves nothing.
    {'moved', 'still', 'lr_t', 'off'}: cells that move, cells that do not, the rate, and the
    largest |lr_t - |Δvalue|| among those that move."""
    rows = upd['rows']
    if upd['step'] != 0 or any(r['m_prev'] != 0 or r['v_prev'] != 0 for r in rows):
        return None
    moved = [r for r in rows if r['grad'] != 0]
    off = max((abs(upd['lr_t'] - abs(r['delta'])) for r in moved), default=0.0)
    return {'moved': len(moved), 'still': len(rows) - len(moved), 'lr_t': upd['lr_t'], 'off': off}


def delta_heatmap(trace, view, rows):
    """A matrix view's heat-map in the update phase: its grad column repainted with Δvalue, on
    the same colour scale as the grads (style.heat_fill: sign, and |Δ| as a share of the
    largest). {'rows': {svg id of a grad row: [fill per column]}, 'line': [its grad line as
    drawn, the line in the update phase]}; None when the view has no heat-map."""
    name = view.selection.matrix
    node = next((n for n in view.folded.nodes if n.kind == 'matrix'), None)
    if name is None or node is None:
        return None
    delta = {r['id']: r['delta'] for r in rows}
    base = trace.param_base[name]
    n_rows, cols = trace.param_shapes[name]
    values = [delta.get(base + k, 0.0) for k in range(n_rows * cols)]
    top = max((abs(x) for x in values), default=0.0)
    out = {node_id(dot): [heat_fill(x, top) for x in values[r * cols:(r + 1) * cols]]
           for r, dot in enumerate(grad_rows(trace, node, name))}
    gmax = max((abs(trace.grad[base + k]) for k in range(n_rows * cols)), default=0.0)
    return {'rows': out, 'max': json_safe(top),
            'line': [grad_line(words(trace)[1], fmt(gmax)), f'right: \u0394value, Adam\'s step (max |\u0394| {fmt(top)})']}
