"""Where each link of the page leads, as the URL (state.canonical) the page navigates to.

The page is a view over the server's answers: a tab, a position chip, a choice in the view's
controls, the recording and compare switches, a crumb, a click on a folded node or a matrix
cell, folding an expansion back, "up one", the previous/next position and the side panel's
inputs and uses each lead to a URL computed here from the current view state. The page does
not re-decide any of it; where the user types a value (a node id, a budget, a parameter cell,
a document), the link names the field and the page puts the typed text there, for the server
to validate on the next view (state.py; a parameter is read by microgpt.recording's
parse_param, the one parser of 'layer0.attn_wq[3][5]').

What each kind of link keeps and clears is written once, in one function per concern:

    view_links(trace, state, view, crumbs, clicks, script)   # the whole `links` of /api/view
    another_view(state, **fields)       # a tab, a chip: the recording and the drawing options stay
    change(state, field, value)         # a control: that field, and what its change clears
    node_links(state, details, drawn)   # the side panel's inputs and uses (/api/node)
    nonfinite_links(trace, state)       # where NaN or infinity starts (/api/info)
"""

import graphviz_export.web.explorer.state as st
from microgpt.recording import TraceQueryError, parse_param

from ...spec import DIRECTIONS, LEVELS

KEEP = st.KEEP      # what another view keeps (state.py)

# What a change of one control clears besides the selection (sel, always): a new position,
# layer, head, function, line, node or parameter is another place (its expansions and the block
# a click opened belong to the old one); depth and direction redraw other nodes (expansions go,
# the opened block stays); a level keeps the expansions; budgets and edge labels keep all.
CLEARS = {'token': ('expand', 'focus'), 'layer': ('expand', 'focus'), 'head': ('expand', 'focus'),
          'function': ('expand', 'focus'), 'line': ('expand', 'focus'), 'node': ('expand', 'focus'),
          'param': ('expand', 'focus', 'hl'), 'depth': ('expand',), 'dir': ('expand',), 'level': ('focus',),
          'grads': (), 'budget': (), 'ebudget': ()}


def url(state):
    """The URL query of a state (fields missing or None take their defaults)."""
    return st.canonical(state)


def another_view(state, **fields):
    """A view of its own (a tab, a position chip, a new recording): KEEP and `fields`, the rest default."""
    return url(dict({k: state[k] for k in KEEP}, **fields))


def change(state, field, value):
    """`field` set to `value` (None: its default), with the selection and CLEARS[field] cleared."""
    new = dict(state, sel=None, **dict.fromkeys(CLEARS[field]))
    new[field] = value
    return url(new)


def click(state, to):
    """A click on a folded node: the changes `to` it makes (clicks.click_target); the selection and
    the search outline go (they named nodes of the view before)."""
    return url({**state, 'sel': None, 'hl': None, **to})


def neighbourhood(state, i):
    """The node view of node i, i selected: a double click on a scalar, 'show its neighbourhood'
    (in the direction the node view on screen looks, if it is one)."""
    return another_view(state, view='node', node=i, depth=2, level='auto', sel=i, dir=state['dir'])


def nonfinite_links(trace, state):
    """Where NaN or infinity starts in the recording (Trace.nonfinite): for 'data' (the first node in
    forward order) and 'grad' (the first in backward order), its id, name, value and the link to its
    neighbourhood, it selected; None when every value is finite."""
    out = {}
    for field, i in trace.nonfinite().items():
        if i is not None:
            value = (trace.data if field == 'data' else trace.grad)[i]
            out[field] = {'id': i, 'name': trace.name(i), 'value': value, 'to': neighbourhood(state, i)}
    return out or None


def position_of(crumbs):
    """The position the view is at (its 'position' crumb), or None."""
    return next((c['to']['token'] for c in crumbs if c['level'] == 'position'), None)


def view_links(trace, state, view, crumbs, clicks, script, first=None):
    """Every link of a drawn view: the `links` of /api/view.

    `view` is the built View, `crumbs` the view's crumbs (crumbs.crumbs), `clicks` {node name:
    the changes a click on it makes} (clicks.click_target, kept with the drawing), `script`
    /api/info's script facts (functions and lines) or None, `first` the node where a lab's or a
    comparison's two backwards first diverge (None: no such node)."""
    pos = position_of(crumbs)
    expand = tuple(state['expand'])
    links = {'tabs': tabs(trace, state, pos, script), 'chips': chips(trace, state, pos),
             'controls': controls(trace, state, script),
             'crumbs': [url(c['to']) for c in crumbs],
             'nodes': {name: click(state, to) for name, to in clicks.items()},
             'cells': cells(trace, state, view),
             'fold': {p: url(dict(state, expand=tuple(x for x in expand if x != p))) for p in expand},
             'recording': {'url': another_view(state, doc=None, seed=None, ckpt=None),
                           'fields': list(st.TRACE_FIELDS)},
             'compare': {'url': url(dict(state, cmp=None, frame=None, mode=None, sel=None)), 'field': 'cmp'},
             'leave_compare': url(dict(state, cmp=None, lab=None, sel=None)) if state['cmp'] or state['lab'] else None,
             **live_links(state, first),
             'export': url(dict(state, sel=None, hl=None, frame=None))}
    links.update(up(state, links['crumbs']), **steps(trace, state, pos))
    return links


