"""The captured graph -> the columns of a `Trace` (plain data, no live Values).

Called in the child at the Nth backward(), after the user's own backward ran:

  nodes    every node made during the step (from the start of the script for the
           first step, else from the end of the previous backward() call), in
           creation order, reached by backward or not (the port's record_step keeps
           unused softmax outputs too); plus nodes made earlier that the step uses
  order    `backward_order`: the root's graph walked with an explicit stack,
           children left to right: the order of the reference's recursive
           build_topo, i.e. the order the user's backward visited them
  ids      parameters first (matrix by matrix, row by row), then older nodes the
           step uses, then the step's nodes in creation order (a topological order)
  params   the script's `state_dict` global (dict of name -> matrix / vector /
           Value of the class), else its `params` or `parameters` global (a list),
           else the leaves that persist across steps: for --step N > 1 the leaves
           made before step N began, for the first step the leaves made before the
           script's first op (named 'params', one row)
  op       'param'; 'const' (a leaf made inside an op method, e.g. the 2 in x * 2);
           'leaf'; else the op's name: micrograd's `_op` label when there is one,
           otherwise the op method that made it (__add__ -> add, tanh -> tanh); a
           node made by a plain function outside the class is named after it
  source   per node an index into `sources`: (file, call line, enclosing functions,
           the call line's text, op file, op line, grad line): the op line built the
           node; the grad line holds its derivative (the op line itself when the
           derivative is stored at creation, the closure's first line for micrograd)
  local    microgpt convention: the stored `_local_grads`; micrograd convention:
           each node's `_backward` closure called once with grad 1 on the node and
           0 on its children (their grads saved and restored around the call), the
           children's new grads being d node / d child. Children held in a set are
           listed once, sorted by id (a node like a*a has one child, derivative 2a).

An op with a port op's name (add, mul, pow, log, exp, relu) keeps the port's op code
only when its arity matches and replaying the port's forward on the children's data
gives exactly the node's data; the node check then checks it like the port's. Any
other op (tanh, gelu, sigmoid, a mul of a set of one child, ...) is probed here:
its op method is called again on fresh copies of its inputs, each input moved by
+-h (h = PROBE_STEP * max(|x|, 1)), and (x+h, x-h, f(x+h), f(x-h)) is stored per
input, from which the node check computes a central difference. This is sound when
the method is a function of its arguments' data (re-running it on the unperturbed
copies must give the node's data exactly; otherwise the node is marked unprobed,
with the reason). Not probed: ops made outside the class's methods (nothing to
re-run), inputs that the method made itself.
"""

import math

from ..ops import OPS
from ..scopes import Scope
from ..sources import Source

PROBE_STEP = 1e-6
_KNOWN = {'add': 2, 'mul': 2, 'pow': 1, 'log': 1, 'exp': 1, 'relu': 1}
_NUMBER = (int, float)


def _replay(op, xs, n):
    """The port's forward on floats, as microgpt.engine computes it."""
    if op == 'add':
        return xs[0] + xs[1]
    if op == 'mul':
        return xs[0] * xs[1]
    if op == 'pow':
        return xs[0] ** n
    if op == 'log':
        return math.log(xs[0])
    if op == 'exp':
        return math.exp(xs[0])
    return max(0, xs[0])


def topo_order(root, attr):
    """Children before parents, the order of the recursive build_topo, iteratively."""
    topo, visited = [], {id(root)}
    stack = [(root, iter(getattr(root, attr)))]
    while stack:
        node, children = stack[-1]
        for child in children:
            if id(child) not in visited:
                visited.add(id(child))
                stack.append((child, iter(getattr(child, attr))))
                break
        else:
            stack.pop()
            topo.append(node)
    return topo


