"""The extremes of a recorded step: where the largest numbers are, to start a search from.

    largest_grads(trace, 10)      # [(node, grad)]: the largest |grad| first
    largest_contribs(trace, 10)   # [(user, input, edge, contribution)]: the largest |local x grad(user)|
    largest_changes(rows, 10)     # update rows (Adam's step) with the largest |delta| first

Every node counts, constants included: for 'emma' the largest |grad| is the 1/n of the
mean loss (16.13 = the sum of the position losses), a number no group's label shows
because a constant is not a value of its group (fold/summary.py). NaN ranks above
every number (it is what a debugger looks for first); ties go to the smaller id.
"""

import heapq
import math
from itertools import compress, count, repeat
from operator import ge, ne

MAX_K = 100     # entries one call may ask for
STRIDE = 64     # _largest's bound: from every 64th value


def _key(x):
    return math.inf if x != x else abs(x)


def _largest(values, k):
    """Indexes of the k largest |values| (NaN first), ties by index. Without a NaN, a bound read from every
    STRIDE-th value (the k-th largest of a part is at most the whole's) leaves a few candidates, found in C:
    a Python key per value took 0.9 s for the grads of a 5 M-node step, 5.7 s for its 9.8 M contributions."""
    n = len(values)
    sample = values[::STRIDE]
    if len(sample) < 4 * k or any(map(ne, values, values)):
        return heapq.nsmallest(k, range(n), key=lambda i: (-_key(values[i]), i))
    bound = heapq.nlargest(k, map(abs, sample))[-1]
    near = compress(count(), map(ge, map(abs, values), repeat(bound)))
    return heapq.nsmallest(k, near, key=lambda i: (-abs(values[i]), i))


def largest_grads(trace, k=10):
    """[(node, grad)] of the k largest |grad| (NaN first), ties by id."""
    grad = trace.grad
    return [(i, grad[i]) for i in _largest(grad, k)]


def largest_contribs(trace, k=10):
    """[(user, input, edge index, contribution)] of the k largest |contribution| over every
    edge: what one use passed down (Trace.contrib), ties by edge index."""
    contrib, child, ptr = trace.contrib, trace.child, trace.child_ptr
    edges = _largest(contrib, k)
    out = []
    for e in edges:
        lo, hi = 0, len(trace)              # the user owning edge e: ptr[user] <= e < ptr[user + 1]
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if ptr[mid] <= e:
                lo = mid
            else:
                hi = mid
        out.append((lo, child[e], e, contrib[e]))
    return out


def largest_changes(rows, k=10):
    """The k update rows (steps/update.adam_update) with the largest |delta|, ties by id."""
    return heapq.nsmallest(k, rows, key=lambda r: (-_key(r['delta']), r['id']))