def live_links(state, first):
    """Where the live view's controls lead (play.js): `play` (the played run's fields typed in:
    train, tdoc, lr), `leave_play`, `lab` (a lab mode typed in; the lab shows the recording, so
    the run and any comparison are left), `compare_step` (cmp typed in: train:J or seed:S) and
    `first` (the neighbourhood of the first diverging node, selected)."""
    quiet = {'frame': None, 'mode': None, 'sel': None}
    out = {'play': {'url': url(dict(state, cmp=None, lab=None, **quiet)), 'fields': list(st.PLAY_FIELDS)},
           'leave_play': url(dict(state, train=None, tdoc=None, lr=None, cmp=None, **quiet))
           if state['train'] is not None else None,
           'lab': {'url': url(dict(state, lab=None, cmp=None, train=None, tdoc=None, lr=None, **quiet)),
                   'field': 'lab'},
           'compare_step': {'url': url(dict(state, cmp=None, **quiet)), 'field': 'cmp'}
           if state['train'] is not None else None,
           'first': None}
    if first is not None:
        out['first'] = another_view(state, view='node', node=first, depth=2, level='auto', sel=first)
    return out


def tabs(trace, state, pos, script):
    """{view: URL} of the tabs that apply to this trace: the model's views where it has positions
    (a script's trace: its functions and lines), a parameter where it has any, a node always.

    A tab opens its view where the user is: the position of the view on screen (else the last
    one), its layer and head (else the first), the selected node (else the loss)."""
    positions, layers = trace.positions(), trace.layers()
    here = pos if pos is not None else (positions[-1] if positions else 0)
    layer = state['layer'] if state['layer'] is not None else (layers[0] if layers else 0)
    out = {}
    if positions:
        out['doc'] = another_view(state, view='doc')
        out['token'] = another_view(state, view='token', token=here)
        if layers:
            out['layer'] = another_view(state, view='layer', layer=layer, token=pos, level='auto')
        if trace.heads():
            out['head'] = another_view(state, view='head', layer=layer, head=state['head'] or 0, token=here,
                                       level='auto')
    if trace.param_names:
        first = next((n for n in trace.param_names if 'attn_wq' in n), trace.param_names[0])
        out['param'] = another_view(state, view='param', param=state['param'] or f'{first}[0][0]', level='auto')
    sel = state['sel']
    out['node'] = another_view(state, view='node', node='loss' if sel is None else sel, depth=2, sel=sel,
                               level='auto')
    if script is not None and script['functions']:
        out['function'] = another_view(state, view='function', function=state['function'] or script['functions'][0],
                                       level='auto')
    if script is not None and script['lines']:
        out['line'] = another_view(state, view='line', line=state['line'] or script['lines'][0]['line'],
                                   level='auto')
    return out


def chips(trace, state, pos):
    """The document's chips: 'whole document' and one per position, each a token view at block
    level; `on`: the chip of the view on screen ('doc', a position, or None)."""
    positions = trace.positions()
    if not positions:
        return None
    view = state['view']
    return {'doc': another_view(state, view='doc', frame=None),
            'positions': {str(p): another_view(state, view='token', token=p) for p in positions},
            'on': 'doc' if view == 'doc' else (pos if view not in ('param', 'node') else None)}


def steps(trace, state, pos):
    """'prev' / 'next': the previous and next position ([ and ]), in the same layer or head view."""
    positions = trace.positions()
    if pos not in positions:
        return {'prev': None, 'next': None}
    k = positions.index(pos)
    view = state['view'] if state['view'] in ('layer', 'head') else 'token'

    def to(j):
        if not 0 <= j < len(positions):
            return None
        return url(dict(state, view=view, token=positions[j], expand=(), sel=None, hl=None, focus=None))

    return {'prev': to(k - 1), 'next': to(k + 1)}


def up(state, crumb_urls):
    """'up': one step back out (u, Backspace): the newest expansion folded, else the crumb before the last."""
    if state['expand']:
        return {'up': url(dict(state, expand=tuple(state['expand'])[:-1]))}
    return {'up': crumb_urls[-2] if len(crumb_urls) > 1 else None}


def cells(trace, state, view):
    """{matrix node name: link} of a parameter view's heat maps: a click on a cell opens that cell's
    view; the page puts the cell's row and column into `text` and the result into `field`."""
    if view.selection.matrix is None:
        return {}
    name = view.selection.matrix
    base = url(dict(state, view='param', param=None, level='auto', expand=(), sel=None, hl=None, depth=None,
                    focus=None))
    return {n.name: {'url': base, 'field': 'param', 'text': name + '[{row}][{col}]'}
            for n in view.folded.nodes if n.kind == 'matrix'}


