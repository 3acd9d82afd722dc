"""Contribution paths: a node's grad as the routes from the loss down to it.

    d = decompose(trace, node, k=5)
    d['paths']       # the k routes with the largest |product|, each from the loss down
    d['remainder']   # what all the other routes add: the floats that close the sum
    d['why_zero']    # when grad is 0: unused, a zero local derivative on every route, or cancelling

The maths. d loss / d v is a sum over every path from the loss down to v of the
product of the local derivatives along it. Backward never lists paths: it
accumulates, each node's grad = the sum of what its users passed down (local x
grad(user), Trace.uses), added in backward order. Both are the same sum, grouped
differently, so in floating point a path-by-path sum and the engine's grad differ
by rounding, and there may be 10^40 paths. Hence:

  a path's product  the local derivatives multiplied the way backward multiplies,
                    from the loss's grad 1.0 down: c = local * c at each edge. It is
                    exactly what backward would pass down that route were it the only one.
  the remainder     all other paths, not summed one by one: it is computed as
                    r1 = grad - s, s = the listed products added left to right from 0.0;
                    when the listed paths nearly cancel (|s| >> |grad|) one float cannot
                    close the sum, and r2 = grad - (s + r1), ... follow (rarely more than one).
  exact             (((0.0 + p1) + p2) + ... + pk) + r1 (+ r2 ...) == grad, bit for bit:
                    `decompose` checks it and says so in 'exact' (False only for a NaN or
                    infinite grad, which no sum of finite parts reaches).

The exact split of the grad itself is one level down, in Trace.uses: the contributions
of a node's users, added in backward order, give its grad bit for bit.

Which paths. The k routes with the fewest zero local derivatives, then the largest
|product| of the others: a best-first search from the node up to the loss, led by
the best route from the loss to each node (computed once per trace, `_best_to`),
so it expands little more than the routes it returns. A route through a dead ReLU
(local 0) therefore still shows when every route has one: it is the answer to
"why is this grad zero". NaN locals count as the largest (they explain a NaN grad).
"""

import heapq
import math
from array import array

from ..errors import InputError
from .ops import OP_CODE
from .sums import fsum

K = 5                   # paths listed by default
MAX_K = 50              # paths one call may ask for
MAX_CUT = 200           # zero edges listed when explaining a zero grad
WHOLE_PIECE = 1 << 16   # nodes whole_walk walks between two pauses (~35 ms at 5.1 M nodes)
_RELU, _MUL, _PARAM = OP_CODE['relu'], OP_CODE['mul'], OP_CODE['param']


class PathError(InputError):
    """A node or a k the paths cannot be asked for (the message names it)."""


def _weight(local):
    """(zeros, log|local|) of one edge: a zero is counted, not logged; NaN ranks first."""
    if local == 0:
        return 1, 0.0
    a = abs(local)
    return 0, (math.inf if a != a else math.log(a))


def _above(trace, node):
    """The ids from which `node` is reached going down the edges (it, its users, theirs, ...), or None
    when they are more than 1/8 of the trace: every route from the loss down to `node` runs through them
    only (a node on such a route uses `node` through the rest of the route), and so do the routes down
    to each of them."""
    pptr, parent, _ = trace.parents_index()
    limit = len(trace) // 8     # the last position's nodes at 4 x 64 (~410,000 above the deepest): 0.4-1.7 s
    seen, todo = {node}, [node]
    while todo:
        x = todo.pop()
        for p in parent[pptr[x]:pptr[x + 1]]:
            if p not in seen:
                seen.add(p)
                todo.append(p)
        if len(seen) > limit:
            return None
    return seen