def _older_nodes(topo, made, window, is_param, attr):
    """Nodes the step uses that were made before it (not parameters), children first:
    everything reachable from the root or from the step's own nodes without
    passing through one of the step's nodes."""
    seen, out = set(is_param), []
    starts = [c for v in made for c in getattr(v, attr) if id(c) not in window]
    starts += [v for v in topo if id(v) not in window]
    for start in starts:
        if id(start) in seen:
            continue
        seen.add(id(start))
        stack = [(start, iter(getattr(start, attr)))]
        while stack:
            node, children = stack[-1]
            for c in children:
                if id(c) not in seen and id(c) not in window:
                    seen.add(id(c))
                    stack.append((c, iter(getattr(c, attr))))
                    break
            else:
                stack.pop()
                out.append(node)
    return out


def named_params(namespace, cls):
    """[(name, rows, cols, cells)] from a `state_dict` / `params` / `parameters` global."""
    def shape(obj):
        if isinstance(obj, cls):
            return [[obj]]
        if isinstance(obj, (list, tuple)) and obj and all(isinstance(x, cls) for x in obj):
            return [list(obj)]
        if (isinstance(obj, (list, tuple)) and obj and all(isinstance(r, (list, tuple)) for r in obj)
                and len({len(r) for r in obj}) == 1
                and all(isinstance(x, cls) for r in obj for x in r)):
            return [list(r) for r in obj]
        return None

    sd = namespace.get('state_dict')
    if isinstance(sd, dict) and sd:
        out = []
        for name, m in sd.items():
            rows = shape(m)
            if rows is None or not isinstance(name, str):
                out = None
                break
            out.append((name, len(rows), len(rows[0]), [x for r in rows for x in r]))
        if out:
            return out, 'state_dict'
    for key in ('params', 'parameters'):
        rows = shape(namespace.get(key))
        if rows is not None and len(rows) == 1:
            return [(key, 1, len(rows[0]), rows[0])], key
    return None, None


