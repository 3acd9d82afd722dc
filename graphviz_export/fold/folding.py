"""Fold: group a Selection's nodes into summary nodes until the picture fits a budget.

Levels, finest first:
    scalar  every op is a node (outputs of the view still grouped per scope)
    vector  each scope is a node: "q = Wq.x, 16 values" stands for its 528 ops
    block   each (position, layer, block) is a node: embed, attn, mlp, lm_head, loss;
            attention as q/k/v -> one node per head -> Wo, and each residual add
            on its own, so the skip connections show
    auto    the finest of these whose drawing has at most `budget` nodes and
            `edge_budget` edges (edge density, not node count, makes `dot` slow)

Boundary nodes are grouped by scope at every level but scalar (inputs), and
those from positions the view does not cover are merged ("k, positions 0..10").
Parameters outside the view are grouped per matrix. Focus nodes (a parameter
cell, a neighbourhood's centre) are never grouped; a matrix view's cells are one
heat-map node. `expand` patterns keep matching scopes at scalar level inside a
coarser view.

A node with more than FANOUT_LIMIT consumers (the rmsnorm scale feeding 16
products, an early position's keys read by every later one, a parameter matrix
read at every position) is drawn once, unwired; each consumer gets one small
reference node naming what it reads ("↗ k pos0"), the way TensorBoard pulls
high-degree nodes aside. Nothing is dropped: every op of the selection is in
exactly one visible node, and every edge between visible nodes is drawn, bundled,
or stands behind a reference.
"""

import math
from array import array
from bisect import bisect_left, bisect_right
from collections import deque
from dataclasses import dataclass, field
from functools import cached_property
from itertools import filterfalse, repeat
from operator import add, itemgetter

from microgpt.recording.runs import all_single, id_runs, not_single, runs_of, scopes_in, scopes_of, slices_of
from microgpt.recording.scopes import FIELDS, Scope
from microgpt.recording.sums import fsum

from ..spec import DEFAULT_BUDGET, DEFAULT_EDGE_BUDGET, DEFAULT_LEVEL, LEVELS, check, check_options
from .bundles import ascending, bundle_edges, joined, segments_by_key
from .expand import expanded_ids
from .floors import interior_edge_floor
from .pieces import fold_pieces
from .summary import boundary_values, group_values

FANOUT_LIMIT = 8            # more consumers than this: drawn once and referenced


@dataclass
class VNode:
    """One visible node of the folded view."""
    name: str               # DOT node name, from trace ids ('n4711', 'g4700', 'm0', 'rn4711')
    kind: str               # 'scalar' | 'group' | 'matrix' | 'ref'
    side: str               # 'interior' | 'input' | 'output'
    ids: tuple              # trace ids it stands for, sorted ('ref': those of the nodes referred to)
    scope: Scope            # (pos, layer, block, head, role); a field its members do not share is None
    positions: tuple = ()   # positions of its members (a boundary group may merge several)
    values: tuple = ()      # groups: the ids its figures summarise (summary.group_values)
    focus: bool = False     # what the view is about
    fan_out: int = 0        # > 0: drawn once; this many nodes use it through references
    refers: tuple = ()      # 'ref': names of the nodes it stands in for
    between_rows: bool = False  # 'ref': stands for what a row reads from another row (or the parameters)

    # the runs of consecutive ids of `ids` and of `values`, found once: every label and tooltip
    # of a view reads its nodes per run (the whole document's groups hold 2.2 M ids)
    @cached_property
    def runs(self):
        return runs_of(self.ids)

    @cached_property
    def value_runs(self):
        return runs_of(self.values)


@dataclass
class VEdge:
    """One drawn edge, child -> parent (the direction data flows)."""
    src: str
    dst: str
    kind: str               # 'data' | 'boundary' | 'focus' | 'ref'
    count: int              # scalar edges it stands for
    local: float            # scalar ends: d dst / d src summed over its edges (x*x: 2x); else None
    contrib: float          # sum of the contributions backward added to src's members along it
    contrib_norm: float     # L2 norm, over src's members, of the contribution each received
    sources: tuple = ()     # 'ref' edges: (name, count, contrib, contrib_norm) per node referred to