def _walk(trace, node):
    """(zeros, logp, counts) per node above `node` (every node when `node` lies under most of the trace:
    then kept per trace, whole_walk): the best route from the loss down to it, (fewest zero locals, largest
    log|product| of the others), (-1, -inf) if backward never reached it; and how many routes lead there,
    as a float (exact below 2**53, so every count `count_text` writes in digits; a deep node of a 4 x 64
    step has ~10^65). One walk from the loss down, a node's users before it: over every node, or only over
    those above `node` (_above: a node near the loss has a few thousand, not 5 M; issue 25: the why panel's
    first click walked all 9.8 M edges twice, 5.7 s). Both walks visit the nodes above `node` in the same
    order: the same results for them."""
    got = trace._cache.get('paths_walk')
    if got is not None:
        return got
    near = _above(trace, node)
    if near is None:
        return whole_walk(trace)
    rank = trace.backward_rank
    order = sorted((i for i in near if rank[i] >= 0), key=rank.__getitem__)
    zeros, logp, counts = dict.fromkeys(near, -1), dict.fromkeys(near, -math.inf), dict.fromkeys(near, 0.0)
    if trace.meta['loss_id'] in near:
        _start_at_loss(trace, zeros, logp, counts)
    _relax(trace, order, zeros, logp, counts, near)
    return zeros, logp, counts


def walked(trace):
    """Whether the trace keeps its whole walk (whole_walk): every node's paths read it at once."""
    return 'paths_walk' in trace._cache


def needs_whole_walk(trace, node):
    """Whether `node`'s paths walk every node of the trace (it lies under most of it) and that walk is not
    kept yet: the explorer waits for its background walk (whole_walk) then, rather than walk beside it."""
    return not walked(trace) and _above(trace, node) is None


def whole_walk(trace, pause=None):
    """_walk over every node, kept per trace as three arrays, 20 B a node (lists of floats and big ints held
    445 MB at 5.1 M nodes: the server's memory at rest over 1 GB), put in the trace's cache in one
    assignment when complete. pause(done, total) between pieces of WHOLE_PIECE nodes: the explorer walks
    a big step in the background (5.5 s at 5.1 M nodes), yielding to requests there."""
    n, order = len(trace), trace.backward_order
    zeros, logp, counts = array('i', [-1]) * n, array('d', [-math.inf]) * n, array('d', bytes(8 * n))
    _start_at_loss(trace, zeros, logp, counts)
    for start in range(0, len(order), WHOLE_PIECE):
        if pause is not None:
            pause(start, len(order))
        _relax(trace, order[start:start + WHOLE_PIECE], zeros, logp, counts)
    walk = trace._cache['paths_walk'] = (zeros, logp, counts)
    return walk


def _start_at_loss(trace, zeros, logp, counts):
    """The loss: its own route, no zero local, log|product| 0, one route."""
    loss = trace.meta['loss_id']
    zeros[loss], logp[loss], counts[loss] = 0, 0.0, 1.0


def _relax(trace, order, zeros, logp, counts, near=None):
    """Pass each node's best route and route count down its edges, `order` in backward's order (a node's
    users before it); with `near`, only to the nodes in it (the others lead to no route down to the node)."""
    ptr, child, local = trace.child_ptr, trace.child, trace.local
    for p in order:
        zp = zeros[p]
        if zp < 0:
            continue
        lp, k = logp[p], counts[p]
        for e in range(ptr[p], ptr[p + 1]):
            c = child[e]
            if near is not None and c not in near:
                continue
            counts[c] += k
            z, w = _weight(local[e])
            z += zp
            w += lp
            zc = zeros[c]
            if zc < 0 or z < zc or (z == zc and w > logp[c]):
                zeros[c], logp[c] = z, w


def _best_to(trace, node):
    """(zeros, logp) of _walk: the best route from the loss down to each node above `node`."""
    return _walk(trace, node)[:2]


def path_count(trace, node):
    """How many routes lead from the loss down to `node`: a float, exact below 2**53 (see _walk)."""
    return _walk(trace, node)[2][node]


def count_text(n):
    """A route count as every surface writes it (page, terminal, JSON): its digits below 10^15 (exact:
    see _walk), else two significant digits ('3.2e+41')."""
    return str(int(n)) if n < 10 ** 15 else f'{float(n):.2g}'