def build_columns(rec, root, namespace):
    """The Trace columns (a dict of plain data) of the graph under `root`."""
    cls, kids_attr = rec.cls, rec.children_attr
    closures = rec.convention == 'micrograd'
    topo = topo_order(root, kids_attr)
    window = {id(v): i for i, v in enumerate(rec.nodes)}

    # -- parameters --------------------------------------------------------------------------
    params, found_by = named_params(namespace, cls)
    if params is not None:
        seen = set()
        for _, _, _, cells in params:
            for p in cells:
                if id(p) in seen:
                    params, found_by = None, None
                    break
                seen.add(id(p))
            if params is None:
                break
    if params is None:
        if rec.step == 1:
            first_op = next((i for i, v in enumerate(rec.nodes) if getattr(v, kids_attr)), len(rec.nodes))
            cells = [v for v in rec.nodes[:first_op] if id(rec.creators[window[id(v)]]) not in rec.class_ids]
            found_by = 'leaves made before the first op'
        else:
            used = {id(v) for v in topo}
            cells = [v for v in rec.early if id(v) in used]
            known = {id(v) for v in cells}
            cells += [v for v in topo if id(v) not in window and id(v) not in known
                      and not getattr(v, kids_attr)]
            found_by = f'leaves made before step {rec.step}'
        params = [('params', 1, len(cells), cells)] if cells else []

    # -- ids ---------------------------------------------------------------------------------------
    order = []
    param_names, param_shapes, param_base, param_scope = [], {}, {}, []
    for name, rows, cols, cells in params:
        param_names.append(name)
        param_shapes[name] = (rows, cols)
        param_base[name] = len(order)
        order.extend(cells)
        param_scope.extend([name] * len(cells))
    is_param = {id(v) for v in order}
    older = _older_nodes(topo, rec.nodes, window, is_param, kids_attr)
    made = [i for i, v in enumerate(rec.nodes) if id(v) not in is_param]
    n_params, n_older = len(order), len(older)
    order.extend(older)
    order.extend(rec.nodes[i] for i in made)
    index = {id(v): i for i, v in enumerate(order)}

    # -- sources and scopes ---------------------------------------------------------------------
    places = rec.places
    sources = list(places.sources)   # grad_line: the op line, or the closure's (below)
    regrad = {}
    scopes = [Scope(*s) for s in places.scopes]
    scope_ix = {s: k for k, s in enumerate(scopes)}

    def intern_scope(s):
        s = Scope(*s)
        k = scope_ix.get(s)
        if k is None:
            k = scope_ix[s] = len(scopes)
            scopes.append(s)
        return k

    unknown_src = None

    def where(v):
        nonlocal unknown_src
        w = window.get(id(v))
        if w is not None:
            return rec.source[w], rec.scope[w]
        if unknown_src is None:
            unknown_src = len(sources)
            sources.append(Source('?', 0, (), '', '?', 0, 0))
        return unknown_src, intern_scope((None, None, None, None, None))

    # -- every node ------------------------------------------------------------------------------
    op_names = list(OPS)
    op_code = {name: k for k, name in enumerate(op_names)}
    ops, data, grad, scope, source = [], [], [], [], []
    child_ptr, child, local = [0], [], []
    exps, probe_todo = {}, []
    creators = rec.creators

    def code_of(name):
        k = op_code.get(name)
        if k is None:
            k = op_code[name] = len(op_names)
            op_names.append(name)
        return k

    for i, v in enumerate(order):
        d = v.data
        data.append(d)
        grad.append(v.grad)
        src, sc = where(v)
        source.append(src)
        if i < n_params:
            scope.append(intern_scope((None, None, 'params', None, param_scope[i])))
            ops.append(op_code['param'])
            child_ptr.append(len(child))
            continue
        scope.append(sc)
        w = window.get(id(v))
        creator = creators[w] if w is not None else None
        kids = getattr(v, kids_attr)
        if not kids:
            ops.append(op_code['const' if id(creator) in rec.class_ids else 'leaf'])
            child_ptr.append(len(child))
            continue
        if closures:
            kids = sorted({id(c): c for c in kids}.values(), key=lambda c: index[id(c)])
            locs = _probe_closure(v, kids)
            gl = _grad_line(v)
            if gl and gl != sources[src][6]:   # the derivative is written in the closure
                k = regrad.get((src, gl))
                if k is None:
                    k = regrad[(src, gl)] = len(sources)
                    sources.append(sources[src]._replace(grad_line=gl))
                source[-1] = k
        else:
            kids = list(kids)
            locs = list(getattr(v, rec.local_attr))
        made_by = rec.args.get(w)
        name, n = _op_label(v, rec.code_ops.get(id(creator)), creator, made_by)
        if name == 'pow' and n is not None:
            exps[i] = n
        xs = [c.data for c in kids]
        code = None
        if _KNOWN.get(name) == len(kids) and (name != 'pow' or n is not None):
            try:
                y = _replay(name, xs, n)
                if y == d or (y != y and d != d):
                    code = op_code[name]
            except (ValueError, ZeroDivisionError, OverflowError, TypeError):
                pass
        if code is None:
            exps.pop(i, None)
            code = code_of(name + '*' if name in op_code and op_code[name] < len(OPS) else name)
            probe_todo.append((i, v, kids, made_by))
        ops.append(code)
        child.extend(index[id(c)] for c in kids)
        local.extend(locs)
        child_ptr.append(len(child))

    probes = {i: _probe_op(cls, v, kids, creator) for i, v, kids, creator in probe_todo}
    backward_order = [index[id(v)] for v in reversed(topo)]
    meta = {
        'loss_id': index[id(root)],
        'recorded_from': {
            'script': rec.places.script, 'step': rec.step, 'class': cls.__name__,
            'convention': rec.convention, 'params_from': found_by,
            'tags': {f: sorted(vs) for f, vs in sorted(places.found.items())},
            'nodes_made': len(rec.nodes), 'unreached': len(order) - len(topo), 'older_nodes': n_older,
        },
    }
    return {
        'op_names': op_names, 'op': ops, 'data': data, 'grad': grad, 'scope': scope, 'scopes': scopes,
        'child_ptr': child_ptr, 'child': child, 'local': local, 'backward_order': backward_order,
        'pow_exponent': exps, 'param_names': param_names, 'param_shapes': param_shapes,
        'param_base': param_base, 'meta': meta, 'source': source, 'sources': sources, 'probes': probes,
    }


