"""Select: a trace and a question ("token 3", "layer 0", "wq[3][5]") -> the node ids to show.

A `Selection` is the interior (the ops the question is about) plus its boundary:
`inputs`, nodes outside the interior whose values feed it (parameters, keys and
values cached from earlier positions), and `outputs`, nodes outside that use it
(later positions reading this position's keys, the mean loss). The boundary is
what makes a cut-out readable: every grad in the interior came in through an
output, every value through an input. `focus` holds the nodes the view is about
(a parameter cell, a matrix's cells, the centre of a neighbourhood); fold never
hides them in a group.

Every function reads only the Trace; names the trace lacks raise its
TraceQueryError, whose one-line message lists what exists.
"""

from array import array
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass, field
from itertools import chain, compress, repeat, starmap
from operator import add, ge, lt, or_

from microgpt.recording.cells import TraceQueryError, parse_param
from microgpt.recording.runs import SCATTERED, Ids, Runs, id_runs, run_pieces, scattered, scopes_of
from microgpt.recording.shares import whole_scopes
from microgpt.recording.uses import stored_uses

from .spec import DIRECTIONS, check, check_options


@dataclass(frozen=True)
class Selection:
    kind: str               # 'document' | 'token' | 'layer' | 'head' | 'param' | 'matrix' | 'node' | 'function' | 'line'
    title: str              # one line naming the view, for the picture's caption
    nodes: tuple            # interior node ids, sorted
    inputs: tuple           # outside nodes feeding the interior, sorted
    outputs: tuple          # outside nodes using the interior (and not inputs), sorted
    focus: tuple = ()       # ids the view is about; never folded into a group
    matrix: str = None      # matrix view: the matrix, drawn as one heat-map
    positions: tuple = ()   # positions the interior spans, sorted
    query: dict = field(default_factory=dict)   # what was asked, for captions and JSON


def _make(trace, kind, title, interior, focus=(), matrix=None, query=None, ordered=False, edges_of=None, boundary=None):
    """The Selection of `interior` with its boundary computed from the trace's edges;
    `ordered`: interior is a list, tuple or Ids of ascending ids already (Trace.nodes, a document's
    runs: no sort of a whole document's 4.9 M ids); `edges_of`: the ids of the interior (sorted) whose edges can
    leave it, when others' cannot (a matrix's cells: no children, their parents its uses);
    `boundary`: (inputs, outputs), sorted, when known (a matrix's, from its use records)."""
    ids = interior if ordered else sorted(interior)
    sids = scopes_of(trace, ids)
    whole = whole_scopes(trace, None, len(ids), sids)
    if whole is not None:       # a token, layer, head, document: from the run records
        inputs, outputs = _scopes_boundary(trace, whole)
    elif boundary is not None:
        inputs, outputs = boundary
    elif edges_of is not None:
        inputs, outputs = _scattered_boundary(trace, ids, edges_of)
    else:
        inputs, outputs = _boundary(trace, ids)
    scopes = trace.scopes
    positions = sorted({scopes[sid][0] for sid in sids} - {None})
    return Selection(kind=kind, title=title, nodes=ids if isinstance(ids, (tuple, Ids)) else tuple(ids), inputs=tuple(inputs),
                     outputs=tuple(outputs), focus=tuple(sorted(focus)), matrix=matrix,
                     positions=tuple(positions), query=dict(query or {}))


def _boundary(trace, ids):
    """(inputs, outputs), sorted, of the interior `ids` (sorted): one slice of each edge column per
    run of ids (views are mostly a few long runs); of each, in C, only the ends outside the run,
    then only those checked against the other runs."""
    ptr, child = trace.child_ptr, trace.child
    pptr, parent, _ = trace.parents_index()
    runs = None if scattered(ids) else id_runs(ids)
    if runs is None or len(runs) > SCATTERED:     # a matrix's uses: each piece's edges read in C, one byte a node
        return _scattered_boundary(trace, ids)
    inputs, outputs = set(), set()
    for a, b in runs:
        for got, ends in ((inputs, child[ptr[a]:ptr[b]]), (outputs, parent[pptr[a]:pptr[b]])):
            got.update(compress(ends, map(or_, map(lt, ends, repeat(a)), map(ge, ends, repeat(b)))))
    inputs = _outside(inputs, runs)
    return inputs, sorted(set(_outside(outputs, runs)).difference(inputs))


