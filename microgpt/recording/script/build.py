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
  params   --params NAME, else the script's `state_dict` global (dict of name ->
           matrix / vector / Value of the class), else its `params` or `parameters`
           global (a list), else a guess: the leaves made before the script's first
           op (step 1) or before step N that backward reaches and the loss uses like
           a parameter, not only by adding them (params.py; named 'params', one row)
  op       'param'; 'const' (a leaf made inside an op method, e.g. the 2 in x * 2);
           'leaf'; else the op's name: micrograd's `_op` label when there is one,
           otherwise the op method that made it (__add__ -> add, tanh -> tanh); a
           node made by a plain function outside the class is named after it
  source   per node an index into `sources`: (file, call line, enclosing functions,
           the call line's text, op file, op line, grad line): the op line built the
           node; the grad line holds its derivative (the op line itself when the
           derivative is stored at creation, for micrograd the line of the closure's
           first addition; the other edges' lines in meta, see closures.py)
  local    microgpt convention: the stored `_local_grads`; micrograd convention:
           each node's `_backward` closure called once with grad 1 on the node,
           every addition to a child's grad logged (grads saved and restored around
           the call): one edge per addition, in the order the closure makes them,
           so a*a with a set of one child has two edges, local a each, as micrograd
           adds a*out.grad twice (closures.py)

An op with a port op's name (add, mul, pow, log, exp, relu) keeps the port's op code
only when its arity matches and replaying the port's forward on the children's data
gives exactly the node's data; the node check then checks it like the port's. Any
other op (tanh, gelu, sigmoid, ...) is probed here:
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
from .closures import TABLE, closure_reader
from .params import candidates, guess, named_params, params_by_name

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


def build_columns(rec, root, namespace, params_name=None):
    """The Trace columns (a dict of plain data) of the graph under `root`; `params_name`:
    --params NAME (params.params_by_name), else the globals or the guess of params.py."""
    cls, kids_attr = rec.cls, rec.children_attr
    closures = rec.convention == 'micrograd'
    topo = topo_order(root, kids_attr)
    window = {id(v): i for i, v in enumerate(rec.nodes)}

    # -- parameters --------------------------------------------------------------------------
    creators = rec.creators

    def op_of(v):
        w = window.get(id(v))
        creator = creators[w] if w is not None else None
        return _op_label(v, rec.code_ops.get(id(creator)), creator, rec.args.get(w))[0]

    def is_const(v):
        w = window.get(id(v))
        return w is not None and id(creators[w]) in rec.class_ids

    def is_leaf(v):
        return not getattr(v, kids_attr)

    left_out, could_name = {}, []
    if params_name is not None:
        params, found_by = params_by_name(namespace, params_name, cls, is_leaf), f'--params {params_name}'
    else:
        params, found_by = named_params(namespace, cls)
    if params is None:
        if rec.step == 1:
            first_op = next((i for i, v in enumerate(rec.nodes) if getattr(v, kids_attr)), len(rec.nodes))
            cells = [v for v in rec.nodes[:first_op] if id(creators[window[id(v)]]) not in rec.class_ids]
            found_by = 'leaves made before the first op'
        else:
            cells = list(rec.early)
            known = {id(v) for v in cells}
            cells += [v for v in topo if id(v) not in window and id(v) not in known
                      and not getattr(v, kids_attr)]
            found_by = f'leaves made before step {rec.step}'
        cells, out = guess(cells, topo, lambda v: getattr(v, kids_attr), op_of, is_const)
        for why, leaves in out.items():
            if leaves:
                w = window.get(id(leaves[0]))
                src = rec.places.sources[rec.source[w]] if w is not None else None
                if src is None:
                    made = 'made before the step'
                else:
                    text = src.text if len(src.text) <= 50 else src.text[:47] + '...'
                    made = (f"line {src.line}" if src.file == rec.places.script else f"{src.file} line {src.line}"
                            ) + f" `{text}`"
                left_out[why] = [len(leaves), made]
        params = [('params', 1, len(cells), cells)] if cells else []
        could_name = candidates(namespace, cls, is_leaf)

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
    read_closure = closure_reader()
    closure_lines = []      # [source id, [line per edge], [assigned edges]] (closures.py)

    def grad_source(src, lines, assigned):
        """The source id of a closure node: src with the line of its first edge as grad
        line, interned per (src, lines, assigned); lines beyond one go to the table."""
        gl = lines[0] or sources[src].grad_line      # 0: a _backward without code (no def line)
        extra = (tuple(lines), tuple(assigned)) if assigned or len(set(lines)) > 1 else None
        key = (src, gl, extra)
        k = regrad.get(key)
        if k is None:
            if gl == sources[src].grad_line and extra is None:
                k = src
            else:
                k = len(sources)
                sources.append(sources[src]._replace(grad_line=gl))
                if extra is not None:
                    closure_lines.append([k, list(lines), list(assigned)])
            regrad[key] = k
        return k


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
        if closures:   # one edge per addition the closure makes (closures.py)
            edges = read_closure(v, sorted({id(c): c for c in kids}.values(), key=lambda c: index[id(c)]))
            kids, locs = [e[0] for e in edges], [e[1] for e in edges]
            source[-1] = grad_source(src, [e[2] for e in edges], [k for k, e in enumerate(edges) if e[3]])
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
            'convention': rec.convention, 'params_from': found_by, 'params_count': n_params,
            'params_left_out': left_out, 'params_globals': could_name, TABLE: closure_lines,
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
