"""The backward frames' bundles: every scalar edge between two visible nodes of a folding, gathered per
logical edge (src name, dst name), read per run of ids in C, not edge by edge in Python, and summed into
the figures a frame shows.

A frame shows, per logical edge, the sum of its contributions in the order backward added them (its
parents' backward ranks), not in edge order: the trace's run records (fold.bundles) hold edge-order sums,
so they cannot give these bit for bit; the edges themselves are read here, but a run's columns are
sliced at once and its edges split among their source nodes with C loops (a token view of a 4 x 64 model:
830,000 edges in 98 runs, 410,000 of them between two nodes). The sums are the edge walk's, value for
value and in its order of additions; only the figures are kept (not a list of the parts, nor a dict of
what each child received: a token view's bundles hold 410,000 of each).
"""

import math
from functools import reduce
from itertools import compress, islice, repeat
from operator import add, eq, ge, gt, itemgetter, lt, mul, ne, sub

from microgpt.recording.runs import repeats
from microgpt.recording.sums import fsum

from ..fold.bundles import Bundle, add_to


class Figures:
    """A logical edge's figures: `count` scalar edges, `local` the sum of their local derivatives (edge order),
    `contribution` the sum of their contributions from 0.0 in the engine's order (parents' backward ranks,
    then parent id, then value: the sort of (rank, parent, contribution)), `norm` the L2 norm over the
    source's members of what each received along it (each one's parts added in edge order, as
    fold.bundles.add_to), `signs` of the contributions (signs_of), `parts` how many there are (edges from
    parents backward reached), `last` the last edge (parent, edge index), over every edge."""
    __slots__ = ('count', 'local', 'contribution', 'norm', 'signs', 'parts', 'last')

    def __init__(self, count, local, contribution, norm, signs, parts, last):
        self.count, self.local, self.contribution, self.norm = count, local, contribution, norm
        self.signs, self.parts, self.last = signs, parts, last

    def as_tuple(self):
        return (self.count, self.local, self.contribution, self.norm, self.signs, self.parts, self.last)


def signs_of(lo, hi, nan):
    """'+' or '-' when the contributions (least `lo`, greatest `hi`) all agree (the signed sum then says as
    much), 'mixed' when a sum could cancel to nothing, '0' when every one is 0 (or there is none), 'nan'."""
    if nan:
        return 'nan'
    if lo == 0 and hi == 0:
        return '0'
    if lo >= 0:
        return '+'
    if hi <= 0:
        return '-'
    return 'mixed'


def edge_bundles(trace, folded, names, owner):
    """{(src name, dst name): Figures} of the visible nodes `names` (`owner`: member id -> visible name).
    Counts, last edges and local sums are over every edge; the rest over edges from parents backward
    reached (rank >= 0), as backward added them."""
    nodes = {n.name: n for n in folded.nodes}
    ptr, child, local, rank = trace.child_ptr, trace.child, trace.local, trace.backward_rank
    found = {}      # (src, dst) -> _Gathered
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
            rk = rank[a:z]
            falls = rk[-1] >= 0 and all(map(gt, rk, islice(rk, 1, None)))
            for src, picked in _split(srcs, keys, name):
                b = found.get((src, name))
                if b is None:
                    b = found[(src, name)] = _Gathered()
                b.add(picked, cols, trace, e0, falls)
    return {key: b.figures(rank) for key, b in found.items()}


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
    if len(keys) <= MASKS:      # then a mask per source node over those only (a pass in C each)
        return [(k, list(compress(cross, map(eq, theirs, repeat(k))))) for k in sorted(keys)]
    out = {k: [] for k in sorted(keys)}     # many (<= 15 seen: a position's attention reads each earlier one)
    for j, k in zip(cross, theirs):
        out[k].append(j)
    return list(out.items())


MASKS = 3   # sources of a run's crossing edges split by a mask each (more: one pass in Python, ~3 masks' time)


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