_OUTSIDE = bytes((1, 0)) + bytes(254)      # a node's mark (1: in the interior) -> 1 where it is not


def _scattered_boundary(trace, ids, edges_of=None):
    """_boundary of scattered ids (a matrix's 16,384 cells and 196,608 uses): the interior marked in a
    byte a node; the ends of each piece's edges (recording.runs.run_pieces) read in C, one slice of each
    edge column where its ids are consecutive, those outside picked by their marks. `edges_of`: the
    ids (sorted) whose edges are read (_make), else all."""
    ptr, child = trace.child_ptr, trace.child
    pptr, parent, _ = trace.parents_index()
    inside = bytearray(len(trace))
    for part in _parts(trace, ids):
        if part[-1] - part[0] == len(part) - 1:
            inside[part[0]:part[-1] + 1] = b'\x01' * len(part)
        else:
            deque(map(inside.__setitem__, part, repeat(1)), maxlen=0)
    parts = _parts(trace, ids if edges_of is None else edges_of)
    found = []
    for at, col in ((ptr, child), (pptr, parent)):
        ends = array(col.typecode)
        for part in parts:
            if part[-1] - part[0] == len(part) - 1:
                ends += col[at[part[0]]:at[part[-1] + 1]]
            else:
                ends.extend(map(col.__getitem__, chain.from_iterable(
                    map(range, map(at.__getitem__, part), map(at.__getitem__, map(add, part, repeat(1)))))))
        found.append(set(compress(ends, bytes(map(inside.__getitem__, ends)).translate(_OUTSIDE))))
    inputs, outputs = found
    return sorted(inputs), sorted(outputs.difference(inputs))


