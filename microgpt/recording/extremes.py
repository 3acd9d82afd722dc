"""The extremes of a recorded step: where the largest numbers are, to start a search from.

    largest_grads(trace, 10)      # [(node, grad)]: the largest |grad| first
    largest_contribs(trace, 10)   # [(user, input, edge, contribution)]: the largest |local x grad(user)|
    largest_changes(rows, 10)     # update rows (Adam's step) with the largest |delta| first

Every node counts, constants included: for 'emma' the largest |grad| is the 1/n of the
mean loss (16.13 = the sum of the position losses), a number no group's label shows
because a constant is not a value of its group (fold/summary.py). NaN ranks above
every number (it is what a debugger looks for first); ties go to the smaller id.

The largest contributions are a figure of the step, not of a view: found once per trace (the MAX_K
largest, kept in its cache: a call's k are their first k), piece by piece over the edges without
building the whole column (5.1 M nodes, 9.8 M edges: 3.1 s the first time, 1.0 s each later call,
80 MB kept, before), so the explorer finds them in the background after a big step's first view.
"""

import heapq
import math
from itertools import compress, count, repeat
from operator import ge, ne

from .codecs.validate import owner

MAX_K = 100     # entries one call may ask for
STRIDE = 64     # largest's bound: from every 64th value
PIECE = 1 << 18     # nodes of one piece of largest_contribs' walk (~0.5 M edges, ~0.1 s: pause between pieces)


def _key(x):
    return math.inf if x != x else abs(x)


def largest(values, k):
    """Indexes of the k largest |values| (NaN first), ties by index. Without a NaN, a bound read from every
    STRIDE-th value (the k-th largest of a part is at most the whole's) leaves a few candidates, found in C:
    a Python key per value took 0.9 s for the grads of a 5 M-node step, 5.7 s for its 9.8 M contributions."""
    n = len(values)
    sample = values[::STRIDE]
    total = sum(values)     # NaN if a value is (or +inf and -inf are: then the exact test); 5x faster than it
    if len(sample) < 4 * k or (total != total and any(map(ne, values, values))):
        return heapq.nsmallest(k, range(n), key=lambda i: (-_key(values[i]), i))
    bound = heapq.nlargest(k, map(abs, sample))[-1]
    near = compress(count(), map(ge, map(abs, values), repeat(bound)))
    return heapq.nsmallest(k, near, key=lambda i: (-abs(values[i]), i))


def largest_grads(trace, k=10):
    """[(node, grad)] of the k largest |grad| (NaN first), ties by id."""
    grad = trace.grad
    return [(i, grad[i]) for i in largest(grad, k)]


def largest_contribs(trace, k=10, pause=None):
    """[(user, input, edge index, contribution)] of the k (<= MAX_K) largest |contribution| over every
    edge: what one use passed down (Trace.contrib), ties by edge index. The MAX_K largest are found
    once per trace (kept in its cache): the k largest of each piece of PIECE nodes' edges
    (Trace.contrib_slice: the column's numbers, never the whole column made), then of those.
    pause(done, total) between pieces (the explorer's background job yields to requests there)."""
    top = trace._cache.get('contrib_top')
    if top is None:
        top = trace._cache['contrib_top'] = _top_contribs(trace, pause)
    return top[:k]


def ranked(trace):
    """Whether the trace keeps its largest contributions (largest_contribs answers at once)."""
    return 'contrib_top' in trace._cache


def _top_contribs(trace, pause):
    ptr, child, n = trace.child_ptr, trace.child, len(trace)
    edges, values = [], []
    for a in range(0, n, PIECE):
        if pause is not None:
            pause(a, n)
        part = trace.contrib_slice(a, min(a + PIECE, n))
        base = ptr[a]
        for j in largest(part, MAX_K):     # the whole's k largest are among its pieces' k largest
            edges.append(base + j)
            values.append(part[j])
    # the pieces' in edge order: an index into `values` orders as its edge does (ties)
    return [(owner(ptr, edges[j]), child[edges[j]], edges[j], values[j]) for j in largest(values, MAX_K)]


def largest_changes(rows, k=10):
    """The k update rows (steps/update.adam_update) with the largest |delta|, ties by id."""
    return heapq.nsmallest(k, rows, key=lambda r: (-_key(r['delta']), r['id']))
