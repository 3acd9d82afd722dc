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
from array import array
from bisect import bisect_left, bisect_right
from functools import reduce
from itertools import chain, compress, count, groupby, islice, repeat, starmap
from operator import add, and_, eq, itemgetter, le, mul, ne, sub

from microgpt.recording.codecs.whole import load_numpy, numpy_view
from microgpt.recording.runs import SCATTERED, edges_of, gather, id_runs, run_total
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
        values = self.per_child.values()
        return math.sqrt(fsum(map(mul, values, values)))


class Leaving(set):
    """The children with a parent in another visible node: a set, to which a record's children are added once per
    distinct list of them (`add_record`): a matrix's cells are the children of a record at every position that reads
    them (a whole document at 5.1 M nodes: 2.4 M added for 222,000 distinct, 100 ms of its fold)."""
    __slots__ = ('_added',)

    def __init__(self):
        super().__init__()
        self._added = {}        # child scope -> the children lists of its records added

    def add_record(self, trace, k):
        kids = _kids(trace, k)
        same = self._added.setdefault(trace.index('rec_scope')[k], [])
        if kids not in same:        # arrays compared in C, the first difference ends it
            same.append(kids)
            self.update(kids)


def segments_by_key(segments):
    """[(key, its segments)], by key: fold's segments (first id, last id + 1, key, side) grouped
    in C, each key's in the order they come (a key is of one side, made in id order)."""
    return [(j, list(segs)) for j, segs in groupby(sorted(segments, key=itemgetter(2)), key=itemgetter(2))]


def joined(segs):
    """The runs (a, b) of one key's segments, adjacent ones joined (found in C: a matrix's 16,000
    scattered uses a position join none)."""
    if not any(map(eq, map(itemgetter(1), segs), map(itemgetter(0), islice(segs, 1, None)))):
        return list(map(itemgetter(0, 1), segs))
    runs = []
    for a, b, _, _ in segs:
        if runs and runs[-1][1] == a:
            runs[-1] = (runs[-1][0], b)
        else:
            runs.append((a, b))
    return runs


def ascending(runs):
    """A key's runs (a, b) in id order, adjacent ones joined: as they come (a side's segments
    are made in id order, and a key is of one side), sorted only if they do not."""
    if all(map(le, map(itemgetter(1), runs), map(itemgetter(0), islice(runs, 1, None)))):
        return runs
    return id_runs(sorted(set(chain.from_iterable(starmap(range, runs)))))


