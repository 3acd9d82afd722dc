"""The backward frames' bundles: every scalar edge between two visible nodes of a folding, gathered per
logical edge (src name, dst name), read per run of ids in C, not edge by edge in Python.

A frame shows, per logical edge, the sum of its contributions in the order backward added them (its
parents' backward ranks), not in edge order: the trace's run records (fold.bundles) hold edge-order sums,
so they cannot give these bit for bit; the edges themselves are read here, but a run's columns are
sliced at once and its edges split among their source nodes with C loops (a token view of a 4 x 64 model:
1.5 M edges in 40 runs). The result is the edge walk's, value for value and in its order of additions.
"""

from functools import reduce
from itertools import compress, islice, repeat
from operator import add, eq, ge, gt, itemgetter, lt, ne, sub

from microgpt.recording.runs import repeats

from ..fold.bundles import Bundle, add_to


def edge_bundles(trace, folded, names, owner):
    """{(src name, dst name): [count, local sum, [contributions in the engine's order], last (parent, edge),
    {child id: its contributions' sum}]} of the visible nodes `names` (`owner`: member id -> visible name).
    Counts, last edges and local sums are over every edge; the parts and per-child sums over edges from
    parents backward reached (rank >= 0), as backward added them."""
    nodes = {n.name: n for n in folded.nodes}
    ptr, child, local = trace.child_ptr, trace.child, trace.local
    found = {}      # (src, dst) -> [count, local sum, last (p, e), [ranks], [parents], [children], [contributions]]
    for name in names:
        n = nodes[name]
        if n.side == 'input':
            continue
        for a, z in n.runs:
            e0, e1 = ptr[a], ptr[z]
            if e0 == e1:
                continue
            cs = child[e0:e1]
            srcs = list(map(owner.get, cs, repeat(name)))     # a child outside the view: as one inside
            keys = set(srcs)
            keys.discard(name)
            if not keys:
                continue
            cols = (_Parents(ptr, a, z), cs, local[e0:e1])
            for src, picked in _split(srcs, keys, name):
                b = found.get((src, name))
                if b is None:
                    b = found[(src, name)] = [0, 0.0, None, [], [], [], []]
                _add(b, picked, cols, trace, e0)
    return {key: _bundle(b) for key, b in found.items()}


def _split(srcs, keys, name):
    """[(source name, the positions of its edges in `srcs`, ascending)], one per name of `keys`; None when
    every edge is of the one name (no list made). `name`: the node's own (its edges inside it, and those
    from outside the view), left out first: most of a run's edges, found with one mask in C."""
    if len(keys) == 1 and srcs.count(next(iter(keys))) == len(srcs):
        return [(next(iter(keys)), None)]
    cross = list(compress(range(len(srcs)), map(ne, srcs, repeat(name))))
    if len(keys) == 1:
        return [(next(iter(keys)), cross)]
    theirs = [srcs[j] for j in cross] if len(cross) < 2 else list(itemgetter(*cross)(srcs))
    # then a mask per source node over those only: a run's crossing edges come from a few (<= 15 seen)
    return [(k, list(compress(cross, map(eq, theirs, repeat(k))))) for k in sorted(keys)]


class _Parents:
    """The parent of each edge of nodes a..z-1 by its position in their edges: made once, when a run has
    edges leaving its node (runs.repeats, in C: cheaper than a bisection for each of those edges)."""
    __slots__ = ('a', 'z', 'ptr', 'made')

    def __init__(self, ptr, a, z):
        self.a, self.z, self.ptr, self.made = a, z, ptr, None

    def __len__(self):
        return self.ptr[self.z] - self.ptr[self.a]

    def all(self):
        if self.made is None:
            a, z, ptr = self.a, self.z, self.ptr
            self.made = repeats(range(a, z), list(map(sub, ptr[a + 1:z + 1], ptr[a:z])))
        return self.made

    def at(self, picked):
        return itemgetter(*picked)(self.all()) if len(picked) > 1 else (self.all()[picked[0]],)


def _add(b, picked, cols, trace, e0):
    """Add the edges at positions `picked` (None: all) of a run's columns (parents, children, local
    derivatives; its first edge e0) to the gathered bundle b, in order. Their contributions are read
    here, for these edges only (Trace.edge_contribs): most of a run's edges stay inside its node."""
    parents, cs, ls = cols
    n = len(parents)
    if picked is None:
        ps_k, cs_k, ls_k = parents.all(), cs, ls
    else:
        take = itemgetter(*picked) if len(picked) > 1 else (lambda col: (col[picked[0]],))
        ps_k, cs_k, ls_k = parents.at(picked), take(cs), take(ls)
    b[0] += len(ps_k)
    b[1] = reduce(add, ls_k, b[1])
    b[2] = (ps_k[-1], e0 + (n - 1 if picked is None else picked[-1]))
    rs = list(map(trace.backward_rank.__getitem__, ps_k))
    if rs and min(rs) < 0:      # parents backward never reached: it added nothing along their edges
        keep = list(map(ge, rs, repeat(0)))
        picked = list(compress(range(n) if picked is None else picked, keep))
        rs, ps_k, cs_k, ls_k = (list(compress(col, keep)) for col in (rs, ps_k, cs_k, ls_k))
    edges = range(e0, e0 + n) if picked is None else map(add, picked, repeat(e0))
    gs_k = trace.edge_contribs(edges, map(trace.grad.__getitem__, ps_k), ls_k)
    b[3] += rs
    b[4] += ps_k
    b[5] += cs_k
    b[6] += gs_k


def _bundle(b):
    """The gathered bundle as the frames read it: its contributions in the engine's order (by their
    parents' backward ranks, then parent id, then value: the sort of (rank, parent, contribution)), and
    what each child received along it added up in edge order (fold.bundles.add_to: the edge loop's
    additions)."""
    count, lsum, one, rs, ps, cs, gs = b
    per = Bundle()
    add_to(per, cs, (), gs)
    if all(map(lt, rs, islice(rs, 1, None))):       # ranks rising along the edges (no two of one parent): as they are
        engine = gs
    elif all(map(gt, rs, islice(rs, 1, None))):     # falling: reversed
        engine = gs[::-1]
    else:
        engine = [c for _, _, c in sorted(zip(rs, ps, gs))]
    return [count, lsum, engine, one, per.per_child]