class _Gathered:
    """One logical edge's scalar edges as read run by run (their columns in edge order), until figures()."""
    __slots__ = ('count', 'local', 'last', 'chunks', 'kids', 'parts')

    def __init__(self):
        self.count, self.local, self.last = 0, 0.0, None
        self.chunks = []    # per run: [its parts' parents, their backward ranks or None while they need not be read]
        self.kids = []      # the parts' children
        self.parts = []     # the contributions, in edge order

    def add(self, picked, cols, trace, e0, falls):
        """Add the edges at positions `picked` (None: all) of a run's columns (parents, children, local
        derivatives; its first edge e0), in order. Their contributions are read here, for these edges only
        (Trace.edge_contribs): most of a run's edges stay inside its node. `falls`: whether the run's nodes'
        backward ranks fall strictly along their ids, all reached (then so do those of parents rising
        strictly along its edges, and their ranks are not read)."""
        parents, cs, ls = cols
        n = len(parents)
        if picked is None:
            ps_k, cs_k, ls_k = parents.all(), cs, ls
        else:
            take = itemgetter(*picked) if len(picked) > 1 else (lambda col: (col[picked[0]],))
            ps_k, cs_k, ls_k = parents.at(picked), take(cs), take(ls)
        self.count += len(ps_k)
        self.local = reduce(add, ls_k, self.local)
        self.last = (ps_k[-1], e0 + (n - 1 if picked is None else picked[-1]))
        rs = None
        if not (falls and all(map(lt, ps_k, islice(ps_k, 1, None)))):
            rs = list(map(trace.backward_rank.__getitem__, ps_k))
            if min(rs) < 0:      # parents backward never reached: it added nothing along their edges
                keep = list(map(ge, rs, repeat(0)))
                picked = list(compress(range(n) if picked is None else picked, keep))
                rs, ps_k, cs_k, ls_k = (list(compress(col, keep)) for col in (rs, ps_k, cs_k, ls_k))
                if not rs:
                    return
        edges = range(e0, e0 + n) if picked is None else map(add, picked, repeat(e0))
        self.parts += trace.edge_contribs(edges, map(trace.grad.__getitem__, ps_k), ls_k).tolist()
        self.kids += cs_k
        self.chunks.append([ps_k, rs])

    def figures(self, rank):
        """The Figures of these edges (`rank`: Trace.backward_rank)."""
        gs, cs, chunks = self.parts, self.kids, self.chunks
        if all(rs is None for _, rs in chunks) and all(map(gt, (rank[ps[-1]] for ps, _ in chunks),
                                                           (rank[ps[0]] for ps, _ in islice(chunks, 1, None)))):
            total = reduce(add, reversed(gs), 0.0)      # ranks falling along the edges: added backwards
        else:
            rs = []
            for ps, r in chunks:
                rs += r if r is not None else map(rank.__getitem__, ps)
            if all(map(lt, rs, islice(rs, 1, None))):       # ranks rising along the edges (no two of one parent)
                total = reduce(add, gs, 0.0)
            elif all(map(gt, rs, islice(rs, 1, None))):     # falling: added backwards
                total = reduce(add, reversed(gs), 0.0)
            else:
                ps = [p for chunk, _ in chunks for p in chunk]
                total = reduce(add, (c for _, _, c in sorted(zip(rs, ps, gs))), 0.0)
        nan = math.isnan(total) and any(map(math.isnan, gs))    # a nan part makes the sum nan
        lo, hi = (min(gs), max(gs)) if gs and not nan else (0.0, 0.0)
        if len(set(cs)) == len(cs):     # each child once: what it received is its one part (0.0 + g, squared alike)
            per_child = gs
        else:
            per = Bundle()
            add_to(per, cs, (), gs)     # per child, in edge order (fold's additions)
            per_child = list(per.per_child.values())
        norm = math.sqrt(fsum(list(map(mul, per_child, per_child))))
        return Figures(self.count, self.local, total, norm, signs_of(lo, hi, nan), len(gs), self.last)