def bundle_edges(trace, segments, kid, side, by_key=None):
    """(bundles, leaving, internal): {(child key, parent key): Bundle}, the children with a
    parent in another visible node, and the number of edges inside one. `segments` are
    fold's (first id, last id + 1, key, side), `kid` each selected node's key (-1
    elsewhere), `side` each key's side (an output's edges count only from interior keys);
    `by_key`: segments_by_key(segments), when known."""
    starts = trace.index('run_start')
    rec_ptr, rec_scope, rec_count = trace.index('rec_ptr'), trace.index('rec_scope'), trace.index('rec_count')
    scope = trace.scope
    # the keys the selected nodes of each scope are in (scope id -> keys), per key in C
    by_key = segments_by_key(segments) if by_key is None else by_key
    groups_of = {}
    for j, segs in by_key:
        for sid in set(map(scope.__getitem__, map(itemgetter(0), segs))):
            groups_of.setdefault(sid, set()).add(j)
    # each parent key's plan, in segment order: (segment, its run's records, None) when the
    # segment is a whole run whose records are its bundles, else (first segment, None, ranges)
    # for consecutive other segments, their edges added at once. Walked per run of the trace a
    # key's segments lie in (a matrix's uses: 16,000 single-node segments of one run a position),
    # each looked at alone only where it is a whole run.
    plans, fed, touched = {}, {}, set()
    for kp, segs in by_key:
        if segs[0][3] == 'input':
            continue
        p0s, i, interior = list(map(itemgetter(0), segs)), 0, segs[0][3] == 'interior'
        plan = plans[kp] = []
        while i < len(segs):
            r = bisect_right(starts, p0s[i]) - 1
            j = bisect_left(p0s, starts[r + 1], i)       # segments i..j-1 lie in run r
            seg = segs[i]
            if interior and j == i + 1 and seg[0] == starts[r] and seg[1] == starts[r + 1]:     # a whole run
                recs = range(rec_ptr[r], rec_ptr[r + 1])
                if all(len(groups_of.get(rec_scope[k], ())) == 1 for k in recs):
                    plan.append((seg, recs, None))
                    for k in recs:
                        (kc,) = groups_of[rec_scope[k]]
                        if kc != kp:
                            fed[kc, kp] = fed.get((kc, kp), 0) + 1
                else:       # a child scope split between nodes: edge by edge
                    _by_edges(plan, seg, [seg])
                    touched.update((rec_scope[k], kp) for k in recs)
            else:           # parts of a run, or outputs
                _by_edges(plan, seg, segs[i:j])
                touched.update((rec_scope[k], kp) for k in range(rec_ptr[r], rec_ptr[r + 1]))
            i = j
    # a bundle is one record's when no other record feeds it and no segment added edge by
    # edge reads a scope of its child key (pairs of scopes, not of keys: at scalar level a
    # scope holds thousands of keys)
    scopes_of = {}
    for sid, js in groups_of.items():
        for j in js:
            scopes_of.setdefault(j, []).append(sid)
    pure = {(kc, kp) for (kc, kp), n in fed.items()
            if n == 1 and not any((sid, kp) in touched for sid in scopes_of[kc])}

    bundles, leaving, internal = {}, Leaving(), 0
    interior_keys = {j for j, sd in side.items() if sd == 'interior'}
    sole = {j: sids[0] for j, sids in scopes_of.items() if len(sids) == 1}     # keys of one scope
    for plan in plans.values():
        for (p0, p1, kp, sd), recs, ranges in plan:
            if recs is None:    # consecutive parts of runs of one key and side: their edges at once
                inside = interior_keys if sd == 'output' else None
                r = bisect_right(starts, ranges[0][0]) - 1
                # a key's only edges, all of run r, scattered (a matrix's uses): from its records where they are
                one = len(plan) == 1 and len(ranges) > SCATTERED and ranges[-1][1] <= starts[r + 1]
                internal += _add_edges(trace, ranges, kp, inside, kid, bundles, leaving, None,
                                       (r, sole) if one else None)
                continue
            by_edge = set()
            for k in recs:
                (kc,) = groups_of[rec_scope[k]]
                if kc == kp:
                    internal += rec_count[k]
                elif (kc, kp) in pure:
                    bundles[kc, kp] = _from_record(trace, k)
                    leaving.add_record(trace, k)
                else:
                    by_edge.add(kc)
            if by_edge:
                _add_edges(trace, [(p0, p1)], kp, None, kid, bundles, leaving, by_edge)
    return bundles, leaving, internal


def _by_edges(plan, seg, segs):
    """Add segments `segs` (their first `seg`) to a key's plan as edges added one by one: joined
    to the plan's last entry when that is also so."""
    ranges = list(map(itemgetter(0, 1), segs))
    if plan and plan[-1][1] is None:
        plan[-1][2].extend(ranges)
    else:
        plan.append((seg, None, ranges))


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


