"""One description of a view: which part of the step to show and how to fold it,
with every default and limit written once, here.

    spec = view_spec({'node': 'loss', 'depth': 3})       # checked: ViewOptionError if not allowed
    view = build_view(trace, **spec.kwargs())

Every door parses into a ViewSpec and so accepts the same values and refuses the
same bad ones, with one message: the command line (`render`, `diff`: options made
from FIELDS), the explorer's URL state (web/explorer/state.py: `dir`, `ebudget`,
`grads` are its names for direction, edge_budget, edge_grads) and tour files
(web/tour/spec.py: a stop's keys are the field names). build_view checks its
keywords here too. `check` takes a typed value (Python, TOML); `parse` takes text
(a URL, a command line). A refusal is one line naming the field, the value and
what is allowed: "depth must be in 0..64, got 99".
"""

import re
from dataclasses import dataclass

from microgpt.errors import InputError
from microgpt.recording.cells import MAX_SPEC, TraceQueryError, parse_param

KINDS = ('document', 'token', 'layer', 'head', 'param', 'node', 'function', 'line')
LEVELS = ('auto', 'scalar', 'vector', 'block')
DIRECTIONS = ('both', 'ancestors', 'descendants')
# the screen shape a view is laid out for: 'auto' lays out left to right when that fits a 16:9
# projection at readable size (draw/page.py), else top to bottom; a shape picks the direction
# whose layout fills that shape best (presentation mode asks for its screen's)
ASPECTS = ('auto', '16:9', '16:10', '4:3', '3:4')
DEFAULT_LEVEL = 'auto'
DEFAULT_BUDGET = 150        # visible nodes (references included, but those between a vector view's rows) that level auto allows
DEFAULT_EDGE_BUDGET = 400   # drawn edges that level auto allows (edges make `dot` slow)

# The limits. One set for every door, so a link, a tour and a command agree.
MAX_INDEX = 10**6       # token, layer, head: a bound on the number only (no model is that big: block_size and
#                         n_embd stop at 4,096, n_layer at 256); the trace refuses what it lacks, listing what it has
MAX_NODE = 10**9        # node ids: a trace of 10^9 nodes would need ~420 GB
MAX_LINE = 10**7        # a line of a recorded script
MAX_DEPTH = 64          # hops: 64 around the loss of 'emma' already reach 35,596 of its 43,895 nodes (81%; 12
#                         reach 225, 32 reach 14,325); a deeper neighbourhood is the whole step, not a neighbourhood
MAX_BUDGET = 5000       # nodes: about the most whose layout fits the default 60 s --timeout. Native `dot`, the
#                         loss's ancestors in 'emma' at scalar level: 3,640 nodes 22 s, 5,456 nodes 34 s, 7,730 75 s
MAX_EDGE_BUDGET = 20000  # edges: 4 x the node limit (those scalar views have ~1.4 edges per node, vector views more)
MAX_EXPAND = 16         # expand patterns in one view
MAX_TEXT = MAX_SPEC     # characters of a param, function or pattern (200)

SCOPE_GLOB = re.compile(r'[A-Za-z0-9_*?/\[\].-]+')  # scope paths and their globs: pos3/layer0/attn/head2/*
_INT = re.compile(r'-?[0-9]{1,18}')                  # ASCII digits only: int('٣') would read 3


