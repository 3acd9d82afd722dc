"""One view of the explorer drawn: folded, drawn and laid out (build_view, render_view: the one
folding implementation), or refused with a 422 that says how many nodes it would have and what
to do instead. Api keeps what this draws in its cache (cache.py) and runs it as a job (work.py).
"""

import time

import graphviz_export.render as _render
import graphviz_export.web.explorer.fallback as fallback
from microgpt.errors import InputError

from ...fold import expanded_ids, node_floor
from ...select import select
from ...view import Oversize, build_view, render_view
from .answers import ApiError, bad

SELECT_KEYS = ('token', 'layer', 'head', 'param', 'node', 'depth', 'direction', 'function', 'line', 'document')


def suggest(state):
    """What to do about a view too big to draw, in the page's words."""
    if state['expand']:
        return ("expand one head or one role at a time (e.g. open the head first), "
                "or raise the number in the budget box")
    if state['level'] == 'scalar':
        return "choose vector or block in the level menu, or raise the number in the budget box"
    return "choose block in the level menu, a single position, or raise the number in the budget box"


KEEP_IDS = 1_000_000     # a Selection this big or smaller is kept for the next view (~35 MB at most)


class Selections:
    """The last Selection drawn, kept for the next view of the same query and trace (an expand click, a
    level, the fallback's tries): a token's 620,000 ids at 4 x 64 selected once, not per view (50-150 ms
    at 5 M nodes), with what was found on it once (fold.expand's scopes per selection, summary.interior_of).
    One only, and only up to KEEP_IDS ids: a document's 5 M would hold 200 MB; replaced by the next view's,
    so a trace the recordings let go is held until then at most."""

    def __init__(self):
        self._last = None       # (trace, query, Selection)

    def get(self, trace, kwargs):
        """The Selection of build_view `kwargs` (their select() arguments)."""
        query = tuple((k, kwargs[k]) for k in SELECT_KEYS if k in kwargs)
        last = self._last
        if last is not None and last[0] is trace and last[1] == query:
            return last[2]
        self._last = None
        sel = select(trace, **dict(query))
        if len(sel.nodes) + len(sel.inputs) + len(sel.outputs) <= KEEP_IDS:
            self._last = (trace, query, sel)
        return sel


def refuse_early(trace, kwargs, state, selections=None):
    """The view's Selection, made only when it is needed here (else None: build_view selects);
    422 before folding when fold's cheap lower bound (node_floor) is already over what the
    explorer lays out in time (fallback.ceiling: a view over the budget but not over that draws).
    An expanded scope is drawn scalar by scalar at every level, so with `expand` the bound of the
    coarsest level (block) holds for auto too: expand=* on a document's token was 15,383 nodes,
    folded and drawn for 20-30 s before being refused."""
    level = kwargs['level']
    if level in ('auto', 'block') and not kwargs['expand']:
        return None     # auto picks a level that fits; block is the coarsest there is
    sel = (selections or Selections()).get(trace, kwargs)
    floor = node_floor(trace, sel, 'block' if level == 'auto' else level,
                       expanded_ids(trace, sel, list(kwargs['expand'])))
    if floor > fallback.ceiling(state)[0]:
        raise ApiError(422, f"this view has at least {floor} nodes, over the budget of {kwargs['budget']} "
                            f"nodes (refused before drawing it); {suggest(state)}",
                       nodes=floor, edges=None, budget=kwargs['budget'], ebudget=kwargs['edge_budget'])
    return sel


def drawn(trace, kwargs, state, job, selections=None, *, renderer, timeout):
    """(view, SVG text, {'build', 'render'} ms) of a view state's build_view `kwargs`; ApiError
    422 when it is over what lays out in time or its layout does not finish, 500 when the
    renderer fails. `job` (work.py) says which phase it is in; `selections`: the Selections kept
    from the view before (else selected anew)."""
    job.at('folding')
    t0 = time.perf_counter()
    most_nodes, most_edges = fallback.ceiling(state)
    try:
        # the selection made for the early refusal is the view's (a token's 400,000 ids: once)
        # a heat-map's rows as boxes the page paints (its cells in view.heatmaps: heat.js)
        sel = refuse_early(trace, kwargs, state, selections)
        if sel is None and selections is not None:
            sel = selections.get(trace, kwargs)
        view = build_view(trace, **kwargs, selection=sel, paint_heatmaps=True, ceiling=(most_nodes, most_edges))
        s = view.stats
    except InputError as e:
        raise bad(e) from None
    except Oversize as e:       # folded, not drawn
        s = e.stats
    if s['nodes'] > most_nodes or s['edges'] > most_edges:
        raise ApiError(422, f"this view has {s['nodes']} nodes and {s['edges']} edges, over the budget "
                       f"of {s['budget']} nodes and {s['edge_budget']} edges; {suggest(state)}",
                       nodes=s['nodes'], edges=s['edges'], budget=s['budget'], ebudget=s['edge_budget'])
    t1 = time.perf_counter()
    job.at(f"layout of {s['nodes']} nodes")
    try:
        svg = render_view(view, 'svg', timeout=timeout, renderer=renderer)
    except _render.LayoutTimeout as e:
        raise ApiError(422, f"layout did not finish: {e}") from None
    except _render.RenderError as e:
        raise ApiError(500, f"render failed: {e}") from None
    t2 = time.perf_counter()
    # its groups carry the ids a frame lights (draw/ids.py)
    return view, svg.decode('utf-8'), {'build': round(1000 * (t1 - t0), 1), 'render': round(1000 * (t2 - t1), 1)}