def node_links(state, details, drawn):
    """The side panel's links of a scalar (/api/node's answer, changed in place): its neighbourhood,
    and for each input and use the node it names: selected in place when drawn in the view on
    screen (`drawn`: {node id: drawn node name}), else its neighbourhood."""
    details['neighbourhood'] = neighbourhood(state, details['id'])
    for row in details['inputs'] + details['uses']:
        i = row['id']
        here = i in drawn
        row.update(to=url(dict(state, sel=i)) if here else neighbourhood(state, i), here=here,
                   node=drawn.get(i))
    return details


# -- the view's controls ----------------------------------------------------------------------------
def controls(trace, state, script):
    """The controls of the view on screen, in the order shown: each its field, label, value and
    where a change leads (a choice: each option's URL; typed text: the URL it goes into)."""
    view = state['view']
    out = []
    if view == 'function' and script is not None:
        out.append(_choice(state, 'function', 'function', [(f, f + '()') for f in script['functions']],
                           state['function']))
    elif view == 'line' and script is not None:
        out.append(_choice(state, 'line', 'line', [(ln['line'], f"{ln['line']}: {ln['code'][:60]}")
                                                    for ln in script['lines']], state['line']))
    elif view in ('token', 'layer', 'head'):
        if view != 'token':
            out.append(_choice(state, 'layer', 'layer', [(x, x) for x in trace.layers()], state['layer'] or 0))
        if view == 'head':
            out.append(_choice(state, 'head', 'head', [(x, x) for x in trace.heads()], state['head'] or 0))
        out.append(_positions(trace, state, every=view != 'token'))
    elif view == 'param':
        out.extend(_param(trace, state))
    elif view == 'node':
        out += [_typed(state, 'node', 'node', 'loss' if state['node'] is None else state['node'], size=7),
                _typed(state, 'depth', 'depth', 2 if state['depth'] is None else state['depth'], size=2),
                _choice(state, 'dir', 'direction', [(d, d) for d in DIRECTIONS], state['dir'])]
    out += [_choice(state, 'level', 'level', [(lv, lv) for lv in LEVELS], state['level']),
            {'field': 'grads', 'label': 'edge grads', 'kind': 'check', 'value': bool(state['grads']),
             'title': 'label edges with local derivative and contribution',
             'on': change(state, 'grads', True), 'off': change(state, 'grads', False)},
            _typed(state, 'budget', 'budget', state['budget'], size=4, title='largest view drawn: nodes'),
            _typed(state, 'ebudget', '/', state['ebudget'], size=4, title='largest view drawn: edges')]
    return out


def _choice(state, field, label, options, value):
    """A choice: [value, text, URL] per option (values as the page's <option>s hold them: text)."""
    def text(v):
        return '' if v is None else str(v)

    return {'field': field, 'label': label, 'kind': 'choice', 'value': text(value),
            'options': [[text(v), str(shown), change(state, field, v)] for v, shown in options]}


def _typed(state, field, label, value, *, size, title=None, placeholder=None):
    """Typed text: the page puts it into `field` of `url` (empty: the field's default)."""
    d = {'field': field, 'label': label, 'kind': 'text', 'value': '' if value is None else str(value),
         'url': change(state, field, None), 'size': size}
    d.update({k: v for k, v in (('title', title), ('placeholder', placeholder)) if v is not None})
    return d


def _positions(trace, state, every):
    """The position choice; `every`: a layer or head view may show all positions at once."""
    positions = trace.positions()
    options = [(None, 'all')] if every else []
    strs = trace.meta.get('token_strs') or []
    for p in positions:
        a = strs[p] if p < len(strs) else '?'
        b = strs[p + 1] if p + 1 < len(strs) else '?'
        options.append((p, f'{p}: {a}\u2192{b}'))
    value = state['token'] if state['token'] is not None or every else (positions[-1] if positions else None)
    return _choice(state, 'token', 'position', options, value)


def _param(trace, state):
    """The matrix choice (a cell stays picked where the other matrix has it) and the typed parameter."""
    try:
        name, r, c = parse_param(state['param'] or '')
    except TraceQueryError:
        name, r, c = None, None, None
    options = []
    for n in trace.param_names:
        rows, cols = trace.param_shapes[n]
        to = f'{n}[{r}][{c}]' if r is not None and r < rows and c < cols else n
        options.append([n, f'{n} {rows}\u00d7{cols}', change(state, 'param', to)])
    matrix = {'field': 'param', 'label': 'matrix', 'kind': 'choice', 'value': name or '', 'options': options}
    return [matrix, _typed(state, 'param', 'cell', state['param'], size=18,
                           title="a matrix ('wte') or one cell ('layer0.attn_wq[3][5]'); Enter draws it",
                           placeholder='layer0.attn_wq[3][5]')]


def script_info(trace):
    """A script's trace: its file, functions and lines (views by function and line), else None."""
    if trace.source is None:
        return None
    rf = trace.meta.get('recorded_from', {})
    lines = [{'file': f, 'line': ln, 'code': next((s.text for s in trace.sources
                                                     if s.file == f and s.line == ln), '')}
             for f, ln in trace.source_lines() if f == rf.get('script')]
    return {'file': rf.get('script'), 'class': rf.get('class'), 'convention': rf.get('convention'),
            'step': rf.get('step'), 'functions': trace.functions(), 'lines': lines}