class ViewOptionError(InputError):
    """A view option outside what is allowed; the message names the field, the value
    and what is allowed. `field` is the ViewSpec field."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ViewSpec:
    """One view of a trace. `kind` None: by select's precedence (param, node,
    function, line, head, layer, else token), as the command line and tours ask;
    a kind (the explorer's tabs) counts only that kind's own fields."""
    kind: str = None            # one of KINDS
    token: int = None           # a position (default: the last); narrows a layer or head view to it
    layer: int = None
    head: int = None
    param: str = None           # a cell 'layer0.attn_wq[3][5]' or a matrix 'wte'
    node: object = None         # a node id or 'loss'
    function: str = None        # a recorded script's function
    line: int = None            # a recorded script's line
    depth: int = None           # hops: default 2 around a node, 1 downstream of a cell
    direction: str = DIRECTIONS[0]
    level: str = DEFAULT_LEVEL
    budget: int = DEFAULT_BUDGET
    edge_budget: int = DEFAULT_EDGE_BUDGET
    expand: tuple = ()          # scope patterns shown at scalar level inside a coarser view
    edge_grads: bool = False    # label edges with local derivative and contribution
    aspect: str = ASPECTS[0]    # the screen shape the layout is for (ASPECTS)

    def kwargs(self):
        """build_view's keyword arguments."""
        fold = dict(level=self.level, budget=self.budget, edge_budget=self.edge_budget, expand=self.expand,
                    edge_grads=self.edge_grads, aspect=self.aspect)
        kind = self.kind
        if kind is None:
            return {**{f: getattr(self, f) for f in QUERY}, **fold}
        _check_kind(self)
        if kind == 'document':
            query = {'document': True}
        elif kind in ('token', 'function', 'line'):
            query = {kind: getattr(self, kind)}
        elif kind == 'layer':
            query = dict(layer=self.layer if self.layer is not None else 0, token=self.token)
        elif kind == 'head':
            query = dict(layer=self.layer, head=self.head, token=self.token)
        elif kind == 'param':
            query = dict(param=self.param, depth=self.depth)
        else:
            query = dict(node=self.node, depth=self.depth, direction=self.direction)
        return {**query, **fold}


QUERY = ('token', 'layer', 'head', 'param', 'node', 'function', 'line', 'depth', 'direction')


def _check_kind(spec):
    """A kind's own fields must be there: a head view needs a head, a param view a param..."""
    needs = {'head': ('head', "head (and layer)"), 'param': ('param', "param, e.g. 'layer0.attn_wq[3][5]' or 'wte'"),
             'node': ('node', "node: an id or 'loss'"), 'function': ('function', "function: a function of the "
                                                                               "recorded script"),
             'line': ('line', "line: a line of the recorded script")}
    if spec.kind in needs:
        name, what = needs[spec.kind]
        if getattr(spec, name) in (None, ''):
            raise ViewOptionError(name, f"view {spec.kind!r} needs {what}")


@dataclass(frozen=True)
class Field:
    """How one ViewSpec field is checked, and how the command line offers it."""
    name: str
    kind: str               # 'int' | 'node' | 'param' | 'text' | 'choice' | 'patterns' | 'flag'
    low: int = None
    high: int = None
    choices: tuple = ()
    help: str = ''          # the command line's help text (render's wording)


FIELDS = {f.name: f for f in (
    Field('token', 'int', 0, MAX_INDEX,
          help='Position to show (default: the last one). Narrows --layer/--head to it.'),
    Field('layer', 'int', 0, MAX_INDEX, help='Show one transformer layer (all positions, or --token).'),
    Field('head', 'int', 0, MAX_INDEX, help='Show one attention head (of --layer, default the only layer).'),
    Field('param', 'param', help="A parameter cell, e.g. 'layer0.attn_wq[3][5]': its uses and how they sum to its "
                                 "grad; or a matrix name, e.g. 'wte': a heat-map and its uses per position."),
    Field('node', 'node', 0, MAX_NODE,
          help="A node id, or 'loss': its neighbourhood. Ids: `inspect` lists the loss and each position's loss "
               "node; `export` (JSON) and the tooltips of a --level scalar picture give any node's."),
    Field('function', 'text', help="A trace recorded from a script: every node made inside this function "
                                   "of the script (e.g. rmsnorm)."),
    Field('line', 'int', 1, MAX_LINE, help='A trace recorded from a script: every node made by this line of '
                                           'the script.'),
    Field('depth', 'int', 0, MAX_DEPTH, help='Hops around --node (default 2) or downstream of a --param cell '
                                             '(default 1).'),
    Field('direction', 'choice', choices=DIRECTIONS, help='Which way --node reaches.'),
    Field('level', 'choice', choices=LEVELS,
          help='scalar: every op; vector: one node per role (e.g. q, 16 values); block: attention / MLP / ... '
               'per position; auto: the finest that fits --budget.'),
    Field('budget', 'int', 1, MAX_BUDGET, help='Most visible nodes --level auto allows.'),
    Field('edge_budget', 'int', 1, MAX_EDGE_BUDGET,
          help='Most edges --level auto allows (edges, not nodes, make Graphviz slow).'),
    Field('expand', 'patterns', help="Show a scope at scalar level inside a coarser view, e.g. "
                                     "'pos4/layer0/attn/head2/*'; repeatable."),
    Field('edge_grads', 'flag', help='Label edges with local derivative and gradient contribution.'),
    Field('aspect', 'choice', choices=ASPECTS,
          help='The screen shape to lay the view out for: auto (left to right when that fits a 16:9 '
               'projection at readable size, else top to bottom), or a shape, e.g. 16:9: the direction '
               'whose layout fills it best.'),
)}


def _shown(value):
    """The value as a message shows it: its repr, cut to about 50 characters."""
    text = repr(value)
    return text if len(text) <= 50 else text[:46] + '...' + text[-1]


def _whole(value):
    return isinstance(value, int) and not isinstance(value, bool)


def check(name, value, label=None):
    """`value` (a Python value: from a tour file, a library call or `parse`) if
    field `name` allows it, else ViewOptionError; `label` is the door's name for
    the field ('dir', 'stop 2: depth'), default the field's own."""
    if name == 'kind':
        if value is not None and value not in KINDS:
            raise ViewOptionError(name, f"{label or name} {_shown(value)} is not one of: {', '.join(KINDS)}")
        return value
    f = FIELDS.get(name)
    if f is None:
        raise ViewOptionError(name, f"unknown view option {name!r}; allowed: {', '.join(FIELDS)}")
    label = label or name
    if f.kind == 'int':
        if not _whole(value):
            raise ViewOptionError(name, f"{label} must be a whole number, got {_shown(value)}")
        if not f.low <= value <= f.high:
            raise ViewOptionError(name, f"{label} must be in {f.low}..{f.high}, got {value}")
    elif f.kind == 'node':
        if value != 'loss' and not (_whole(value) and f.low <= value <= f.high):
            raise ViewOptionError(name, f"{label} must be a node id (a whole number {f.low}..{f.high}) or 'loss', "
                                        f"got {_shown(value)}")
    elif f.kind == 'choice':
        if value not in f.choices or not isinstance(value, str):
            raise ViewOptionError(name, f"{label} {_shown(value)} is not one of: {', '.join(f.choices)}")
    elif f.kind == 'flag':
        if not isinstance(value, bool):
            raise ViewOptionError(name, f"{label} must be true or false (1 or 0), got {_shown(value)}")
    elif f.kind == 'patterns':
        value = (value,) if isinstance(value, str) else value    # one pattern
        if not isinstance(value, (list, tuple)):
            raise ViewOptionError(name, f"{label} must be a scope path or a list of them, got {_shown(value)}")
        if len(value) > MAX_EXPAND:
            raise ViewOptionError(name, f"{label}: at most {MAX_EXPAND} patterns, got {len(value)}")
        for p in value:
            if not isinstance(p, str) or len(p) > MAX_TEXT or not SCOPE_GLOB.fullmatch(p):
                raise ViewOptionError(name, f"{label} {_shown(p)} is not a scope path like "
                                            f"'pos3/layer0/attn/head2/*' (at most {MAX_TEXT} characters)")
        value = tuple(dict.fromkeys(value))
    elif f.kind == 'param':
        _check_param(name, value, label)
    else:
        _check_text(name, value, label)
    return value


def _check_text(name, value, label):
    if not isinstance(value, str):
        raise ViewOptionError(name, f"{label} must be text, got {_shown(value)}")
    if len(value) > MAX_TEXT:
        raise ViewOptionError(name, f"{label} has {len(value)} characters; allowed: at most {MAX_TEXT}")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ViewOptionError(name, f"{label} {_shown(value)} has a control character")


def _check_param(name, value, label):
    """A matrix name or a cell (syntax only: the trace says which exist); a library
    caller may give the cell as (name, row, col)."""
    allowed = "a name like 'wte' or a cell like 'layer0.attn_wq[3][5]'"
    if isinstance(value, tuple) and len(value) == 3:
        return
    if not isinstance(value, str):
        raise ViewOptionError(name, f"{label} must be {allowed}, got {_shown(value)}")
    if len(value) > MAX_TEXT:
        raise ViewOptionError(name, f"{label} has {len(value)} characters; allowed: {allowed}, "
                                    f"at most {MAX_TEXT} characters")
    try:
        parse_param(value)
    except TraceQueryError:
        raise ViewOptionError(name, f"{label} {_shown(value)} is not {allowed}") from None


def parse(name, text, label=None):
    """The value of field `name` written as `text` (a URL's or a command line's), checked."""
    f = FIELDS.get(name)
    if f is not None and f.kind in ('int', 'node') and not (f.kind == 'node' and text == 'loss'):
        if _INT.fullmatch(text):
            return check(name, int(text), label)
        if f.kind == 'int' and re.fullmatch(r'-?[0-9]+', text):   # too long to be in range
            raise ViewOptionError(name, f"{label or name} must be in {f.low}..{f.high}, got {_shown(text)}")
        if f.kind == 'int':
            raise ViewOptionError(name, f"{label or name} must be a whole number, got {_shown(text)}")
        return check(name, text, label)     # not a node id: check says so
    if f is not None and f.kind == 'flag':
        return check(name, {'1': True, '0': False}.get(text, text), label)
    if f is not None and f.kind == 'patterns':
        return check(name, (text,), label)[0]
    return check(name, text, label)


def view_spec(values=(), label=None):
    """A checked ViewSpec from {field: value} (Python values; None: the default).
    `label(field)`: the door's name of a field in messages."""
    out = {}
    for name, value in dict(values).items():
        if name != 'kind' and name not in FIELDS:
            raise ViewOptionError(name, f"unknown view option {name!r}; allowed: {', '.join(FIELDS)}")
        if value is None:
            continue
        out[name] = check(name, value, label(name) if label else None)
    return ViewSpec(**out)


def check_options(**values):
    """Check build_view's (or fold's) keyword arguments that are given (not None)."""
    for name, value in values.items():
        if value is not None:
            check(name, value)