def top_paths(trace, node, k=K):
    """The k routes from the loss down to `node` with the fewest zero local derivatives,
    then the largest |product|: [{'nodes': [loss, ..., node], 'edges': [edge index, ...],
    'locals': [...], 'product': float, 'zeros': int}], in that order."""
    _check(trace, node, k)
    zeros, logp = _best_to(trace, node)
    if zeros[node] < 0:
        return []
    loss = trace.meta['loss_id']
    pptr, parent, edge = trace.parents_index()
    local = trace.local
    # entries: (zeros so far + best zeros above, -(log so far + best log above), tie, node, z, w, route)
    # route: (edge, rest) linked up from `node`, so the loss end is the head when complete
    heap = [(zeros[node], -logp[node], 0, node, 0, 0.0, None)]
    tie = 1
    found = []
    while heap and len(found) < k:
        _, _, _, x, z, w, route = heapq.heappop(heap)
        if x == loss:
            found.append(route)
            continue
        for j in range(pptr[x], pptr[x + 1]):
            p = parent[j]
            zp = zeros[p]
            if zp < 0:              # a user backward never reached passes nothing down
                continue
            dz, dw = _weight(local[edge[j]])
            z2, w2 = z + dz, w + dw
            heapq.heappush(heap, (z2 + zp, -(w2 + logp[p]), tie, p, z2, w2, (edge[j], route)))
            tie += 1
    out = [_path(trace, route, loss) for route in found]
    out.sort(key=lambda d: (d['zeros'], -_magnitude(d['product'])))   # stable: search order for equals
    return out


def _path(trace, route, loss):
    """A found route as the loss-first lists, its product multiplied as backward does."""
    edges = []
    while route is not None:
        edges.append(route[0])
        route = route[1]
    ptr, child, local = trace.child_ptr, trace.child, trace.local
    nodes, locals_, c, zeros = [loss], [], 1.0, 0
    for e in edges:                 # the loss end first
        lg = local[e]
        locals_.append(lg)
        c = lg * c                  # backward: contribution = local_grad * grad(user)
        zeros += lg == 0
        nodes.append(child[e])
    assert all(ptr[nodes[m]] <= edges[m] < ptr[nodes[m] + 1] for m in range(len(edges)))
    return {'nodes': nodes, 'edges': edges, 'locals': locals_, 'product': c, 'zeros': zeros}


def _magnitude(x):
    return math.inf if x != x else abs(x)


def close_sum(grad, parts):
    """(remainder floats, exact): the floats that, added after `parts` (left to right from
    0.0), give `grad` bit for bit; exact is False only when no finite sum can (NaN/inf)."""
    s = 0.0
    for p in parts:
        s += p
    rest = []
    if not math.isfinite(grad):
        return [grad - s], False
    for _ in range(8):
        if s == grad:
            return rest, True
        r = grad - s
        rest.append(r)
        s += r
    return rest, s == grad


def decompose(trace, node, k=K):
    """The grad of `node` as its top-k paths and a remainder that closes the sum exactly
    (see the module docstring): {'node', 'grad', 'paths', 'listed_sum', 'remainder',
    'remainder_value', 'exact', 'order', 'count', 'others', 'why_zero'}."""
    paths = top_paths(trace, node, k)
    g = trace.grad[node]
    products = [p['product'] for p in paths]
    rest, exact = close_sum(g, products)
    s = 0.0
    for p in products:
        s += p
    total = path_count(trace, node)
    return {'node': node, 'grad': g, 'paths': paths, 'listed_sum': s, 'remainder': rest,
            'remainder_value': fsum(rest),
            'exact': exact, 'count': total, 'others': total - len(paths),
            'order': 'the listed products left to right from 0.0, then the remainder floats',
            'why_zero': why_zero(trace, node, paths)}


