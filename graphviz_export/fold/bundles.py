"""Bundle a folded view's scalar edges into drawn edges: from the trace's run records where a
bundle is exactly one record, edge by edge elsewhere, with the same sums either way.

A bundle gathers the edges from one visible node's members (the children) to another's
(the parents): their count, local derivatives and contributions added up from 0.0 in edge
order, and, per child, what it received along them (its norm is the edge's ‖contrib‖).
The trace stores those sums per run of one scope and child scope (recording.aggregates:
rec_*), added up in the same order. So when a parent segment is a whole run, and each child
scope it reads lies in one visible node, its records are its bundles; a bundle fed by
exactly one record takes the record's sums as they are, and only bundles fed by several
(the cached keys of several earlier positions, merged into one node) are added up edge by
edge. The work is then per run and per bundle, not per edge: a view of 400,000 ops folds in
milliseconds.
"""

import math
from bisect import bisect_left, bisect_right

from microgpt.recording.sums import fsum


class Bundle:
    """The scalar edges from one visible node to another, summed into one drawn edge."""
    __slots__ = ('count', 'local', 'contrib', 'per_child', 'norm')

    def __init__(self):
        self.count = 0          # scalar edges
        self.local = 0.0        # sum of their local derivatives
        self.contrib = 0.0      # sum of the contributions backward sent along them
        self.per_child = {}     # child id -> its contribution along this bundle
        self.norm = None        # the norm of per_child's values, when a record gave it

    def contrib_norm(self):
        if self.norm is not None:
            return self.norm
        return math.sqrt(fsum(v * v for v in self.per_child.values()))


def bundle_edges(trace, segments, kid, side, interior):
    """(bundles, leaving, internal): {(child key, parent key): Bundle}, the children with a
    parent in another visible node, and the number of edges inside one. `segments` are
    fold's (first id, last id + 1, key, side), `kid` each selected node's key (-1
    elsewhere), `side` each key's side, `interior` the view's interior ids, sorted (an
    output's edges count only from them)."""
    starts = trace.index('run_start')
    rec_ptr, rec_scope, rec_count = trace.index('rec_ptr'), trace.index('rec_scope'), trace.index('rec_count')
    scope = trace.scope
    groups_of = {}      # scope id -> the keys its selected nodes are in
    for a, _, j, _ in segments:
        groups_of.setdefault(scope[a], set()).add(j)
    plan, fed, touched = [], {}, set()
    for seg in segments:
        p0, p1, kp, sd = seg
        if sd == 'input':
            continue
        r = bisect_right(starts, p0) - 1
        recs = range(rec_ptr[r], rec_ptr[r + 1])
        whole = sd == 'interior' and p0 == starts[r] and p1 == starts[r + 1]
        if whole and all(len(groups_of.get(rec_scope[k], ())) == 1 for k in recs):
            plan.append((seg, recs))
            for k in recs:
                (kc,) = groups_of[rec_scope[k]]
                if kc != kp:
                    fed[kc, kp] = fed.get((kc, kp), 0) + 1
        else:           # a part of a run, an output, or a child scope split between nodes
            plan.append((seg, None))
            touched.update((rec_scope[k], kp) for k in recs)
    # a bundle is one record's when no other record feeds it and no segment added edge by
    # edge reads a scope of its child key (pairs of scopes, not of keys: at scalar level a
    # scope holds thousands of keys)
    scopes_of = {}
    for sid, js in groups_of.items():
        for j in js:
            scopes_of.setdefault(j, []).append(sid)
    pure = {(kc, kp) for (kc, kp), n in fed.items()
            if n == 1 and not any((sid, kp) in touched for sid in scopes_of[kc])}

    bundles, leaving, internal = {}, set(), 0
    for (p0, p1, kp, sd), recs in plan:
        if recs is None:
            inside = interior if sd == 'output' else None
            internal += _add_edges(trace, p0, p1, kp, inside, kid, bundles, leaving, None)
            continue
        by_edge = set()
        for k in recs:
            (kc,) = groups_of[rec_scope[k]]
            if kc == kp:
                internal += rec_count[k]
            elif (kc, kp) in pure:
                bundles[kc, kp] = _from_record(trace, k)
                leaving.update(_kids(trace, k))
            else:
                by_edge.add(kc)
        if by_edge:
            _add_edges(trace, p0, p1, kp, None, kid, bundles, leaving, by_edge)
    return bundles, leaving, internal


def _from_record(trace, k):
    b = Bundle()
    b.count = trace.index('rec_count')[k]
    b.local = trace.index('rec_local')[k]
    b.contrib = trace.index('rec_contrib')[k]
    b.norm = trace.index('rec_norm')[k]
    return b


def _kids(trace, k):
    ptr = trace.index('rec_kid_ptr')
    return trace.index('rec_kids')[ptr[k]:ptr[k + 1]]


def _add_edges(trace, p0, p1, kp, interior, kid, bundles, leaving, only):
    """Add the edges of parents p0..p1-1 (key kp) one by one (only those into keys `only`,
    when given; only those from the sorted ids `interior`, when given: an output's other
    operands are not part of the view); returns how many stayed inside kp."""
    ptr = trace.child_ptr
    e0, e1 = ptr[p0], ptr[p1]
    internal = 0
    for c, lg, cg in zip(trace.child[e0:e1], trace.local[e0:e1], trace.contrib_slice(p0, p1)):
        if interior is not None and not _holds(interior, c):
            continue
        kc = kid[c]
        if only is not None and kc not in only:
            continue
        if kc == kp:
            internal += 1
            continue
        leaving.add(c)
        b = bundles.get((kc, kp))
        if b is None:
            b = bundles[kc, kp] = Bundle()
        b.count += 1
        b.local += lg
        b.contrib += cg
        per_child = b.per_child
        per_child[c] = per_child.get(c, 0.0) + cg
    return internal


def _holds(ids, i):
    """i in the sorted sequence ids (a bisection: a view's interior may hold millions)."""
    k = bisect_left(ids, i)
    return k < len(ids) and ids[k] == i
