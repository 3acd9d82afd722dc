"""The explorer's view state: one place for URL query <-> validated state <-> build_view kwargs.

The page keeps its whole state in the URL query string, so reload, back/forward
and a shared link reproduce the view. The server parses that same query here:
every field is checked (type, range, allowed values) and a bad one raises
StateError, a one-line message the API returns as HTTP 400. Fields:

    doc, seed, ckpt   which recording (document, fresh-model seed, checkpoint path)
    view              doc | token | layer | head | param | node | function | line
    token layer head  positions / layer / head of token, layer and head views
    function line     a script's function name / source line (traces recorded from a script)
    param             a cell 'layer0.attn_wq[3][5]' or a matrix 'wte' (param view)
    node depth dir    a node id or 'loss', hops, ancestors|descendants|both
    level budget ebudget expand grads   folding: as `render`'s options
    hl                a search query whose matches are outlined (not part of the build)
    sel               the node shown in the side panel (not part of the build)
    frame             the step-through's position (0 = nothing computed yet; count + 1 = the update)
    mode              backward | forward: what the step-through plays
    ov                grad | contrib: recolour nodes by |grad| or by |grad x data| (not part of the build)
    focus             the scope path of a block opened by a click ('pos4/layer0/attn'): a breadcrumb,
                      and where the camera goes (not part of the build)
    side              'hide': the side panel is folded away (not part of the build)
    cmp               before/after: 'ckpt:PATH' (a second checkpoint) or 'steps:N' (N training steps);
                      the view then draws the differences (graphviz_export.steps.diff)

`canonical(state)` is the query string with defaults left out and fields in a
fixed order: the cache key of a view and the URL the page shows.
"""

import re
from urllib.parse import parse_qs, urlencode

from microgpt.errors import InputError

from ...options import DEFAULT_BUDGET, DEFAULT_EDGE_BUDGET, DIRECTIONS, LEVELS

BLOCKS = ('embed', 'attn', 'mlp', 'lm_head', 'loss')   # the model's blocks, in the flow's order
VIEWS = ('doc', 'token', 'layer', 'head', 'param', 'node', 'function', 'line')
MODES = ('backward', 'forward')
OVERLAYS = ('grad', 'contrib')
SIDES = ('hide',)       # the side panel: shown (no field) or folded away
MAX_TRAIN_STEPS = 500    # compare after N training steps: N at most this
MAX_DOC = 64            # characters of a document typed into the page
MAX_BUDGET = 5000       # a view over this is refused before folding
MAX_EDGE_BUDGET = 20000
MAX_DEPTH = 12
MAX_EXPAND = 16         # expand patterns in one view
MAX_TEXT = 200          # any other text field

# field -> default; the order is the URL's order
DEFAULTS = {
    'doc': None, 'seed': None, 'ckpt': None,
    'view': 'token', 'token': None, 'layer': None, 'head': None, 'param': None,
    'node': None, 'depth': None, 'dir': 'both', 'function': None, 'line': None,
    'level': 'block', 'budget': DEFAULT_BUDGET, 'ebudget': DEFAULT_EDGE_BUDGET,
    'expand': (), 'grads': False, 'cmp': None, 'hl': None, 'sel': None, 'ov': None, 'frame': None,
    'mode': 'backward', 'focus': None, 'side': None,
}
TRACE_FIELDS = ('doc', 'seed', 'ckpt')
BUILD_FIELDS = ('view', 'token', 'layer', 'head', 'param', 'node', 'depth', 'dir', 'function', 'line', 'level',
                'budget', 'ebudget', 'expand', 'grads', 'cmp')
LIST_FIELDS = ('expand',)
_PATTERN = re.compile(r'^[A-Za-z0-9_*?/\[\].-]+$')    # scope path globs: pos3/layer0/attn/head2/*


class StateError(InputError):
    """A bad view-state field; the message names the field, the value and what is allowed."""


def _int(name, text, lo, hi):
    if not re.fullmatch(r'-?\d{1,9}', text):
        raise StateError(f"{name} must be a whole number, got {text!r}")
    v = int(text)
    if not lo <= v <= hi:
        raise StateError(f"{name} must be in {lo}..{hi}, got {v}")
    return v


def _text(name, text, limit=MAX_TEXT):
    if len(text) > limit:
        raise StateError(f"{name} is longer than {limit} characters")
    if any(ord(c) < 32 for c in text):
        raise StateError(f"{name} has a control character")
    return text


def _choice(name, text, allowed):
    if text not in allowed:
        raise StateError(f"{name} {text!r} is not one of: {', '.join(allowed)}")
    return text


def _field(name, text):
    if name == 'doc':
        if not text:
            raise StateError("doc is empty; give a name such as 'emma'")
        return _text(name, text, MAX_DOC)
    if name == 'seed':
        return _int(name, text, 0, 2**31 - 1)
    if name == 'ckpt':
        return _text(name, text, 1000) or None
    if name == 'view':
        return _choice(name, text, VIEWS)
    if name in ('token', 'layer', 'head'):
        return _int(name, text, 0, 10**6)
    if name == 'param':
        return _text(name, text) or None
    if name == 'node':
        if text == 'loss':
            return text
        return _int(name, text, 0, 10**9)
    if name == 'depth':
        return _int(name, text, 0, MAX_DEPTH)
    if name == 'dir':
        return _choice(name, text, DIRECTIONS)
    if name == 'level':
        return _choice(name, text, LEVELS)
    if name == 'budget':
        return _int(name, text, 1, MAX_BUDGET)
    if name == 'ebudget':
        return _int(name, text, 1, MAX_EDGE_BUDGET)
    if name == 'grads':
        return _choice(name, text, ('0', '1')) == '1'
    if name == 'hl':
        return _text(name, text) or None
    if name == 'sel':
        return _int(name, text, 0, 10**9)
    if name == 'frame':
        return _int(name, text, 0, 10**9)
    if name == 'mode':
        return _choice(name, text, MODES)
    if name == 'ov':
        return _choice(name, text, OVERLAYS) if text else None
    if name == 'function':
        return _text(name, text) or None
    if name == 'line':
        return _int(name, text, 1, 10**7)
    if name == 'cmp':
        return _compare(text)
    if name == 'focus':
        return _focus(text)
    if name == 'side':
        return _choice(name, text, SIDES) if text else None
    raise AssertionError(name)