def _op_label(v, method, code, made_by):
    """(op name, pow exponent or None) of a node with children: micrograd's `_op`
    label if any, else the class method (or the function) whose code made it."""
    label = getattr(v, '_op', None)
    n = None
    if isinstance(label, str) and label:
        if label.startswith('**'):
            name = 'pow'
            try:
                n = float(label[2:]) if '.' in label[2:] else int(label[2:])
            except ValueError:
                pass
        else:
            name = LABELS.get(label, label)
    elif method is not None:
        name = method[0]
    elif code is not None and not code.co_name.startswith('<'):
        name = code.co_name
    else:
        name = 'op'
    if name == 'pow' and made_by is not None:
        args = made_by[1]
        if len(args) == 2 and isinstance(args[1], _NUMBER) and not isinstance(args[1], bool):
            n = args[1]
    return name, n


_LINES = {}


def _grad_line(v):
    """The first line of the body of v's `_backward` closure (where micrograd writes
    the derivative), or 0."""
    code = getattr(getattr(v, '_backward', None), '__code__', None)
    if code is None:
        return 0
    line = _LINES.get(code)
    if line is None:
        body = [ln for _, _, ln in code.co_lines() if ln is not None and ln > code.co_firstlineno]
        line = _LINES[code] = min(body) if body else code.co_firstlineno
    return line


def _probe_closure(v, kids):
    """d v / d child for each child, by running v._backward() on a unit upstream grad."""
    saved_v, saved = v.grad, [c.grad for c in kids]
    try:
        for c in kids:
            c.grad = 0
        v.grad = 1.0
        v._backward()
        return [c.grad for c in kids]
    finally:
        for c, g in zip(kids, saved):
            c.grad = g
        v.grad = saved_v


def _probe_op(cls, v, kids, made_by):
    """Per child, [x+h, x-h, f(x+h), f(x-h)] from re-running the op, or a reason."""
    if made_by is None:
        return ['made where no function can be re-run (module level, a comprehension, '
                'or a function not found by its name)'] * len(kids)
    fn, args = made_by

    def run(moved):
        call = [cls(moved.get(j, a.data)) if isinstance(a, cls) else a for j, a in enumerate(args)]
        out = fn(*call)
        if not isinstance(out, cls):
            raise TypeError(f"{fn.__name__} returned {type(out).__name__}")
        return out.data

    try:
        base = run({})
    except Exception as e:
        return [f"re-running {fn.__name__} failed: {e!r}"] * len(kids)
    if not (base == v.data or (base != base and v.data != v.data)):
        return [f"re-running {fn.__name__} on the same inputs gives {base!r}, not {v.data!r}"] * len(kids)
    out = []
    seen = {}
    for c in kids:
        where = [j for j, a in enumerate(args) if a is c]
        r = seen[id(c)] = seen.get(id(c), -1) + 1     # c's r-th occurrence among the children
        if len(where) > 1 and sum(1 for k in kids if k is c) == len(where):
            where = [where[r]]                          # a * a with children (a, a): one edge each
        if not where:
            out.append(f"input made inside {fn.__name__}: cannot be moved from outside")
            continue
        x = c.data
        h = PROBE_STEP * max(abs(x), 1.0)
        xp, xm = x + h, x - h
        try:
            fp = run(dict.fromkeys(where, xp))
            fm = run(dict.fromkeys(where, xm))
        except Exception as e:
            out.append(f"re-running {fn.__name__} near {x!r} failed: {e!r}")
            continue
        out.append([xp, xm, fp, fm])
    return out


LABELS = {'+': 'add', '*': 'mul', 'ReLU': 'relu', '-': 'sub', '/': 'div'}