@dataclass
class Folded:
    selection: object
    level: str
    nodes: list             # VNode, in drawing order
    edges: list             # VEdge, in drawing order
    stats: dict
    notes: list = field(default_factory=list)
    expand: tuple = ()


def fold(trace, selection, level=DEFAULT_LEVEL, budget=DEFAULT_BUDGET, edge_budget=DEFAULT_EDGE_BUDGET, expand=()):
    """The Folded view of `selection` at `level` ('auto': the finest that fits); the
    options' limits are graphviz_export.spec's."""
    check_options(level=level, budget=budget, edge_budget=edge_budget)
    expand = check('expand', expand)
    expand_ids = expanded_ids(trace, selection, expand)
    if level != 'auto':
        out = _fold(trace, selection, level, expand_ids, budget, edge_budget)
        if not out.stats['fits']:
            out.notes.append(f"level {level}: {out.stats['nodes']} nodes, {out.stats['edges']} edges, over the "
                             f"budget ({budget} nodes, {edge_budget} edges); layout may be slow")
    else:
        out, floors = None, {}
        for lv in LEVELS[1:]:
            if lv != 'block' and node_floor(trace, selection, lv, expand_ids, floors) > budget:
                continue    # cannot fit: skip building it
            out = _fold(trace, selection, lv, expand_ids, budget, edge_budget, floors)
            if out.stats['fits']:
                break
        else:
            out.notes.append(f"over budget: even level block has {out.stats['nodes']} nodes and "
                             f"{out.stats['edges']} edges (budget {budget} nodes, {edge_budget} edges)")
        out.stats['auto'] = True
    out.expand = expand
    return out


def _group_key(s, side, level, positions, heads=True):
    """The group a non-scalar node joins. Boundary nodes of positions outside the view
    share one group per scope ('*' for the position)."""
    pos, layer, block, head, role = s
    if block == 'params':
        return ('p', side, role)
    if side != 'interior' and pos is not None and pos not in positions:
        pos = '*'
    if level == 'block':
        if side != 'interior':
            return ('g', side, pos, layer, block, None, role)   # 'k (cached) pos 0..1', not 'attn'
        if role in ('residual', 'attn_out'):
            return ('g', side, pos, layer, block, None, role)   # the residual add drawn as such
        return ('g', side, pos, layer, block, head if heads else None, None)   # a node per head; q, k, v; mlp
    return ('g', side, pos, layer, block, head, role)


