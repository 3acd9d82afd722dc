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
    level budget ebudget expand grads aspect   folding and layout: as `render`'s options

The view's own fields (view .. grads above) are graphviz_export.spec's, under the
URL's names (view = kind, dir = direction, ebudget = edge_budget, grads =
edge_grads): the same defaults, limits and messages as `render` and tour files,
but for the level, where the page opens on 'block' (OPENS_AT).
    hl                a search query whose matches are outlined (not part of the build)
    sel               the node shown in the side panel (not part of the build)
    frame             the step-through's position (0 = nothing computed yet; count + 1 = the update)
    mode              backward | forward: what the step-through plays
    ov                grad | contrib: recolour nodes by |grad| or by |grad x data| (not part of the build)
    focus             the scope path of a block opened by a click ('pos4/layer0/attn'): a breadcrumb,
                      and where the camera goes (not part of the build)
    side              'hide': the side panel is folded away (not part of the build)
    present           '1': presentation mode (present.js: the chrome one thin line, the caption large,
                      text at least 16 px; the page asks for the screen's aspect; not part of the build)
    cmp               before/after: 'ckpt:PATH' (a second checkpoint) or 'steps:N' (N training steps);
                      the view then draws the differences (graphviz_export.steps.diff); with train=k,
                      'train:J' (step J of the same run) or 'seed:S' (step k of the run from seed S)
    train             the view after k played optimizer steps of the reference run (plays.py): the
                      layout stays the run's, the numbers are step k's
    tdoc lr           the played run trains on this document only (else the reference's order) /
                      from this peak learning rate (else the reference's 0.01)
    lab               the backprop lab: this document's backward done wrongly (recursive | twice |
                      assign | a fault of `gradcheck --list-faults`), drawn as wrong - correct

`canonical(state)` is the query string with defaults left out and fields in a
fixed order: the cache key of a view and the URL the page shows.
"""

import re
from contextlib import contextmanager
from urllib.parse import parse_qs, urlencode

import graphviz_export.spec as spec
from microgpt.errors import InputError
from microgpt.recording import NUM_STEPS

from ...spec import MAX_TEXT, SCOPE_GLOB, ViewOptionError, view_spec

BLOCKS = ('embed', 'attn', 'mlp', 'lm_head', 'loss')   # the model's blocks, in the flow's order
KIND = {'doc': 'document'}  # the URL's name of a kind, where it is not the kind's own
VIEWS = tuple({v: k for k, v in KIND.items()}.get(kind, kind) for kind in spec.KINDS)
SPEC_NAME = {'view': 'kind', 'dir': 'direction', 'ebudget': 'edge_budget', 'grads': 'edge_grads'}  # URL -> spec
URL_NAME = {v: k for k, v in SPEC_NAME.items()}
MODES = ('backward', 'forward')
OVERLAYS = ('grad', 'contrib')
SIDES = ('hide',)       # the side panel: shown (no field) or folded away
PRESENT = ('1',)        # presentation mode: on (1) or off (no field)
MAX_TRAIN_STEPS = 500    # compare after N training steps: N at most this
MAX_DOC = 64            # characters of a document typed into the page
MAX_PLAY = NUM_STEPS    # train=k: k at most the reference run's length (its learning rate is 0 there)
MAX_LR = 1.0            # lr: a peak learning rate above this only diverges
OPENS_AT = 'block'      # the page's level when the URL names none: a whole token's flow fits one screen
#                         (render's default, auto, would pick the finest level that fits 150 nodes)

_VIEW = view_spec()
# field -> default; the order is the URL's order. The view's fields take the spec's defaults.
DEFAULTS = {
    'doc': None, 'seed': None, 'ckpt': None,
    'view': 'token', 'token': _VIEW.token, 'layer': _VIEW.layer, 'head': _VIEW.head, 'param': _VIEW.param,
    'node': _VIEW.node, 'depth': _VIEW.depth, 'dir': _VIEW.direction, 'function': _VIEW.function,
    'line': _VIEW.line, 'level': OPENS_AT, 'budget': _VIEW.budget, 'ebudget': _VIEW.edge_budget,
    'expand': _VIEW.expand, 'grads': _VIEW.edge_grads, 'aspect': _VIEW.aspect, 'cmp': None, 'hl': None,
    'sel': None, 'ov': None, 'frame': None, 'mode': 'backward', 'focus': None, 'side': None, 'present': None,
    'train': None, 'tdoc': None, 'lr': None, 'lab': None,
}
TRACE_FIELDS = ('doc', 'seed', 'ckpt')
# Another view (a tab, a chip, a crumb, a search row, a new recording) keeps the recording, the
# drawing's size and edge labels, the comparison and the page's own fields (overlay, side panel,
# step-through); the rest said what the old view showed and where the user was in it.
KEEP = TRACE_FIELDS + ('budget', 'ebudget', 'grads', 'aspect', 'cmp', 'ov', 'side', 'frame', 'mode', 'present',
                       'train', 'tdoc', 'lr', 'lab')
PLAY_FIELDS = ('train', 'tdoc', 'lr')     # which played run, and which step of it
VIEW_FIELDS = ('view', 'token', 'layer', 'head', 'param', 'node', 'depth', 'dir', 'function', 'line', 'level',
               'budget', 'ebudget', 'expand', 'grads', 'aspect')     # the ViewSpec's, in URL names
BUILD_FIELDS = VIEW_FIELDS + ('cmp', 'lab')    # train is not: one layout per view per run
LIST_FIELDS = ('expand',)
BLANK_IS_NONE = ('param', 'function')   # the page clears a text field by sending it empty


class StateError(InputError):
    """A bad view-state field; the message names the field, the value and what is allowed."""


def _int(name, text, lo, hi):
    # at most 19 digits read (int() of thousands is slow); the range decides the rest
    if not re.fullmatch(r'-?\d{1,19}', text):
        if re.fullmatch(r'-?\d+', text):
            raise StateError(f"{name} must be in {lo}..{hi}, got a number of {len(text.lstrip('-'))} digits")
        raise StateError(f"{name} must be a whole number, got {text[:40]!r}")
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


@contextmanager
def _as_state_error():
    """The spec's ViewOptionError as a StateError (the API's 400), the message unchanged."""
    try:
        yield
    except ViewOptionError as e:
        raise StateError(str(e)) from None


def _view_field(name, text):
    """A field of the ViewSpec, parsed by graphviz_export.spec under its URL name."""
    if name == 'view':
        return _choice(name, text, VIEWS)
    if name in BLANK_IS_NONE and not text:
        return None
    with _as_state_error():
        return spec.parse(SPEC_NAME.get(name, name), text, label=name)


def _field(name, text):
    if name in VIEW_FIELDS:
        return _view_field(name, text)
    if name == 'doc':
        if not text:
            raise StateError("doc is empty; give a name such as 'emma'")
        return _text(name, text, MAX_DOC)
    if name == 'seed':
        return _int(name, text, 0, 2**31 - 1)
    if name == 'ckpt':
        return _text(name, text, 1000) or None
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
    if name == 'cmp':
        return _compare(text)
    if name == 'focus':
        return _focus(text)
    if name == 'side':
        return _choice(name, text, SIDES) if text else None
    if name == 'present':
        return _choice(name, text, PRESENT) if text else None
    if name == 'train':
        return _int(name, text, 0, MAX_PLAY) if text else None
    if name == 'tdoc':
        return _text(name, text, MAX_DOC) or None
    if name == 'lr':
        return _lr(text) if text else None
    if name == 'lab':
        return _lab(text)
    raise AssertionError(name)


def _lr(text):
    try:
        v = float(text) if len(text) <= 24 else None
    except ValueError:
        v = None
    if v is None or not 0 < v <= MAX_LR:
        raise StateError(f"lr must be a learning rate in (0, {MAX_LR:g}], such as 0.01, got {text[:40]!r}")
    return v


def _lab(text):
    """A lab mode's name: recursive, twice, assign or a fault's (the recordings check which exist)."""
    if not text:
        return None
    if not re.fullmatch(r'[a-z0-9][a-z0-9-]{0,39}', text):
        raise StateError(f"lab {text[:80]!r} is not a lab mode (recursive, twice, assign, or a fault such as exp-x2)")
    return text


def _compare(text):
    """'ckpt:PATH', 'steps:N', 'train:J' or 'seed:S' (empty: no comparison)."""
    if not text:
        return None
    kind, sep, rest = text.partition(':')
    if sep and kind == 'steps':
        _int('cmp steps', rest, 1, MAX_TRAIN_STEPS)
        return f'steps:{int(rest)}'
    if sep and kind == 'train':
        return f"train:{_int('cmp train', rest, 0, MAX_PLAY)}"
    if sep and kind == 'seed':
        return f"seed:{_int('cmp seed', rest, 0, 2**31 - 1)}"
    if sep and kind == 'ckpt' and rest:
        return 'ckpt:' + _text('cmp checkpoint', rest, 1000)
    raise StateError(f"cmp {text[:80]!r} is not 'ckpt:PATH' (a second checkpoint), 'steps:N' "
                     f"(after N training steps, 1..{MAX_TRAIN_STEPS}), 'train:J' (step J of the played run) "
                     f"or 'seed:S' (the run from seed S)")


def compare_of(state):
    """('ckpt', path), ('steps', N), ('train', J) or ('seed', S) of a state's cmp field, or None."""
    cmp = state.get('cmp')
    if not cmp:
        return None
    kind, _, rest = cmp.partition(':')
    return (kind, rest if kind == 'ckpt' else int(rest))


def _focus(text):
    if not text:
        return None
    if len(text) > MAX_TEXT or not SCOPE_GLOB.fullmatch(text) or '*' in text or '?' in text:
        raise StateError(f"focus {text[:80]!r} is not a scope path like 'pos4/layer0/attn'")
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
        if name in LIST_FIELDS:     # repeated, or comma-separated: expand=a,b
            items = tuple(p for v in values for p in v.split(',') if p)
            with _as_state_error():
                state[name] = spec.check(SPEC_NAME.get(name, name), items, label=name)
            continue
        if len(values) != 1:
            raise StateError(f"parameter {name!r} is given {len(values)} times; give it once")
        state[name] = _field(name, values[0])
    return state


def view_of(state):
    """The ViewSpec of a (validated) state: its view fields under the spec's names."""
    values = {SPEC_NAME.get(f, f): state[f] for f in VIEW_FIELDS}
    values['kind'] = KIND.get(values['kind'], values['kind'])
    with _as_state_error():
        return view_spec(values, label=URL_NAME.get)


def build_kwargs(state):
    """build_view keyword arguments of a (validated) state; only the view's own fields count."""
    view = view_of(state)
    with _as_state_error():
        return view.kwargs()


def _encode(name, value):
    if name == 'grads':
        return '1' if value else '0'
    if name == 'lr':
        return repr(value)
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
