"""Where the explorer goes when a view cannot be drawn as asked: never a refusal page, never a blank one.

Two cases, each ending on a view that draws, with a note that says what changed and names a
control that exists (the level menu, the budget box, the tabs):

- Too big (over the budget). A view over the budget is still drawn when its layout fits the
  time: up to LAYOUT_NODES nodes and LAYOUT_EDGES edges (or the budget, when the budget box asks
  for more). Beyond that, `smaller` lists the nearest views that are smaller, nearest first: the
  newest expansion opened in part (the scopes it matches, as many as fit, in the model's order)
  and the rest folded, then without it; then the next coarser level; then block level.
- Cannot be shown as written (a 400: a field that does not parse, a position, head or parameter
  the trace lacks, a pattern that matches nothing, a checkpoint not offered). `nearest` finds the
  closest state that draws: the fields that do not parse dropped, then one field at a time back
  at its default, then, until one draws, the expansions and the block opened, the selection,
  search and comparison, the view's own place (the token view of the last position) and last the
  recording (the server's own). The API still answers 400 with its one-line error, and adds
  `fallback` (that state's URL) and `note`.

The figures behind LAYOUT_NODES (python -m benchmarks.bench_lecture prints them; 2-core machine):
one head at one position at scalar level (175 nodes, 214 edges) lays out in 0.13 s native /
0.16 s WebAssembly; head 2's three roles opened at vector level (205, 264) 0.26 s; one head at
every position at scalar level (465, 650) 0.32 / 0.36 s; 6,409 nodes (an MLP opened to scalars)
take 10-26 s, 13,333 (a layer at one position, scalar) 34-57 s.
"""

from urllib.parse import parse_qs

import graphviz_export.web.explorer.state as st
from microgpt.errors import InputError

from ...fold import expanded_ids, node_floor
from ...fold.expand import expanded_scopes
from ...select import select
from ...spec import MAX_BUDGET

LAYOUT_NODES = 600      # a view this size lays out in well under a second (module docstring)
LAYOUT_EDGES = 1200
COARSER = {'scalar': 'vector', 'vector': 'block', 'auto': 'block'}


def ceiling(state):
    """(nodes, edges) the explorer draws for this state: what lays out in time, or the budget
    box's own figures when they ask for more."""
    return max(LAYOUT_NODES, state['budget']), max(LAYOUT_EDGES, state['ebudget'])


def _count(n):
    return f'{n:,}'


def smaller(trace, state, kwargs, nodes, selections=None):
    """(state, note) of the views nearest to `state` (too big: at least `nodes` nodes) that may
    draw, nearest first. `kwargs`: build_view's keyword arguments of `state`; `selections`: the
    explorer's drawing.Selections (the refused view's Selection, kept), else selected anew."""
    limit = ceiling(state)[0]
    expand = tuple(state['expand'])
    if expand:
        *kept, last = expand
        query = {k: kwargs[k] for k in ('token', 'layer', 'head', 'param', 'node', 'depth', 'direction', 'function',
                                        'line', 'document') if k in kwargs}
        sel = selections.get(trace, query) if selections is not None else select(trace, **query)
        scopes = expanded_scopes(trace, sel, last)
        opened = []
        for path in scopes:
            trial = tuple(kept) + tuple(opened) + (path,)
            ids = expanded_ids(trace, sel, trial)
            # node_floor counts each opened id not in focus, so more of them than the limit is over it: not
            # asked (a layer's attention at one position: 20 scopes of up to 8,256 ops, 25 ms each at 5 M nodes)
            if len(ids) - len(sel.focus) <= limit and node_floor(trace, sel, kwargs['level'], ids) <= limit:
                opened.append(path)
        rest = [p for p in scopes if p not in opened]
        why = (f"{last} opened to scalars would draw at least {_count(nodes)} nodes, more than the "
               f"{_count(limit)} the explorer lays out in time")
        raise_it = f"type {_count(nodes)} or more in the budget box" if nodes <= MAX_BUDGET else ''
        if opened and rest:
            yield (dict(state, expand=tuple(kept) + tuple(opened)),
                   f"{why}: opened {', '.join(opened)}; {', '.join(rest)} stayed folded (click one to open it"
                   f"{', or ' + raise_it if raise_it else ''})")
        yield (dict(state, expand=tuple(kept)),
               f"{why}: it stayed folded ({raise_it + ', or ' if raise_it else ''}open a smaller part of it)")
    level = state['level']
    while level in COARSER:
        was, level = level, COARSER[level]
        yield (dict(state, expand=(), level=level),
               f"level {was} would draw at least {_count(nodes)} nodes, more than the {_count(limit)} the "
               f"explorer lays out in time: shown at level {level} (click a block to open it finer, or choose "
               f"another view in the tabs)")


# -- a URL that cannot be shown as written ------------------------------------------------------------
RELAX = (   # what `nearest` gives up, in this order, until the state draws
    ('expand', 'focus'),
    ('sel', 'hl', 'cmp'),
    ('view', 'token', 'layer', 'head', 'param', 'node', 'depth', 'dir', 'function', 'line', 'level', 'budget',
     'ebudget'),
    st.TRACE_FIELDS,
)


def lenient(query):
    """(state, [field names dropped]): every field of `query` that parses, the others left at
    their defaults (a repeated field: its first value)."""
    try:
        raw = parse_qs(query, keep_blank_values=True, max_num_fields=64)
    except ValueError:
        return dict(st.DEFAULTS), ['the query']
    state, dropped = dict(st.DEFAULTS), []
    for name, values in raw.items():
        if name not in st.DEFAULTS:
            dropped.append(name)
            continue
        try:
            state[name] = st.parse({name: values if name in st.LIST_FIELDS else values[:1]}, allowed=(name,))[name]
        except InputError:
            dropped.append(name)
    return state, dropped


def nearest(fitted, refused, query, error):
    """{'fallback': URL, 'note': text} of the nearest view to `query` that draws (see the module
    docstring), or {} when even the default view does not; `fitted(state)` draws a state or
    raises one of the exceptions `refused`; `error` is the refusal's one line."""
    state, _ = lenient(query)
    tried = [dict(state)]
    # first each field alone back at its default (a bad position keeps the link's level and the rest)
    tried += [dict(state, **{f: st.DEFAULTS[f]}) for fields in RELAX for f in fields if state[f] != st.DEFAULTS[f]]
    for fields in RELAX:
        state = dict(state, **{f: st.DEFAULTS[f] for f in fields})
        tried.append(dict(state))
    seen = set()
    for candidate in tried:
        key = st.canonical(candidate)
        if key in seen:
            continue
        seen.add(key)
        try:
            drawn, _note, (_key, _trace, entry, _cached) = fitted(candidate)
        except refused:         # try the next, wider view
            continue
        title = entry['view'].selection.title
        return {'fallback': st.canonical(drawn),
                'note': f"this link cannot be shown as written ({error}); showing {title} instead"}
    return {}