def _keys(trace, sel, level, expand_ids, heads=True):
    """(kid, keys, segments): each selected node's group as a small int (an array over
    the whole trace, -1 where unselected), the groups' keys, and the selection as
    segments (first id, last id + 1, group, side) of consecutive ids in one group.

    Keys: ('n', id) a scalar node, ('m', name) the matrix of a matrix view, else
    _group_key's tuple. Nodes of one scope share a key, and a scope's nodes are
    consecutive ids, so the work is per run of one scope, not per node.
    """
    special_set = set(sel.focus) | expand_ids
    special = sorted(special_set)
    focus = set(sel.focus)
    positions = set(sel.positions)
    scopes, scope = trace.scopes, trace.scope
    index, keys = {}, []
    kid = array('i', [-1]) * len(trace)     # 4 bytes a node: a fold's one array over the whole trace
    segments = []
    run_start, run_scope = trace.scope_runs()

    def intern(k):
        j = index.get(k)
        if j is None:
            j = index[k] = len(keys)
            keys.append(k)
        return j

    def group(a, b, sid, sd, by_scope):
        j = by_scope.get(sid)
        if j is None:
            j = by_scope[sid] = intern(_group_key(scopes[sid], sd, level, positions, heads))
        if b - a == 1:
            kid[a] = j
        else:
            kid[a:b] = array('i', [j]) * (b - a)
        segments.append((a, b, j, sd))

    def single(i, sd):
        j = intern(('m', sel.matrix) if i in focus and sel.matrix is not None else ('n', i))
        kid[i] = j
        segments.append((i, i + 1, j, sd))

    def scattered(ids, sd, by_scope):
        """group() of each of the single ids `ids`, in C (a matrix's 80,000 uses)."""
        sids = list(map(scope.__getitem__, ids))
        for sid in dict.fromkeys(sids):     # interned in order of first appearance, as group() does
            if sid not in by_scope:
                by_scope[sid] = intern(_group_key(scopes[sid], sd, level, positions, heads))
        js = list(map(by_scope.__getitem__, sids))
        deque(map(kid.__setitem__, ids, js), maxlen=0)
        segments.extend(zip(ids, map(add, ids, repeat(1)), js, repeat(sd)))

    for sd, ids in (('interior', sel.nodes), ('input', sel.inputs), ('output', sel.outputs)):
        scalar = level == 'scalar' and sd != 'output'
        by_scope = {}
        done = 0
        if not scalar and all_single(ids) and special_set.isdisjoint(ids):      # a matrix's outputs: no run to walk
            runs, firsts, walk = (), list(ids), ()
        else:   # the runs walked: all at scalar level, else the long or special ones (single ids between: scattered())
            runs = id_runs(ids)
            firsts = list(map(itemgetter(0), runs))
            walk = range(len(runs)) if scalar else not_single(runs, firsts, special_set)
        for k in walk:
            a, b = runs[k]
            if scalar:
                for i in range(a, b):
                    single(i, sd)
                continue
            scattered(firsts[done:k], sd, by_scope)     # the single ids before this run
            done = k + 1
            start = a
            r = bisect_right(run_start, a) - 1
            while start < b:        # the trace's runs of one scope inside a..b-1 (groupby of scope[a:b])
                sid, end = run_scope[r], min(b, run_start[r + 1])
                r += 1
                # focus and expanded nodes inside the run are singletons of their own
                lo = bisect_left(special, start)
                while lo < len(special) and special[lo] < end:
                    i = special[lo]
                    if start < i:
                        group(start, i, sid, sd, by_scope)
                    single(i, sd)
                    start, lo = i + 1, lo + 1
                if start < end:
                    group(start, end, sid, sd, by_scope)
                start = end
        if not scalar:
            scattered(firsts[done:], sd, by_scope)
    return kid, keys, segments


def node_floor(trace, sel, level, expand_ids, memo=None):
    """A lower bound on the nodes a fold at `level` draws, from scopes alone (fast). `memo` (a
    dict, one fold's): each side's ids and scopes found once for every level tried."""
    special = set(sel.focus) | expand_ids
    positions = set(sel.positions)
    memo = {} if memo is None else memo
    keys, n = set(), (1 if sel.matrix is not None else len(sel.focus)) + len(expand_ids - set(sel.focus))
    for sd, ids in (('interior', sel.nodes), ('input', sel.inputs), ('output', sel.outputs)):
        if sd not in memo:      # each side's ids not special, and their scopes: once a fold
            rest = list(filterfalse(special.__contains__, ids)) if special else ids
            memo[sd] = len(rest), scopes_of(trace, rest)
        count, sids = memo[sd]
        if level == 'scalar' and sd != 'output':
            n += count
            continue
        for sid in sids:
            keys.add(_group_key(trace.scopes[sid], sd, level, positions))
    return n + len(keys)