def _add_edges(trace, ranges, kp, inside, kid, bundles, leaving, only, run=None):
    """Add the edges of the parents in id ranges `ranges` (key kp, in id order): those into
    keys `only`, when given; those from the keys `inside`, when given (an output's other operands
    are not part of the view). Returns how many stayed inside kp. The same sums as adding them
    one edge at a time (from 0.0, in edge order, per bundle and per child): with few child keys
    (a matrix's uses read the matrix and one input) each bundle's edges are picked out and added
    up in C (functools.reduce of float additions, the loop's own operation), else one by one.
    `run`: (r, {key: its one scope}) when `ranges` are parts of run r and kp has no other edges:
    a bundle into a key of one scope C whose edges are as many as the record (r, C) holds is that
    record's edges (a subset of them, in the same order), so it takes the record's sums (a matrix's
    uses: the cells and the input each use reads)."""
    ptr, child, ls = trace.child_ptr, trace.child, None
    if only is not None and inside is None and len(child) >= WIDE:
        return _add_picked(trace, ranges, kp, kid, bundles, leaving, only)
    if len(ranges) > SCATTERED and run_total(ranges) == len(ranges):
        # single nodes (a matrix's uses): their children first, the other columns of kept edges only
        edges, ups = _scattered_edges(trace, ranges)
        cs = array(child.typecode, map(child.__getitem__, edges))
    else:
        edges = [(ptr[a], ptr[b]) for a, b in ranges]
        cs, ls = gather(child, edges), gather(trace.local, edges)
        gs = trace.contrib_slice(*ranges[0]) if len(ranges) == 1 else _contribs(trace, ranges, edges)
        if only is not None and inside is None:
            # a whole run whose child scopes lie in several nodes (a document's or a token's cached keys and
            # values): most edges kept, in a few keys; one pass beats an array of keys, a selection and a pass
            # per key in Python (a whole document of 3.5 M nodes: these calls 187-215 ms CPU so, 282-312 ms per
            # key); in a trace of WIDE edges, numpy picks each key's (_add_picked, above: 5.1 M nodes, 370 -> 130 ms)
            return _add_one_by_one(cs, ls, gs, map(kid.__getitem__, cs), kp, bundles, leaving, only)
    kcs = array('l', map(kid.__getitem__, cs))
    keep = None
    for wanted in (inside, only):
        if wanted is not None:
            got = list(map(wanted.__contains__, kcs))
            keep = got if keep is None else list(map(and_, keep, got))
    if keep is not None and ls is None:
        edges, ups = list(compress(edges, keep)), list(compress(ups(), keep))
        cs, kcs = (array(col.typecode, compress(col, keep)) for col in (cs, kcs))
    elif keep is not None:
        cs, ls, gs, kcs = (array(col.typecode, compress(col, keep)) for col in (cs, ls, gs, kcs))

    def columns():      # single nodes' local derivatives and contributions: read once a bundle needs them
        nonlocal ls, gs
        if ls is None:
            ls = array(trace.local.typecode, map(trace.local.__getitem__, edges))
            gs = trace.edge_contribs(edges, ups() if callable(ups) else ups, ls)
        return ls, gs
    distinct = set(kcs)
    if len(distinct) > MANY_KEYS:
        return _add_one_by_one(cs, *columns(), kcs, kp, bundles, leaving)
    internal = 0
    for kc in sorted(distinct):
        mine = list(map(eq, kcs, repeat(kc))) if len(distinct) > 1 else None    # None: every edge
        if kc == kp:
            internal += sum(mine) if mine is not None else len(kcs)
            continue
        k = _record_of(trace, run, kc, len(kcs) if mine is None else sum(mine))
        if k is not None and (kc, kp) not in bundles:
            bundles[kc, kp] = _from_record(trace, k)
            leaving.add_record(trace, k)
            continue
        ls, gs = columns()
        c_k = array('l', compress(cs, mine)) if mine is not None else cs
        b = bundles.get((kc, kp))
        if b is None:
            b = bundles[kc, kp] = Bundle()
        g_k = array('d', compress(gs, mine)) if mine is not None else gs
        leaving.update(add_to(b, c_k, compress(ls, mine) if mine is not None else ls, g_k))
    return internal


def add_to(b, cs, ls, gs):
    """Add the edges (children `cs`, local derivatives `ls`, contributions `gs`, in edge order) to the
    Bundle b, in C where it can: the loop's own additions, in its order. Returns the children, a set."""
    b.count += len(cs)
    b.local = reduce(add, ls, b.local)
    b.contrib = reduce(add, gs, b.contrib)
    per_child, kids = b.per_child, set(cs)
    if len(kids) == len(cs) and per_child.keys().isdisjoint(cs):
        per_child.update(zip(cs, map(add, repeat(0.0), gs)))
    elif 4 * len(kids) <= len(cs):     # few children read many times (a matrix's input x): per child
        _add_per_child(per_child, cs, gs)
    else:
        for c, cg in zip(cs, gs):
            per_child[c] = per_child.get(c, 0.0) + cg
    return kids


def _record_of(trace, run, kc, n):
    """The record of run r into key kc's one scope C (run: (r, {key: its one scope})) holding `n`
    edges, else None (C the run's own scope: a record of edges inside it keeps no children)."""
    if run is None or kc not in run[1]:
        return None
    r, c = run[0], run[1][kc]
    rec_ptr, rec_scope = trace.index('rec_ptr'), trace.index('rec_scope')
    if c == trace.index('run_scope')[r]:
        return None
    for k in range(rec_ptr[r], rec_ptr[r + 1]):
        if rec_scope[k] == c:
            return k if trace.index('rec_count')[k] == n else None
    return None