def _parts(trace, ids):
    """The sorted ids `ids` cut where the trace's runs of one scope change (recording.runs.run_pieces),
    or whole when they lie in many."""
    pieces = run_pieces(trace, ids, max(64, len(ids) // 64)) if ids else []
    return [ids] if pieces is None else [ids[lo:hi] for _, lo, hi in pieces]


def _scopes_boundary(trace, whole):
    """(inputs, outputs), sorted, of an interior holding every node of the scopes `whole`. An
    edge that crosses its border crosses a scope's, so the run records (recording.aggregates)
    name it: inputs are the children its runs read in other scopes (rec_kids); outputs, the
    nodes of runs outside that read one of its nodes (each such child's parents in that run,
    a slice of the reverse edges by bisection). Work per run and per crossing, not per edge; a scope
    one record reads whole (a matrix every position reads: 12 of them at 4 x 64), its nodes added once."""
    starts, sids = trace.scope_runs()
    rptr, rscope = trace.index('rec_ptr'), trace.index('rec_scope')
    kptr, kids = trace.index('rec_kid_ptr'), trace.index('rec_kids')
    pptr, parent, _ = trace.parents_index()
    inputs, outputs, read_whole, sizes = set(), set(), set(), {}
    for r, own in enumerate(sids):
        inside = own in whole
        for j in range(rptr[r], rptr[r + 1]):
            c = rscope[j]
            if c == own or (c in whole) == inside or c in read_whole:
                continue
            if inside:
                inputs.update(kids[kptr[j]:kptr[j + 1]])
                if c not in sizes:
                    sizes[c] = sum(b - a for a, b in trace.runs_of_scope()[c])
                if kptr[j + 1] - kptr[j] == sizes[c]:
                    read_whole.add(c)   # its distinct kids are every node of scope c: c's other records add none
                continue
            a, b = starts[r], starts[r + 1]
            for k in kids[kptr[j]:kptr[j + 1]]:
                ps = parent[pptr[k]:pptr[k + 1]]
                outputs.update(ps[bisect_left(ps, a):bisect_left(ps, b)])
    return sorted(inputs), sorted(outputs.difference(inputs))


def _outside(ids, runs):
    """The ids (a set) outside the ranges `runs` (ascending), sorted: what lies between them,
    cut by bisection (a matrix's 100,000 uses, not one look-up each)."""
    if len(runs) > SCATTERED:      # scattered (a matrix's uses): one set difference in C
        return sorted(set(ids).difference(chain.from_iterable(starmap(range, runs))))
    xs, keep, k = sorted(ids), [], 0
    for a, b in runs:
        lo = bisect_left(xs, a, k)
        keep.extend(xs[k:lo])
        k = bisect_left(xs, b, lo)
    keep.extend(xs[k:])
    return keep


def _quote(s):
    return f"'{s}'"


def _token_text(trace, pos):
    """"'c' -> 'h'": the input token at `pos` and the target it is trained to predict."""
    strs = trace.meta.get('token_strs')
    if not strs or pos + 1 >= len(strs):
        return ''
    return f"{_quote(strs[pos])} -> {_quote(strs[pos + 1])}"


MAX_TITLE_DOC = 60      # characters of the document a title names (a saved trace's doc may be of any length)


def _doc(trace):
    doc = trace.meta.get('doc')
    if doc is None:
        return ''
    return f" of {_quote(doc if len(doc) <= MAX_TITLE_DOC else doc[:MAX_TITLE_DOC - 1] + chr(0x2026))}"


def document_view(trace):
    """The whole document: every op of every position (parameters are its inputs)."""
    n = len(trace.positions())
    return _make(trace, 'document', f"the whole document{_doc(trace)}: {n} positions", non_params(trace),
                 query={'document': True}, ordered=True)


def non_params(trace):
    """The ids of every node but the parameters, as Ids: their runs found in C and kept as runs (a whole
    document's 4.9 M ids at 4 x 64: no int made, and none walked again by its fold and the view cache)."""
    param = trace.op_names.index('param') if 'param' in trace.op_names else -1
    ops = trace.op.tobytes().translate(bytes(int(k != param) for k in range(256)))
    starts, ends, k = array('q'), array('q'), 0
    while (a := ops.find(1, k)) >= 0:
        b = ops.find(0, a)
        k = len(ops) if b < 0 else b
        starts.append(a)
        ends.append(k)
    return Ids(Runs(starts, ends))


def token_view(trace, pos):
    """Every op of one position: embedding, each layer, logits and its loss term."""
    ids = trace.nodes(pos=pos)
    return _make(trace, 'token', f"token {pos}{_doc(trace)}: {_token_text(trace, pos)}", ids,
                 query={'token': pos}, ordered=True)


def layer_view(trace, layer, pos=None):
    """One transformer layer (attention and MLP), at every position or at one."""
    ids = trace.nodes(layer=layer, pos=pos)
    where = f" at token {pos} ({_token_text(trace, pos)})" if pos is not None else ' at every position'
    return _make(trace, 'layer', f"layer {layer}{where}{_doc(trace)}", ids,
                 query={'layer': layer, 'token': pos}, ordered=True)


def head_view(trace, layer, head, pos=None):
    """One attention head (logits, softmax weights, weighted sum of values)."""
    ids = trace.nodes(layer=layer, head=head, pos=pos)
    where = f" at token {pos} ({_token_text(trace, pos)})" if pos is not None else ' at every position'
    return _make(trace, 'head', f"layer {layer} head {head}{where}{_doc(trace)}", ids,
                 query={'layer': layer, 'head': head, 'token': pos}, ordered=True)


def param_view(trace, spec, depth=1):
    """One parameter cell, its uses at every position and what they feed, `depth` hops on.

    The edges from the cell to its uses carry the contributions that backward
    added into the cell's grad; they sum to it (trace.uses gives their order).
    """
    check('depth', depth)
    name, r, c = parse_param(spec) if isinstance(spec, str) else spec
    if r is None:
        raise TraceQueryError(f"{name!r} is a whole matrix; a cell view needs a cell like '{name}[0][0]' "
                              f"(or ask for the matrix view)")
    (cell,) = trace.param_nodes((name, r, c))
    ids = trace.descendants([cell], depth)
    uses = len(trace.parents(cell))
    return _make(trace, 'param', f"{trace.name(cell)}{_doc(trace)}: {uses} uses, downstream depth {depth}",
                 ids, focus=(cell,), query={'param': f"{name}[{r}][{c}]", 'depth': depth})


def matrix_view(trace, name):
    """A whole parameter matrix (shown as a heat-map) and its uses at every position."""
    cells = trace.param_nodes(name)     # consecutive ids: their parents one slice of the reverse edges
    stored = stored_uses(trace, name)   # its uses and boundary from the use records (recording.uses), when held
    if stored is not None:
        uses, boundary = stored[0], stored[1:]
    else:
        pptr, parent, _ = trace.parents_index()
        uses, boundary = sorted(set(parent[pptr[cells[0]]:pptr[cells[-1] + 1]])), None
    rows, cols = trace.param_shapes[name]
    ids = cells + uses if not uses or cells[-1] < uses[0] else sorted(cells + uses)
    # a cell (a parameter) has no children and its parents are the uses: only the uses' edges can leave
    return _make(trace, 'matrix', f"{name} ({rows}x{cols}){_doc(trace)}: {len(uses)} uses",
                 ids, focus=cells, matrix=name, query={'param': name}, ordered=True, edges_of=uses, boundary=boundary)


def node_view(trace, node, depth=2, direction='both'):
    """A node and what is `depth` hops before it (ancestors), after it, or both."""
    check_options(depth=depth, direction=direction)
    if node == 'loss':
        node = trace.meta['loss_id']
    ids = {}
    if direction in ('both', 'ancestors'):
        ids.update(trace.ancestors([node], depth))
    if direction in ('both', 'descendants'):
        ids.update(trace.descendants([node], depth))
    return _make(trace, 'node', f"{trace.name(node)} ({trace.scope_path(node)}){_doc(trace)}: "
                 f"{direction}, depth {depth}", ids, focus=(node,),
                 query={'node': node, 'depth': depth, 'direction': direction})


def function_view(trace, name):
    """Every node made inside one of the script's functions (a trace recorded by
    `microgpt-graph record`), with what feeds it and what uses it."""
    ids = trace.nodes_in_function(name)
    return _make(trace, 'function', f"{name}(): {len(ids)} nodes made inside it", ids,
                 query={'function': name})


def line_view(trace, line, file=None):
    """Every node made by one source line of the script (or of `file` in its folder)."""
    ids = trace.nodes_at_line(line, file)
    src = trace.source_of(ids[0])
    code = f" `{src.text}`" if src is not None and src.text else ''
    return _make(trace, 'line', f"{src.file if src else file} line {line}{code}: {len(ids)} nodes", ids,
                 query={'line': line, 'file': src.file if src else file})


def select(trace, *, token=None, layer=None, head=None, param=None, node=None, depth=None, direction=DIRECTIONS[0],
           function=None, line=None, document=False):
    """The view a query names, by precedence: document (every op), param (a cell, or a whole matrix),
    node, function, line, head, layer, else token (default: the last position; for
    a script's trace without positions, the loss's neighbourhood). `token` narrows
    a layer or head view to one position. The query's limits are graphviz_export.spec's."""
    check_options(token=token, layer=layer, head=head, param=param, node=node, function=function, line=line)
    if document:
        return document_view(trace)
    if function is not None and node is None and param is None:
        return function_view(trace, function)
    if line is not None and node is None and param is None:
        return line_view(trace, line)
    if param is not None:
        name, r, _ = parse_param(param) if isinstance(param, str) else param
        if r is None:
            return matrix_view(trace, name)
        return param_view(trace, param, 1 if depth is None else depth)
    if node is not None:
        return node_view(trace, node, 2 if depth is None else depth, direction)
    if head is not None:
        return head_view(trace, _default_layer(trace, layer), head, token)
    if layer is not None:
        return layer_view(trace, layer, token)
    if token is None:
        positions = trace.positions()
        if not positions and trace.source is not None and 'loss_id' in trace.meta:
            return node_view(trace, 'loss', 2 if depth is None else depth, direction)
        if not positions:
            raise TraceQueryError("this trace has no positions to show")
        token = positions[-1]
    return token_view(trace, token)


def _default_layer(trace, layer):
    if layer is not None:
        return layer
    layers = trace.layers()
    if len(layers) == 1:
        return layers[0]
    raise TraceQueryError(f"a head view needs a layer; layers: {', '.join(map(str, layers))}")