def _fold(trace, sel, level, expand_ids, budget, edge_budget, floors=None):
    if level == 'block' and not expand_ids and (
            node_floor(trace, sel, level, expand_ids, floors) > budget or
            interior_edge_floor(trace, sel, lambda s: _group_key(s, 'interior', level, ())) > edge_budget):
        # its keys (heads apart; a fold draws a node a key: a document) or its interior's edges (a layer at
        # every position) are over budget: heads apart cannot fit; fold them in now, not after bundling
        return _fold_keys(trace, sel, level, expand_ids, budget, edge_budget, heads=False)
    out = _fold_keys(trace, sel, level, expand_ids, budget, edge_budget)
    if level == 'block' and not out.stats['fits'] and not expand_ids:
        # many positions: each head reads every earlier one's keys; heads folded in keep within budget
        out = _fold_keys(trace, sel, level, expand_ids, budget, edge_budget, heads=False)
    return out


def _fold_keys(trace, sel, level, expand_ids, budget, edge_budget, heads=True):
    pieces = fold_pieces(trace, sel, level, expand_ids, _group_key, heads)      # a matrix's uses
    if pieces is not None:
        keys, side, members, bundles, leaving, internal = pieces
    else:
        kid, keys, segments = _keys(trace, sel, level, expand_ids, heads)
        by_key = segments_by_key(segments)
        side = {j: segs[0][3] for j, segs in by_key}       # a key is of one side
        bundles, leaving, internal = bundle_edges(trace, segments, kid, side, by_key)
        held = {'interior': sel.nodes, 'input': sel.inputs, 'output': sel.outputs}
        members = [None] * len(keys)        # each key's ids, their runs (its segments, adjacent ones joined)
        for j, segs in by_key:
            runs = ascending(joined(segs))
            members[j] = (slices_of(held[side[j]], runs), runs, None)

    # -- visible nodes, named from trace ids ---------------------------------------------
    ordered = []        # summary.group_values: the leaving nodes sorted, to slice per run (made if asked)

    def leaving_sorted():
        if not ordered:
            ordered.append(sorted(leaving))
        return ordered[0]
    nodes = [_vnode(trace, keys[j], *members[j], side[j], (leaving, leaving_sorted), sel) for j in range(len(keys))]
    edges = []
    for (kc, kp), bundle in bundles.items():
        a, b = nodes[kc], nodes[kp]
        kind = 'focus' if a.focus else 'data' if a.side == b.side == 'interior' else 'boundary'
        scalar = a.kind == 'scalar' and b.kind == 'scalar'
        edges.append(VEdge(src=a.name, dst=b.name, kind=kind, count=bundle.count,
                           local=bundle.local if scalar else None, contrib=bundle.contrib,
                           contrib_norm=bundle.contrib_norm()))

    vnodes, edges = _reference_high_fanout(nodes, edges)
    row_refs = 0
    document = sel.kind == 'document'
    if level == 'vector' or (level == 'block' and document):
        before = len(vnodes)
        vnodes, edges = _reference_other_rows(vnodes, edges, document)
        row_refs = len(vnodes) - before
    order = {n.name: k for k, n in enumerate(vnodes)}
    edges.sort(key=lambda e: (order[e.src], order[e.dst]))
    stats = {
        'level': level,
        'nodes': len(vnodes),
        'edges': len(edges),
        'refs': sum(1 for n in vnodes if n.kind == 'ref'),
        'scalar_nodes': sum(1 for n in vnodes if n.kind == 'scalar'),
        'group_nodes': sum(1 for n in vnodes if n.kind in ('group', 'matrix')),
        # ops of the view (sel.nodes) inside summary nodes; the boundary's are counted apart
        'folded_ops': sum(len(n.ids) for n in vnodes if n.kind in ('group', 'matrix') and n.side == 'interior'),
        'folded_boundary_ops': sum(len(n.ids) for n in vnodes if n.kind in ('group', 'matrix')
                                   and n.side != 'interior'),
        'ops': len(sel.nodes),
        'boundary_ops': len(sel.inputs) + len(sel.outputs),
        'scalar_edges': sum(e.count for e in edges),
        'internal_edges': internal,
        'budget': budget,
        'edge_budget': edge_budget,
    }
    # references between rows stand in for long edges (one a row, plain text): not in the node budget
    stats['fits'] = stats['nodes'] - row_refs <= budget and stats['edges'] <= edge_budget
    return Folded(selection=sel, level=level, nodes=vnodes, edges=edges, stats=stats)


