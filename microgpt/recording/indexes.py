"""A trace's indexes: derived from its columns once (while recording, or on the first load of
a file written without them) and stored in the binary file (codecs/binary.py, version 2), so
that a view costs what it shows, not what the trace holds (Perfetto's trace processor and a
columnar database do the same: pre-aggregate once, answer from the aggregates).

    run_start    array('q'), R + 1: the maximal runs of consecutive ids of one scope
    run_scope    array('I'), R: each run's scope; a scope's nodes are its runs (few: the
                 model enters most scopes once per position and layer)
    parent_ptr   array('I'), n + 1 } the reverse edges, CSR: the parents of node i are
    parent       array('I'), E     } parent[parent_ptr[i]:parent_ptr[i + 1]], in id order;
    parent_edge  array('I'), E     } parent_edge[k] is that edge's index in the forward columns
    dangling     array('I'): the non-constant nodes no op reads (the softmax probabilities
                 that are not the target, the loss), sorted: a group's figures include them
    backward_rank  array('i'), n: each node's place in the backward pass (0: the loss), -1 if unreached
    value        array('B'), n: 1 for a *value* (recording.names): a non-constant node read by an
                 op of another scope, or by none; a scope's values are its role's vector elements

Every one is computed with whole-column operations (sorts, maps, slices in C), not a
Python loop per node: for 5 million nodes a few seconds, once. The per-scope aggregates
and the per-run edge records built on these are in aggregates.py.
"""

from array import array
from bisect import bisect_left, bisect_right
from collections import Counter, deque
from itertools import accumulate, chain, compress, count, islice, repeat
from operator import eq, mul, ne, sub

from .ops import OP_CODE

INDEX_COLUMNS = (('run_start', 'q'), ('run_scope', 'I'), ('parent_ptr', 'I'), ('parent', 'I'),
                 ('parent_edge', 'I'), ('dangling', 'I'), ('backward_rank', 'i'), ('value', 'B'))
_CONST = OP_CODE['const']
_NOT_CONST = bytes(int(k != _CONST) for k in range(256))


def scope_runs(scope):
    """(run_start, run_scope): where the scope column changes value, found in C."""
    n = len(scope)
    if n == 0:
        return array('q', [0]), array('I')
    starts = array('q', chain((0,), compress(count(1), map(ne, islice(scope, 1, None), scope)), (n,)))
    return starts, array('I', map(scope.__getitem__, islice(starts, 0, len(starts) - 1)))


def owners(child_ptr):
    """array('I'): for each forward edge, the node it belongs to (its parent)."""
    n = len(child_ptr) - 1
    return array('I', chain.from_iterable(map(repeat, range(n), map(sub, islice(child_ptr, 1, None), child_ptr))))


def reverse_edges(child, child_ptr, n, owner=None):
    """(parent_ptr, parent, parent_edge): the reverse edges, each node's parents in id order
    (a stable sort of the edges by child keeps them so)."""
    edge = array('I', sorted(range(len(child)), key=child.__getitem__))
    owner = owners(child_ptr) if owner is None else owner
    parent = array('I', map(owner.__getitem__, edge))
    counts = Counter(child)
    ptr = array('I', accumulate(map(counts.get, range(n), repeat(0)), initial=0))
    return ptr, parent, edge


def contributions(local, grad, child_ptr, owner=None):
    """array('d'): per edge, local * grad(parent): the same product backward added into the child."""
    owner = owners(child_ptr) if owner is None else owner
    return array('d', map(mul, local, map(grad.__getitem__, owner)))


def dangling_nodes(op, parent_ptr):
    """Sorted ids of the non-constant nodes without a parent."""
    free = compress(count(), map(eq, parent_ptr, islice(parent_ptr, 1, None)))
    return array('I', (i for i in free if op[i] != _CONST))


def backward_ranks(order, n):
    """array('i'): the place of each node in `order` (the backward pass), -1 where absent."""
    rank = array('i', [-1]) * n
    for r, i in enumerate(order):
        rank[i] = r
    return rank


def values(op, scope, child, owner, dangling):
    """array('B'): 1 where a node is a value: marked through the edges that cross a scope's
    border and the dangling nodes, then constants cleared (all in C; ints as bit sets)."""
    n = len(op)
    marked = bytearray(n)
    crossing = map(ne, map(scope.__getitem__, owner), map(scope.__getitem__, child))
    deque(map(marked.__setitem__, compress(child, crossing), repeat(1)), maxlen=0)
    deque(map(marked.__setitem__, dangling, repeat(1)), maxlen=0)
    kept = int.from_bytes(marked, 'little') & int.from_bytes(op.tobytes().translate(_NOT_CONST), 'little')
    return array('B', kept.to_bytes(n, 'little'))


def build(op, scope, child, child_ptr, local, grad, backward_order):
    """Every index of INDEX_COLUMNS, and the contributions column: {name: array}."""
    n = len(op)
    owner = owners(child_ptr)
    run_start, run_scope = scope_runs(scope)
    parent_ptr, parent, parent_edge = reverse_edges(child, child_ptr, n, owner)
    dangling = dangling_nodes(op, parent_ptr)
    return {'run_start': run_start, 'run_scope': run_scope, 'parent_ptr': parent_ptr, 'parent': parent,
            'parent_edge': parent_edge, 'dangling': dangling, 'value': values(op, scope, child, owner, dangling),
            'backward_rank': backward_ranks(backward_order, n),
            'contrib': contributions(local, grad, child_ptr, owner)}


def run_of(run_start, i):
    """The index of the run holding node i."""
    return bisect_right(run_start, i) - 1


def dangling_in(dangling, a, b):
    """The dangling nodes with ids in a..b-1 (a slice of the sorted column)."""
    return dangling[bisect_left(dangling, a):bisect_left(dangling, b)]


def reach(ids, depth, ptr, nbr):
    """{id: hops}: the nodes reachable from `ids` along the CSR edges (ptr, nbr), up to `depth` hops
    (None: all); breadth-first, iterative (Trace.ancestors, descendants)."""
    seen = {i: 0 for i in ids}
    frontier = list(ids)
    d = 0
    while frontier and (depth is None or d < depth):
        d += 1
        nxt = []
        for i in frontier:
            for k in range(ptr[i], ptr[i + 1]):
                j = nbr[k]
                if j not in seen:
                    seen[j] = d
                    nxt.append(j)
        frontier = nxt
    return seen
