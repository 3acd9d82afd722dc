"""Fold a matrix's uses per piece: the ids of one side of the view that lie in one run of the trace
(recording.runs.run_pieces) share a scope, so a group key, and a key's members are slices of its
side's ids. A matrix's 196,000 scattered uses, and their 196,000 outputs, lie in 12 runs (one a
position): the work is per piece and, in C, per edge, with no segment, tuple or look-up made per id
in Python (folding._keys and bundles.bundle_edges make one per id for scattered ids).

The same keys, in the same order, the same members and the same bundles as that plain path (the
tests compare them id by id and bit for bit): a bundle is its edges added up from 0.0 in edge order
(the parents in id order, each one's edges in order), or the run record holding exactly those edges
(bundles._record_of: the same additions, made while indexing), or the matrix's use record of those
parents (use_bundles.py: the same).
"""

from array import array
from bisect import bisect_left, bisect_right
from collections import deque
from itertools import chain, compress, repeat
from operator import eq, itemgetter

from microgpt.recording.runs import SCATTERED, Runs, all_single, edges_of, holds, id_runs, run_pieces, scattered
from microgpt.recording.uses import held, record_of

from .bundles import MANY_KEYS, Bundle, Leaving, _add_one_by_one, _from_record, _record_of, add_to
from .summary import record_single
from .use_bundles import UseBundles

SIDES = ('interior', 'input', 'output')


def fold_pieces(trace, sel, level, expand_ids, group_key, heads=True):
    """(keys, sides, members, bundles, leaving, internal) of a matrix view folded per piece: each key's
    side, and its members as (ids: a tuple, runs, scope ids sorted); bundles {(child key, parent key):
    Bundle}, leaving (a set), internal as bundles.bundle_edges gives them. None where this is not a
    matrix view of scattered uses (folding._keys then: scalar level, expanded scopes, few pieces' worth)."""
    if sel.matrix is None or expand_ids or level == 'scalar' or not scattered(sel.nodes):
        return None
    found = _keys(trace, sel, level, group_key, heads)
    if found is None:
        return None
    keys, sides, parts = found
    kid = KeyOf(len(trace), sides, parts)
    members = []
    for ps in parts:
        ids = ps[0][0] if len(ps) == 1 else tuple(chain.from_iterable(map(itemgetter(0), ps)))
        if ids[-1] - ids[0] == len(ids) - 1:
            runs = [(ids[0], ids[-1] + 1)]
        elif _single(trace, ids):
            runs = Runs(ids)        # single ids (a matrix's uses at a position): no pair made each
        else:
            runs = id_runs(ids)
        members.append((ids, runs, sorted(set(map(itemgetter(1), ps)))))
    bundles, leaving, internal = _bundles(trace, sides, members, kid, sel.matrix)
    return keys, sides, members, bundles, leaving, internal


def _single(trace, ids):
    """all_single of a member's ids: from its use record's pattern when they are one record's (a matrix's uses
    or outputs at a position: no id looked at), else read in C."""
    k = record_of(trace, ids) if len(ids) > SCATTERED and held(trace) else None
    return all_single(ids) if k is None else record_single(trace, *k)


class KeyOf:
    """Each interior and input node's key (an output is no counted edge's child: -1, as outside the view):
    `of(i)` one node's, found in its part (a bisection); `array()` every node's, an array over the trace
    (20 MB at 5 M nodes) made only when edges are read one by one (a view whose bundles all come from the
    use records never makes it)."""

    def __init__(self, n, sides, parts):
        self.n, self.sides, self.parts, self._array = n, sides, parts, None

    def of(self, i):
        if self._array is not None:
            return self._array[i]
        for j, ps in enumerate(self.parts):
            if self.sides[j] != 'output' and any(part[0] <= i <= part[-1] and holds(part, i) for part, _ in ps):
                return j
        return -1

    def array(self):
        if self._array is None:
            kid = array('i', [-1]) * self.n
            for j, ps in enumerate(self.parts):
                for part, _ in ps if self.sides[j] != 'output' else ():
                    if part[-1] - part[0] == len(part) - 1:
                        kid[part[0]:part[-1] + 1] = array('i', [j]) * len(part)
                    else:
                        deque(map(kid.__setitem__, part, repeat(j)), maxlen=0)
            self._array = kid
        return self._array


