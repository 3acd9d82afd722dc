"""Which leaves of a recorded script are its parameters.

In order of preference (the first that applies):

  --params NAME   a global of the script, or an attribute path from one, called when
                  it is a method (`--params model.parameters`): a dict of name ->
                  matrix / vector / Value (like state_dict), a list of Values, or a
                  list of equal rows; anything else is refused naming what it is
  state_dict      the script's `state_dict` global (a dict as above)
  params          its `params` or `parameters` global (a list of Values)
  a guess         the leaves the user made before the first op (step 1) or before the
                  recorded step (step N), keeping only those that

                    receive a grad     backward reaches them from the loss
                    are used like a    the loss depends on them through something
                    parameter          other than additions: a product with a
                                       non-constant, a power, a nonlinearity

                  A leaf the loss only adds (possibly times constants), such as the
                  accumulator `total_loss = Value(0.0)` of a loss summed in a loop,
                  moves the loss by a constant and is not a parameter; one backward
                  never reaches, such as the accumulator of a validation pass, is not
                  either. Both are counted in `left_out` with the line that made the
                  first of each, for the message that says what was taken.

`describe(recorded_from)` is that message: what was taken and how to choose otherwise.
"""

from ...errors import InputError

_LINEAR = frozenset({'add', 'sub', 'neg'})


class BadParams(InputError):
    """--params names nothing usable; the message says what it names and what is allowed."""


def check_name(name):
    """Refuse a --params value that cannot be a global name or an attribute path."""
    if name is not None and not (isinstance(name, str) and all(p.isidentifier() for p in name.split('.'))):
        raise InputError(f"--params {name!r}: write the name of a global of the script, or an attribute "
                         f"path from one, e.g. params or model.parameters")


def _shape(obj, cls):
    """[[Value]] rows of a Value, a list of Values or a list of equal rows; else None."""
    if isinstance(obj, cls):
        return [[obj]]
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(x, cls) for x in obj):
        return [list(obj)]
    if (isinstance(obj, (list, tuple)) and obj and all(isinstance(r, (list, tuple)) for r in obj)
            and len({len(r) for r in obj}) == 1
            and all(isinstance(x, cls) for r in obj for x in r)):
        return [list(r) for r in obj]
    return None


def _matrices(obj, name, cls):
    """[(name, rows, cols, cells)] of a dict of matrices or of one matrix; else None."""
    if isinstance(obj, dict) and obj:
        out = []
        for key, m in obj.items():
            rows = _shape(m, cls)
            if rows is None or not isinstance(key, str):
                return None
            out.append((key, len(rows), len(rows[0]), [x for r in rows for x in r]))
        return out
    rows = _shape(obj, cls)
    if rows is None:
        return None
    return [(name, len(rows), len(rows[0]), [x for r in rows for x in r])]


def _distinct(found):
    ids = [id(p) for _, _, _, cells in found for p in cells]
    return len(set(ids)) == len(ids)


def named_params(namespace, cls):
    """([(name, rows, cols, cells)], found by) from a `state_dict` / `params` /
    `parameters` global, or (None, None)."""
    sd = namespace.get('state_dict')
    if isinstance(sd, dict):
        found = _matrices(sd, 'state_dict', cls)
        if found and _distinct(found):
            return found, 'state_dict'
    for key in ('params', 'parameters'):
        rows = _shape(namespace.get(key), cls)
        if rows is not None and len(rows) == 1:
            found = [(key, 1, len(rows[0]), rows[0])]
            if _distinct(found):
                return found, key
    return None, None


def params_by_name(namespace, name, cls, is_leaf=None):
    """[(name, rows, cols, cells)] of what --params NAME names; raises BadParams
    (naming globals that would do: `candidates`)."""
    head, *rest = name.split('.')
    if head not in namespace:
        raise BadParams(f"--params {name!r}: the script has no global {head!r}{_hint(namespace, cls, is_leaf)}")
    obj, path = namespace[head], head
    for part in rest:
        try:
            obj = getattr(obj, part)
        except Exception:
            raise BadParams(f"--params {name!r}: {path} has no attribute {part!r}{_hint(namespace, cls, is_leaf)}") from None
        path += '.' + part
    if callable(obj) and not isinstance(obj, (cls, list, tuple, dict)):
        try:
            obj = obj()
        except Exception as e:
            raise BadParams(f"--params {name!r}: calling {path}() raised {type(e).__name__}: {e}") from None
        path += '()'
    found = _matrices(obj, name.split('.')[-1], cls)
    if found is None:
        raise BadParams(f"--params {name!r}: {path} is {_what(obj)}, not a list, matrix or dict of matrices "
                        f"of {cls.__name__}{_hint(namespace, cls, is_leaf)}")
    if not _distinct(found):
        raise BadParams(f"--params {name!r}: {path} holds the same {cls.__name__} twice; each parameter once")
    return found