def _vnode(trace, k, ids, runs, sids, sd, leaving, sel):
    """The VNode of key `k` holding `ids` (a tuple, ascending: slices of its side's ids in the selection; a
    whole document's groups hold 3.2 M ids, no int made again, no list sorted, no runs found again), their
    `runs` and scope ids `sids` (sorted; None: found from the runs). `leaving`: (a set, a function giving it
    sorted), the nodes with a parent in another visible node."""
    node = _make_vnode(trace, k, ids, runs, sids, sd, leaving, sel)
    # VNode's runs, known; its value runs too when every member is a value (a boundary kept as it is, a matrix's uses)
    node.__dict__.update(runs=runs, **({'value_runs': runs} if node.values is node.ids or node.values == node.ids else {}))
    return node


def _make_vnode(trace, k, ids, runs, sids, sd, leaving, sel):
    first = ids[0]
    scopes = trace.scopes
    sids = sorted(scopes_in(trace, runs)) if sids is None else sids
    if len(sids) == 1:
        common = scopes[sids[0]]
    else:
        common = Scope(*(vals.pop() if len(vals) == 1 else None
                         for vals in (set(scopes[s][f] for s in sids) for f in range(len(FIELDS)))))
    positions = tuple(sorted({scopes[s].pos for s in sids} - {None}))
    if k[0] == 'n':
        return VNode(name=f'n{first}', kind='scalar', side=sd, ids=(first,), scope=common,
                     positions=positions, focus=first in sel.focus)
    if k[0] == 'm':
        return VNode(name=f'm{first}', kind='matrix', side=sd, ids=ids, scope=common,
                     positions=positions, values=ids, focus=True)
    if sd == 'interior':    # a scattered group is read per id (group_values): the sorted leaving nodes not made
        values = group_values(trace, ids, leaving[0], leaving[1]() if 4 * len(runs) <= len(ids) else None, runs=runs)
    else:
        values = boundary_values(trace, ids, runs)
    return VNode(name=f'g{first}', kind='group', side=sd, ids=ids, scope=common,
                 positions=positions, values=tuple(values))