def _add_per_child(per_child, cs, gs):
    """per_child[c] += each g of `gs` along the edges into c (`cs`), in edge order, as the loop
    `per_child[c] = per_child.get(c, 0.0) + g` adds them: the edges sorted by child (stable, so in
    edge order within a child), each child's parts added up in C from what it held. Children read
    over and over in one order (a matrix product's input: x0..x63 once per row): each one's parts a
    strided slice, no sort."""
    p = _period(cs)
    if p:
        for j in range(p):
            per_child[cs[j]] = reduce(add, gs[j::p], per_child.get(cs[j], 0.0))
        return
    order = sorted(range(len(cs)), key=cs.__getitem__)
    cs, gs = list(map(cs.__getitem__, order)), list(map(gs.__getitem__, order))
    bounds = [0, *compress(count(1), map(ne, islice(cs, 1, None), cs)), len(cs)]
    for a, b in zip(bounds, islice(bounds, 1, None)):
        per_child[cs[a]] = reduce(add, gs[a:b], per_child.get(cs[a], 0.0))


def _period(cs):
    """p when the children `cs` are their first p, all different, again and again (len(cs) a multiple of
    p, p < len(cs)), else 0: checked in C."""
    n = len(cs)
    try:
        p = cs.index(cs[0], 1) if n else 0
    except ValueError:
        return 0
    if n % p or len(set(cs[:p])) != p or cs[p:] != cs[:n - p]:
        return 0
    return p


def _scattered_edges(trace, ranges):
    """(edge indexes, a function giving their parents' grads), lists in edge order, of the single
    nodes `ranges` (a matrix's uses, (id, id + 1) each): the columns are then read in C through the
    one list of edge indexes (not an array slice per node and column, as gather and _contribs read
    runs), the grads only if a bundle is added edge by edge."""
    grad = trace.grad
    ids = list(map(itemgetter(0), ranges))
    edges, counts = edges_of(trace, ids)
    return edges, lambda: list(chain.from_iterable(map(repeat, map(grad.__getitem__, ids), counts)))


def _contribs(trace, ranges, edges):
    """Trace.contrib_slice of each id range of `ranges` (their edge ranges `edges`), concatenated,
    in one pass: each edge's local derivative times its parent's grad."""
    ptr = trace.child_ptr
    e0, e1 = map(itemgetter(0), edges), map(itemgetter(1), edges)
    if run_total(ranges) == len(ranges):
        # single nodes (a matrix's uses): an edge range each
        ids, counts = map(itemgetter(0), ranges), map(sub, map(itemgetter(1), edges), map(itemgetter(0), edges))
    else:
        ids = list(chain.from_iterable(starmap(range, ranges)))
        counts = map(sub, map(ptr.__getitem__, map(add, ids, repeat(1))), map(ptr.__getitem__, ids))
    ups = chain.from_iterable(map(repeat, map(trace.grad.__getitem__, ids), counts))
    return trace.edge_contribs(chain.from_iterable(map(range, e0, e1)), ups)


MANY_KEYS = 16      # more child keys than this (a scalar view): one pass, edge by edge
WIDE = 1 << 20      # a trace of this many edges (loaded, numpy imported): runs' edges into a few keys picked by numpy


def _add_picked(trace, ranges, kp, kid, bundles, leaving, only):
    """_add_one_by_one's bundles of the edges of the parents in id ranges `ranges` into the keys `only`,
    each key's edges picked out by numpy (a whole document: 400 runs of positions' attention reading
    950,000 edges, 230,000 of them into earlier positions' keys and values) and added up by add_to, in
    edge order."""
    np, ptr = load_numpy(), numpy_view(trace.child_ptr)
    edges = np.concatenate([np.arange(ptr[a], ptr[b]) for a, b in ranges])
    parents = np.concatenate([np.repeat(np.arange(a, b), np.diff(ptr[a:b + 1])) for a, b in ranges])
    cs = numpy_view(trace.child)[edges]
    kcs = numpy_view(kid)[cs]
    local, grad = numpy_view(trace.local), numpy_view(trace.grad)
    internal = 0
    for kc in sorted(only):
        at = np.flatnonzero(kcs == kc)
        if not len(at):
            continue
        if kc == kp:
            internal += len(at)
            continue
        mine = edges[at]
        ls = local[mine].tolist()
        gs = trace.edge_contribs(mine.tolist(), grad[parents[at]].tolist(), ls)
        b = bundles.get((kc, kp))
        if b is None:
            b = bundles[kc, kp] = Bundle()
        leaving.update(add_to(b, cs[at].tolist(), ls, gs))
    return internal


def _add_one_by_one(cs, ls, gs, kcs, kp, bundles, leaving, only=None):
    """The edges (children `cs`, local derivatives `ls`, contributions `gs`, child keys `kcs`) added
    one at a time; with `only`, those into these child keys only."""
    internal = 0
    for c, lg, cg, kc in zip(cs, ls, gs, kcs):
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
