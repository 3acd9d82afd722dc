"""The explorer's update panel (/api/update): what Adam does to the parameters of a view, as
the page shows it: one page of rows, each matrix summed up, the health of each matrix, the
table as HTML (web/update_table.py, the tour's too) and where the moments come from, in words.
Api.update finds the trace and the moments (a comparison's trained run, a played run, a
checkpoint's saved state, else a fresh optimizer); this module makes the answer of them.
"""

from array import array
from bisect import bisect_left

from microgpt.errors import InputError
from microgpt.recording.names import param_name

from ...draw.style import full
from ...steps.update import (
    SORTS,
    adam_row,
    by_delta,
    delta_heatmap_of,
    every_cell,
    first_step_of,
    matrix_figures,
    params_per_node,
    positions,
)
from ...steps.update_health import health_html, health_of
from ..update_table import update_html
from .answers import ApiError, bad

MAX_UPDATE_ROWS = 400   # parameter rows of one update page (limit=; the count covers all)


def paging(own):
    """The update page asked for: matrix (None: every matrix), sort, offset, limit; bad -> 400."""
    sort = own.get('sort', 'id')
    if sort not in SORTS:
        raise ApiError(400, f"sort {sort!r} is not one of: {', '.join(SORTS)}")
    out = {'matrix': own.get('matrix') or None, 'sort': sort}
    for k, lo, hi, default in (('offset', 0, 10 ** 7, 0), ('limit', 1, MAX_UPDATE_ROWS, MAX_UPDATE_ROWS)):
        raw = own.get(k)
        if raw is None:
            out[k] = default
        elif raw.isascii() and raw.isdigit() and lo <= int(raw) <= hi:
            out[k] = int(raw)
        else:
            raise ApiError(400, f"{k} {raw!r} is not an integer in {lo}..{hi}")
    return out


def saved_moments(path, read):
    """The checkpoint's Adam state or None, as `read` gives it (Recordings.moments: session.optimizer_state,
    kept); a bad checkpoint: 400."""
    try:
        return read(path)
    except InputError as e:
        raise bad(e) from None


def source_words(upd, cmp, opt, finished, state):
    """Where the update's moments come from, in words (upd['source'])."""
    if cmp is None and state['train'] is not None:
        upd['source'] = (f"the played run's optimizer after {opt['step']} of {opt['num_steps']} steps "
                         f"(the update of step {opt['step'] + 1})")
    elif cmp is None and opt is not None:
        upd['source'] = (f"the checkpoint's optimizer state after {opt['step']} of {opt['num_steps']} steps "
                         f"(the update of step {opt['step'] + 1})")
    elif finished is not None:
        upd['source'] = (f"fresh optimizer (m = v = 0), step 1: the checkpoint's run finished its "
                         f"{finished['num_steps']}-step schedule, so it has no next update")
    elif cmp is not None and opt is not None:
        upd['source'] = f"the trained run's optimizer after {opt['step']} steps (step {opt['step'] + 1})"
    elif cmp is not None:
        upd['source'] = 'fresh optimizer (m = v = 0), step 1: a checkpoint stores no optimizer state'
    elif state.get('ckpt'):
        upd['source'] += ' (this checkpoint stores no optimizer state)'


