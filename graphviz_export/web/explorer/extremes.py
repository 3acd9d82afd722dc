"""Search for the extremes: `max:grad`, `max:contrib`, `max:dw`, each row a view that shows one.

    extreme_rows(trace, 'max:grad')              # the largest |grad| (every node, constants too)
    extreme_rows(trace, 'max:contrib')           # the largest |contribution| one use passed down
    extreme_rows(trace, 'max:dw', rows=update)   # the largest |Δw| of Adam's step (the update panel's)

The figures are microgpt.recording.extremes'; here each becomes a search row (search.py's
shape): its name and figure, the view that shows it (the node's neighbourhood, a parameter's
cell) with it selected, and a search (hl) that outlines it there.
"""

from microgpt.recording.extremes import largest_changes, largest_contribs, largest_grads

from .state import StateError

EXTREMES = {'max:grad': 'the largest |grad|, every node (constants too)',
            'max:contrib': 'the largest |contribution| one use passed down (local × grad of the user)',
            'max:dw': "the largest |Δw| of Adam's step (the update panel's)"}
TOP = 20            # rows listed


class ExtremeError(StateError):
    """An extremes query that cannot be answered here (the message says what can)."""


def _view_of(trace, i):
    """The view that shows node i, i selected: a parameter's cell, else its neighbourhood."""
    cell = trace.param_cell(i)
    if cell is not None:
        return {'view': 'param', 'param': f'{cell[0]}[{cell[1]}][{cell[2]}]', 'level': 'auto', 'sel': i}
    return {'view': 'node', 'node': i, 'depth': 2, 'level': 'auto', 'sel': i}


def extreme_rows(trace, q, rows=None, k=TOP):
    """(node ids, [search row]) of an extremes query; ExtremeError for another max: word, or
    max:dw without the update's rows."""
    if q == 'max:grad':
        top = largest_grads(trace, k)
        return [i for i, _ in top], [
            {'path': trace.scope_path(i), 'label': f'{trace.name(i)} · grad {g:.6g}', 'count': 1, 'hl': str(i),
             'to': _view_of(trace, i), 'value': g} for i, g in top]
    if q == 'max:contrib':
        top = largest_contribs(trace, k)
        return [c for _, c, _, _ in top], [
            {'path': trace.scope_path(c),
             'label': f'{trace.name(u)} → {trace.name(c)}: contribution {x:.6g} '
                      f'(local {trace.local[e]:.4g} × grad {trace.grad[u]:.4g})',
             'count': 1, 'hl': str(c), 'to': _view_of(trace, c), 'value': x} for u, c, e, x in top]
    if q == 'max:dw':
        if rows is None:
            raise ExtremeError("max:dw needs Adam's update of this recording; search it in the explorer")
        top = largest_changes(rows, k)
        return [r['id'] for r in top], [
            {'path': r['name'], 'label': f"Δw {r['delta']:.6g} · grad {r['grad']:.4g} · value {r['data']:.4g}",
             'count': 1, 'hl': str(r['id']), 'to': _view_of(trace, r['id']), 'value': r['delta']} for r in top]
    raise ExtremeError(f"cannot read {q[:40]!r}: the extremes are {', '.join(EXTREMES)}")