def _keys(trace, sel, level, group_key, heads):
    """(keys, sides, parts): the keys interned in the order folding._keys interns them (a side after
    the other, in id order), each key's side, and its parts [(ids: a slice of its side's tuple, scope
    id)]. The focus (the matrix's cells) is one key, ('m', matrix). None when a piece holds cells and
    other ids, or the sides lie in too many runs."""
    scopes, run_scope = trace.scopes, trace.index('run_scope')
    focus, positions = sel.focus, set(sel.positions)
    index, keys, sides, parts, cells = {}, [], [], [], 0
    for sd, ids in zip(SIDES, (sel.nodes, sel.inputs, sel.outputs)):
        pieces = run_pieces(trace, ids, max(64, len(ids) // 64))
        if pieces is None:
            return None
        by_scope = {}
        for r, lo, hi in pieces:
            sid = run_scope[r]
            n = bisect_right(focus, ids[hi - 1]) - bisect_left(focus, ids[lo])
            if n and (sd != 'interior' or n != hi - lo):
                return None     # cells mixed with other ids: per id (folding._keys)
            cells += n
            k = ('m', sel.matrix) if n else by_scope.get(sid)
            if k is None:
                k = by_scope[sid] = group_key(scopes[sid], sd, level, positions, heads)
            j = index.get(k)
            if j is None:
                j = index[k] = len(keys)
                keys.append(k)
                sides.append(sd)
                parts.append([])
            parts[j].append((ids[lo:hi], sid))
    return (keys, sides, parts) if cells == len(focus) else None


def _bundles(trace, sides, members, kid, matrix):
    """bundles.bundle_edges' (bundles, leaving, internal) from each parent key's members: from the
    matrix's use records (use_bundles.UseBundles) where a key's members are one record's uses or outputs, else
    its edges read at once, in C (an output's only from interior keys), added up per child key in edge
    order, or taken from the run's record of that child key's one scope when they are all of its edges."""
    ptr, child, grad = trace.child_ptr, trace.child, trace.grad
    starts = trace.index('run_start')
    interior = {j for j, sd in enumerate(sides) if sd == 'interior'}
    sole = {j: sids[0] for j, (_, _, sids) in enumerate(members) if len(sids) == 1}     # keys of one scope
    stored = UseBundles(trace, matrix, sides, members, kid, sole)
    bundles, leaving, internal = {}, Leaving(), 0
    for kp, (ids, _, _) in enumerate(members):
        if sides[kp] == 'input' or ptr[ids[0]] == ptr[ids[-1] + 1]:
            continue        # inputs' edges are not the view's; no edges at all (the cells)
        if stored.add(kp, ids, bundles, leaving):
            continue
        edges, counts = edges_of(trace, ids)
        ups = chain.from_iterable(map(repeat, map(grad.__getitem__, ids), counts))
        cs = array(child.typecode, map(child.__getitem__, edges))
        kcs = array('l', map(kid.array().__getitem__, cs))
        if sides[kp] == 'output':       # an output's other operands are not part of the view
            keep = bytes(map(interior.__contains__, kcs))
            edges, ups = list(compress(edges, keep)), compress(ups, keep)
            cs, kcs = (array(col.typecode, compress(col, keep)) for col in (cs, kcs))
        r = bisect_right(starts, ids[0]) - 1
        run = (r, sole) if ids[-1] < starts[r + 1] else None        # its parents in one run
        columns = _columns(trace, edges, ups)
        distinct = sorted(set(kcs))
        if len(distinct) > MANY_KEYS:
            internal += _add_one_by_one(cs, *columns(), kcs, kp, bundles, leaving)
            continue
        for kc in distinct:
            n = kcs.count(kc)
            if kc == kp:
                internal += n
                continue
            k = _record_of(trace, run, kc, n)
            if k is not None:
                bundles[kc, kp] = _from_record(trace, k)
                leaving.add_record(trace, k)
                continue
            ls, gs = columns()
            if len(distinct) > 1:
                mine = bytes(map(eq, kcs, repeat(kc)))
                c_k, l_k, g_k = (array(col.typecode, compress(col, mine)) for col in (cs, ls, gs))
            else:
                c_k, l_k, g_k = cs, ls, gs
            leaving.update(add_to(bundles.setdefault((kc, kp), Bundle()), c_k, l_k, g_k))
    return bundles, leaving, internal


def _columns(trace, edges, ups):
    """A function giving (local derivatives, contributions) of `edges` (their parents' grads `ups`, an
    iterator), read on its first call only: only a bundle added edge by edge needs them."""
    cols = []

    def columns():
        if not cols:
            ls = array(trace.local.typecode, map(trace.local.__getitem__, edges))
            cols.extend((ls, trace.edge_contribs(edges, ups, ls)))
        return cols
    return columns