def why_zero(trace, node, paths=None):
    """Why a grad is exactly 0 (None when it is not): {'kind', 'text', 'edges'?}.

    kind 'loss-free': backward never reached it (nothing the loss depends on uses it);
    'zero-local': every route from the loss crosses a local derivative of exactly 0
    ('edges': those edges, e.g. dead ReLUs, each with its node, child, op and input);
    'cancel': routes carry non-zero products that add up to exactly 0."""
    g = trace.grad[node]
    if g != 0:
        return None
    zeros, _ = _best_to(trace, node)
    name = trace.name(node)
    if zeros[node] < 0:
        cell = trace.param_cell(node)
        if cell is not None:
            return {'kind': 'loss-free', 'text': f"{name} is not used by this step: no position reads "
                                                f"{cell[0]} row {cell[1]}" + _row_hint(trace, cell)}
        users = trace.parents(node)
        if not users:
            return {'kind': 'loss-free', 'text': f"nothing uses {name}: the loss does not depend on it"
                                                 + (" (the loss reads only probs[target])"
                                                    if trace.scope_of(node).role == 'probs' else '')}
        return {'kind': 'loss-free', 'text': f"{name} is used only by nodes the loss does not depend on"}
    if zeros[node] == 0:
        return {'kind': 'cancel', 'text': "routes from the loss carry non-zero products that add up to exactly 0"}
    cut = zero_cut(trace, node)
    kinds = {}
    for c in cut:
        kinds[c['why']] = kinds.get(c['why'], 0) + 1
    text = (f"every route from the loss down to {name} crosses a local derivative of 0: "
            + ', '.join(f"{w} x{n}" for w, n in kinds.items()))
    return {'kind': 'zero-local', 'text': text, 'edges': cut[:MAX_CUT], 'n_edges': len(cut)}


def _row_hint(trace, cell):
    """' (its token 'z' is not in the document)' for an embedding row, else ''."""
    name, r, _ = cell
    tokens, chars = trace.meta.get('tokens'), trace.meta.get('chars')
    if name == 'wte' and tokens is not None and chars is not None:
        ch = repr(chars[r]) if r < len(chars) else 'BOS'
        return f" (token {ch} is not an input of this document)"
    if name == 'wpe':
        return f" (position {r} is past the document's {len(trace.positions())} positions)"
    return ''


def zero_cut(trace, node):
    """The edges of local derivative 0 that stop the loss from reaching `node`: each from a
    node the loss reaches through non-zero locals to one that leads on to `node`, in id order.
    [{'user', 'input', 'edge', 'op', 'why', 'x'}]."""
    zeros, _ = _best_to(trace, node)
    pptr, parent, edge = trace.parents_index()
    local, data, op, ptr = trace.local, trace.data, trace.op, trace.child_ptr
    out = []
    for x in sorted(trace.descendants([node])):
        for j in range(pptr[x], pptr[x + 1]):
            p, e = parent[j], edge[j]
            if zeros[p] == 0 and local[e] == 0:
                arg = trace.child[e]
                if op[p] == _RELU:
                    why = 'dead ReLU (input <= 0)'
                elif op[p] == _MUL:
                    why = 'multiplication by 0'
                else:
                    why = f'{trace.op_name(p)} with derivative 0'
                out.append({'user': p, 'input': arg, 'edge': e, 'op': trace.op_name(p), 'why': why,
                            'x': data[arg], 'arg': e - ptr[p]})
    return out


def _check(trace, node, k):
    if not isinstance(node, int) or isinstance(node, bool) or not 0 <= node < len(trace):
        raise PathError(f"node {node!r} is not in this trace; node ids are 0..{len(trace) - 1}")
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise PathError(f"k must be an integer in 1..{MAX_K}, got {k!r}")
    if 'loss_id' not in trace.meta or not len(trace.backward_order):
        raise PathError("this trace has no backward pass: paths start at the loss")