def _what(obj):
    if isinstance(obj, (list, tuple)):
        return f"a {type(obj).__name__} of {len(obj)} items" if obj else f"an empty {type(obj).__name__}"
    return f"a {type(obj).__name__}"


def candidates(namespace, cls, is_leaf=None):
    """Globals --params could name (at most 6): lists, matrices and dicts of distinct
    leaves of the class (`is_leaf(v)`; not single Values), and `NAME.parameters` of
    objects with a parameters() method."""
    names = []
    for key, obj in namespace.items():
        if key.startswith('_') or isinstance(obj, type):
            continue
        found = None if isinstance(obj, cls) else _matrices(obj, key, cls)
        if found is not None and _distinct(found) and (
                is_leaf is None or all(map(is_leaf, (x for f in found for x in f[3])))):
            names.append(key)
        elif callable(getattr(obj, 'parameters', None)):
            names.append(f"{key}.parameters")
    return names[:6]


def _hint(namespace, cls, is_leaf):
    names = candidates(namespace, cls, is_leaf)
    return f"; globals that would do: {', '.join(names)}" if names else ''


# -- the guess ----------------------------------------------------------------------------------
def guess(candidates, topo, kids_of, op_of, is_const):
    """(taken, left_out) among `candidates` (leaves in creation order): taken are those
    backward reaches and the loss uses like a parameter; left_out is {'unused': [...],
    'only added': [...]}.

    topo: the nodes backward reaches, children first; kids_of(v): v's children;
    op_of(v): v's op name; is_const(v): a leaf made inside the class's methods (the 2
    of x * 2). One pass over topo: a node is a constant if it is such a leaf or an op
    of constants (the n**-1 of x / n); a node that so far depends on candidates only
    through additions and products with a constant carries their indexes; an op that
    uses it any other way (u*x, u*u, u**2, tanh(u), ...) marks them used like
    parameters."""
    reached = {id(v) for v in topo}
    carried = {id(v): {k} for k, v in enumerate(candidates) if id(v) in reached}
    like_param, const = set(), set()
    for v in topo:
        kids = kids_of(v)
        if not kids:
            if is_const(v):
                const.add(id(v))
            continue
        if all(id(c) in const for c in kids):
            const.add(id(v))
            continue            # an op of constants: no candidate is among its inputs
        op = None
        for c in kids:
            ks = carried.get(id(c))
            if ks:
                ks -= like_param    # known parameters need carrying no further (only saves work)
            if not ks:
                continue
            if op is None:
                op = op_of(v)
            others = [d for d in kids if d is not c]
            if op in _LINEAR or (op == 'mul' and len(kids) == 2 and len(others) == 1 and id(others[0]) in const):
                carried.setdefault(id(v), set()).update(ks)
            else:
                like_param |= ks
    taken, unused, added = [], [], []
    for k, v in enumerate(candidates):
        (unused if id(v) not in reached else taken if k in like_param else added).append(v)
    return taken, {'unused': unused, 'only added': added}


# -- the message ----------------------------------------------------------------------------------
def describe(rf):
    """What `record` and `explore SCRIPT` say about the parameters they took, from the
    trace's meta['recorded_from']."""
    how = rf.get('params_from')
    n = rf.get('params_count', 0)
    if how in ('state_dict', 'params', 'parameters'):
        return f"the {n:,} values of the script's `{how}` global (another choice: --params NAME)"
    if how and how.startswith('--params'):
        return f"the {n:,} values of {how}"
    text = (f"{n:,} leaves {how.removeprefix('leaves ')} that backward reaches and the loss uses like a "
            f"parameter (no `state_dict` or `params` global)")
    out = rf.get('params_left_out') or {}
    parts = []
    for key, words in (('only added', 'the loss only adds'), ('unused', 'backward never reaches')):
        row = out.get(key)
        if row:
            parts.append(f"{row[0]} {words} ({row[1]}{', ...' if row[0] > 1 else ''})")
    if parts:
        text += '; left out: ' + ', '.join(parts)
    names = rf.get('params_globals')
    return text + '; choose with --params NAME' + (f" ({', '.join(names)} would do)" if names else '')