def update_answer(trace, view, moments, state, pages):
    """The /api/update answer of `view`'s parameters on `trace`'s grads. `moments`: (the
    comparison or None, the optimizer state or None, num_steps, a finished checkpoint's state
    or None), as Api._moments finds them; `pages`: paging()'s. Adam's step on every cell is a
    figure of the step (update.every_cell: once, kept with the trace); a view reads its cells'
    columns, and makes rows for its page only (a token view of a 4 x 64 step: 198,464 cells)."""
    cmp, opt, num_steps, finished = moments
    per_node = params_per_node(view)
    ids = sorted({i for cells in per_node.values() for i in cells})
    try:    # every cell: the health's figures are whole matrices'
        every = every_cell(trace, opt, num_steps)
    except InputError as e:
        raise bad(e) from None
    spans = _spans(trace, ids)
    touched = list(spans)
    at = positions(every, ids)
    ds, gs = _columns(trace, every, ids, at, spans)
    heat = delta_heatmap_of(trace, view, lambda: dict(zip(ids, ds)))      # a matrix view: Δvalue as its heat-map
    if pages['matrix'] is not None and pages['matrix'] not in trace.param_shapes:
        raise ApiError(400, f"matrix {pages['matrix']!r} is not a parameter matrix of this model; "
                            f"matrices: {', '.join(trace.param_names)}")
    mags = list(map(abs, ds))       # max(rows, key=|delta|)'s: max keeps the first of equals, index finds it
    largest = param_name(trace, *trace.param_cell(ids[mags.index(max(mags))])) if mags else None
    matrices = [matrix_figures(trace, m, ids[a:b], ds[a:b], gs[a:b]) for m, (a, b) in spans.items()]
    a, b = (0, len(ids)) if pages['matrix'] is None else spans.get(pages['matrix'], (0, 0))    # one matrix's rows
    order = range(a, b) if pages['sort'] == 'id' else by_delta(range(a, b), ds)
    page = [adam_row(trace, every, at[j]) for j in order[pages['offset']:pages['offset'] + pages['limit']]]
    matched = b - a
    upd = {k: every[k] for k in ('step', 'num_steps', 'lr', 'lr_t', 'beta1', 'beta2', 'eps', 'source')}
    recording = 'after' if cmp is not None else 'this recording'
    source_words(upd, cmp, opt, finished, state)
    first = first_step_of(upd['step'], upd['lr_t'], *((None, None) if opt is None else
                                                      (map(opt['m'].__getitem__, ids), map(opt['v'].__getitem__, ids))),
                          gs, ds)
    html = update_html(upd, page, matrices, count=len(ids), matched=matched, paging=pages, recording=recording,
                       first=first)
    try:
        html += health_html(_health(trace, every, touched))
    except InputError as e:
        raise bad(e) from None
    for m in matrices:
        for k in ('norm_delta', 'max_delta', 'largest_delta', 'norm_grad'):
            m[k] = full(m[k])
    for r in page:
        for k in ('grad', 'm_prev', 'v_prev', 'm', 'v', 'm_hat', 'v_hat', 'data', 'new', 'delta', 'step_size'):
            r[k] = full(r[k])
    upd.update(rows=page, count=len(ids), matched=matched, matrices=matrices, lr_t=full(upd['lr_t']),
               **{k: pages[k] for k in ('matrix', 'sort', 'offset', 'limit')}, largest=largest,
               nodes={k: len(v) for k, v in per_node.items() if v}, recording=recording, html=html, heat=heat)
    return upd


def _spans(trace, ids):
    """{matrix: (a, b)} of the matrices holding some of the sorted `ids`, in the model's order: ids[a:b] are its
    cells (a matrix's cells are consecutive ids: a bisection a matrix, not one an id)."""
    out = {}
    for m in trace.param_names:
        a, b = _cells(trace, m)
        span = bisect_left(ids, a), bisect_left(ids, b)
        if span[0] < span[1]:
            out[m] = span
    return out


def _cells(trace, m):
    """(its first id, the id after its last) of matrix m."""
    rows, cols = trace.param_shapes[m]
    return trace.param_base[m], trace.param_base[m] + rows * cols


def _columns(trace, every, ids, at, spans):
    """(deltas, grads) of the cells `ids` (at `at` in every_cell's columns), in id order: a matrix wholly in
    view (a token view holds them all) as slices of the columns, the others cell by cell."""
    delta, grad = every['cols']['delta'], trace.grad
    ds, gs = array('d'), array('d')
    for m, (a, b) in sorted(spans.items(), key=lambda kv: kv[1]):     # in id order, as `ids`
        first, end = _cells(trace, m)
        if b - a == end - first:
            ds.extend(delta[at[a]:at[a] + b - a])
            gs.extend(grad[first:end])
        else:
            ds.extend(map(delta.__getitem__, at[a:b]))
            gs.extend(map(grad.__getitem__, ids[a:b]))
    return ds, gs


def _health(trace, every, touched):
    """health_of the whole matrices `touched`, from every_cell's columns: kept with them (a figure of the step)."""
    kept = every.setdefault('health', {})
    key = tuple(touched)
    if key not in kept:
        delta = every['cols']['delta']
        parts = {}
        for m in touched:
            first, end = _cells(trace, m)
            p = positions(every, [first])[0]
            parts[m] = (trace.data[first:end], trace.grad[first:end], delta[p:p + end - first])
        kept[key] = health_of(trace, parts)
    return kept[key]