def _compare(text):
    """'ckpt:PATH' or 'steps:N' (empty: no comparison)."""
    if not text:
        return None
    kind, sep, rest = text.partition(':')
    if sep and kind == 'steps':
        _int('cmp steps', rest, 1, MAX_TRAIN_STEPS)
        return f'steps:{int(rest)}'
    if sep and kind == 'ckpt' and rest:
        return 'ckpt:' + _text('cmp checkpoint', rest, 1000)
    raise StateError(f"cmp {text[:80]!r} is not 'ckpt:PATH' (a second checkpoint) or 'steps:N' "
                     f"(after N training steps, 1..{MAX_TRAIN_STEPS})")


def compare_of(state):
    """('ckpt', path) or ('steps', N) of a state's cmp field, or None."""
    cmp = state.get('cmp')
    if not cmp:
        return None
    kind, _, rest = cmp.partition(':')
    return (kind, int(rest) if kind == 'steps' else rest)


def _focus(text):
    if not text:
        return None
    if len(text) > MAX_TEXT or not _PATTERN.match(text) or '*' in text or '?' in text:
        raise StateError(f"focus {text[:80]!r} is not a scope path like 'pos4/layer0/attn'")
    return text


def _pattern(text):
    if not text or len(text) > MAX_TEXT or not _PATTERN.match(text):
        raise StateError(f"expand pattern {text!r} is not a scope path like 'pos3/layer0/attn/head2/q'")
    return text


def parse(query, *, allowed=None):
    """A validated state dict from a query string (or parse_qs's dict of lists).

    Fields outside `allowed` (default: every state field) are refused, and so is a
    field given twice (only `expand` may repeat). Missing fields take DEFAULTS.
    """
    allowed = tuple(DEFAULTS) if allowed is None else allowed
    raw = parse_qs(query, keep_blank_values=True, max_num_fields=64) if isinstance(query, str) else query
    state = dict(DEFAULTS)
    for name, values in raw.items():
        if name not in allowed:
            raise StateError(f"unknown parameter {name!r}; allowed: {', '.join(allowed)}")
        if name in LIST_FIELDS:
            items = [p for v in values for p in v.split(',') if p]
            if len(items) > MAX_EXPAND:
                raise StateError(f"at most {MAX_EXPAND} expand patterns, got {len(items)}")
            state[name] = tuple(dict.fromkeys(_pattern(p) for p in items))
            continue
        if len(values) != 1:
            raise StateError(f"parameter {name!r} is given {len(values)} times; give it once")
        state[name] = _field(name, values[0])
    return state


def check_view(state):
    """The view's own fields must agree: a head view needs a head, a param view a param..."""
    view = state['view']
    if view == 'head' and state['head'] is None:
        raise StateError("view 'head' needs head (and layer)")
    if view == 'param' and not state['param']:
        raise StateError("view 'param' needs param, e.g. 'layer0.attn_wq[3][5]' or 'wte'")
    if view == 'node' and state['node'] is None:
        raise StateError("view 'node' needs node: an id or 'loss'")
    if view == 'function' and not state['function']:
        raise StateError("view 'function' needs function: a function of the recorded script")
    if view == 'line' and state['line'] is None:
        raise StateError("view 'line' needs line: a line of the recorded script")
    return state


def build_kwargs(state):
    """build_view keyword arguments of a (validated) state; only the view's own fields count."""
    check_view(state)
    view = state['view']
    kw = {}
    if view == 'doc':
        kw['document'] = True
    elif view == 'token':
        kw['token'] = state['token']
    elif view == 'function':
        kw['function'] = state['function']
    elif view == 'line':
        kw['line'] = state['line']
    elif view == 'layer':
        kw.update(layer=state['layer'] if state['layer'] is not None else 0, token=state['token'])
    elif view == 'head':
        kw.update(layer=state['layer'], head=state['head'], token=state['token'])
    elif view == 'param':
        kw.update(param=state['param'], depth=state['depth'])
    else:
        kw.update(node=state['node'], depth=state['depth'], direction=state['dir'])
    kw.update(level=state['level'], budget=state['budget'], edge_budget=state['ebudget'],
              expand=tuple(state['expand']), edge_grads=state['grads'])
    return kw


def _encode(name, value):
    if name == 'grads':
        return '1' if value else '0'
    return str(value)


def canonical(state, fields=None):
    """The query string of `state` (only `fields`, default all), defaults left out, fixed order."""
    pairs = []
    for name in (fields or DEFAULTS):
        value = state.get(name, DEFAULTS[name])
        if value == DEFAULTS[name] or value is None:
            continue
        if name in LIST_FIELDS:
            pairs.extend((name, v) for v in value)
        else:
            pairs.append((name, _encode(name, value)))
    return urlencode(pairs, safe='/*[]:')


def build_key(state):
    """What decides the drawn view (not the highlight, selection or frame)."""
    return canonical(state, BUILD_FIELDS)


def to_json(state):
    """The state as JSON-able dict (lists for tuples)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in state.items()}