def _reference_other_rows(vnodes, edges, document=False):
    """In a vector view of several positions (drawn as rows), what a row reads from outside
    itself is a reference: the keys and values a position caches from earlier positions,
    and the parameter matrices every row reads. One reference node per reading position
    and set of nodes read ("↗ k (cached) pos 0..2", feeding that position's four heads),
    so that each row is laid out on its own: wired, the long edges between rows pulled
    dot's order out of shape (an MLP drawn above its own attention, rows out of order).
    The whole document (also at block level): its loss, of no position, reads the rows'
    losses through one reference too, so the rows stay apart and in order."""
    by_name = {n.name: n for n in vnodes}
    rows = {n.scope.pos for n in vnodes if n.side == 'interior' and n.kind != 'ref'}
    if document:
        rows.discard(None)
    if len(rows) < 2 or None in rows:
        return vnodes, edges
    fed = {}
    for e in edges:
        if e.kind != 'ref':
            fed.setdefault(e.src, set()).add(by_name[e.dst].scope.pos)

    def crosses(e):
        a, b = by_name[e.src], by_name[e.dst]
        if e.kind == 'ref' or b.side != 'interior' or b.kind != 'group':
            return False
        if a.side == 'interior':
            return (a.kind == 'group' and a.scope.pos != b.scope.pos
                    and (not document or a.scope.pos is not None))
        return a.kind == 'group' and a.scope.block == 'params' and len(fed[a.name]) > 1

    if not any(crosses(e) for e in edges):
        return vnodes, edges
    kept, readers = [], {}
    for e in edges:
        if crosses(e):
            readers.setdefault(e.dst, []).append(e)
        else:
            kept.append(e)
    order = {n.name: k for k, n in enumerate(vnodes)}
    shared = {}         # (reading position, names read) -> its consumers, in drawing order
    for dst in sorted(readers, key=order.get):
        srcs = tuple(sorted({e.src for e in readers[dst]}, key=order.get))
        shared.setdefault((by_name[dst].scope.pos, srcs), []).append(dst)
    taken = set(by_name)
    at = {}             # consumer -> the references drawn just before it
    for (_, srcs), dsts in shared.items():
        first = by_name[dsts[0]]
        name = 'r' + first.name
        while name in taken:
            name = 'r' + name
        taken.add(name)
        at.setdefault(first.name, []).append(
            VNode(name=name, kind='ref', side='interior', ids=tuple(by_name[s].ids[0] for s in srcs),
                  scope=Scope(first.scope.pos, first.scope.layer, first.scope.block, None, None),
                  positions=first.positions, refers=srcs, between_rows=True))
        for s in srcs:
            by_name[s].fan_out += len(dsts)
        for dst in dsts:     # every consumer of the set reads the same nodes
            es = sorted(readers[dst], key=lambda e: order[e.src])
            kept.append(VEdge(src=name, dst=dst, kind='ref', count=sum(e.count for e in es), local=None,
                              contrib=sum(e.contrib for e in es),
                              contrib_norm=math.sqrt(fsum(e.contrib_norm * e.contrib_norm for e in es)),
                              sources=tuple((e.src, e.count, e.contrib, e.contrib_norm) for e in es)))
    out = []
    for n in vnodes:
        out.extend(at.get(n.name, ()))
        out.append(n)
    return out, kept


def _reference_high_fanout(vnodes, edges):
    """Unwire nodes with more than FANOUT_LIMIT consumers: each consumer gets one
    reference node (named 'r' + its own name) standing for all it reads that way."""
    by_name = {n.name: n for n in vnodes}
    consumers = {}
    for e in edges:
        consumers.setdefault(e.src, []).append(e)
    # an interior summary (q, k, v feeding an expanded head) stays wired: it is the flow itself
    hub = {src for src, es in consumers.items() if len(es) > FANOUT_LIMIT and not by_name[src].focus
           and not (by_name[src].kind == 'group' and by_name[src].side == 'interior')}
    for src in hub:
        by_name[src].fan_out = len(consumers[src])
    kept, via = [], {}
    for e in edges:
        if e.src in hub:
            via.setdefault(e.dst, []).append(e)
        else:
            kept.append(e)
    refs = []
    for dst, es in via.items():
        es.sort(key=lambda e: by_name[e.src].ids[0])
        name = 'r' + dst
        target = by_name[dst]
        refs.append(VNode(name=name, kind='ref', side=target.side, ids=tuple(by_name[e.src].ids[0] for e in es),
                          scope=target.scope, positions=target.positions,
                          refers=tuple(e.src for e in es)))
        scalar = len(es) == 1 and es[0].local is not None
        kept.append(VEdge(src=name, dst=dst, kind='ref', count=sum(e.count for e in es),
                          local=es[0].local if scalar else None, contrib=sum(e.contrib for e in es),
                          contrib_norm=math.sqrt(fsum(e.contrib_norm * e.contrib_norm for e in es)),
                          sources=tuple((e.src, e.count, e.contrib, e.contrib_norm) for e in es)))
    # a reference is drawn just before the node it serves
    rank = {n.name: (n.ids[0], 1) for n in vnodes}
    for r in refs:
        rank[r.name] = (by_name[r.name[1:]].ids[0], 0)
    out = sorted(vnodes + refs, key=lambda n: rank[n.name])
    return out, kept
