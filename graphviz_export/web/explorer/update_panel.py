"""The explorer's update panel (/api/update): what Adam does to the parameters of a view, as
the page shows it: one page of rows, each matrix summed up, the health of each matrix, the
table as HTML (web/update_table.py, the tour's too) and where the moments come from, in words.
Api.update finds the trace and the moments (a comparison's trained run, a played run, a
checkpoint's saved state, else a fresh optimizer); this module makes the answer of them.
"""

from microgpt.errors import InputError

from ...draw.style import full
from ...steps.update import SORTS, adam_update, delta_heatmap, matrices_of, matrix_summary, page_rows, params_per_node
from ...steps.update_health import health_html, update_health
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
    or None), as Api._moments finds them; `pages`: paging()'s."""
    cmp, opt, num_steps, finished = moments
    per_node = params_per_node(view)
    ids = sorted({i for cells in per_node.values() for i in cells})
    touched = matrices_of(trace, ids)
    try:    # every cell of the matrices in view, once: the health's figures are whole matrices'
        upd = adam_update(trace, [i for m in touched for i in trace.param_nodes(m)], state=opt, num_steps=num_steps)
    except InputError as e:
        raise bad(e) from None
    every = upd['rows']
    of = {r['id']: r for r in every}
    rows = upd['rows'] = [of[i] for i in ids]      # the view's cells, in id order (adam_update's of `ids`)
    heat = delta_heatmap(trace, view, rows)      # a matrix view: Δvalue as its heat-map
    if pages['matrix'] is not None and pages['matrix'] not in trace.param_shapes:
        raise ApiError(400, f"matrix {pages['matrix']!r} is not a parameter matrix of this model; "
                            f"matrices: {', '.join(trace.param_names)}")
    largest = max(rows, key=lambda r: abs(r['delta']), default=None)
    matrices = matrix_summary(trace, rows)
    page, matched = page_rows(rows, **pages)
    recording = 'after' if cmp is not None else 'this recording'
    source_words(upd, cmp, opt, finished, state)
    html = update_html(upd, page, matrices, count=len(rows), matched=matched, paging=pages, recording=recording)
    try:
        html += health_html(update_health(trace, every))
    except InputError as e:
        raise bad(e) from None
    for m in matrices:
        for k in ('norm_delta', 'max_delta', 'largest_delta', 'norm_grad'):
            m[k] = full(m[k])
    page = [dict(r) for r in page]
    for r in page:
        for k in ('grad', 'm_prev', 'v_prev', 'm', 'v', 'm_hat', 'v_hat', 'data', 'new', 'delta', 'step_size'):
            r[k] = full(r[k])
    upd.update(rows=page, count=len(rows), matched=matched, matrices=matrices, lr_t=full(upd['lr_t']),
               **{k: pages[k] for k in ('matrix', 'sort', 'offset', 'limit')},
               largest=None if largest is None else largest['name'],
               nodes={k: len(v) for k, v in per_node.items() if v}, recording=recording, html=html, heat=heat)
    return upd
