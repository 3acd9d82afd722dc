"""Frames: backprop (or the forward pass) on a folded view, one visible node at a time.

A picture of a trace is a still; the lesson is a process. `frames(view)` turns
the visible graph of a View (its Folded nodes and edges) into a sequence of
frames that a player can step through by switching CSS classes on the same SVG:

backward  reverse topological order of the visible graph, the loss (or the view's
          outputs, whose grads come from outside it) first. Frame k: the node
          whose grad has just become final, and the edges that carry that grad to
          its inputs, each labelled `local x upstream = contribution`.
forward   the data's order: frame k is the computed node whose value has just
          appeared (topological order, the first made first: the embedding), and
          the edges that brought its inputs; the sources it reads (parameters,
          cached keys and values, constants) are lit with it, at their first read
          ('with'), never in a run of leaves before any computation.

Folded nodes are honest sums: an edge standing for N scalar edges carries the
sum of their N contributions (in the order backward added them), and, since a
sum can cancel (a softmax's gradients into its logits sum to ~1e-17), the norm
of what each source member received and whether their signs agree ('norm',
'signs', 'note'; its label says a figure that cannot cancel: frame_texts.edge_text);
its `local` is given only when both ends are scalars (d dst / d src, summed over its
edges: x*x gives 2x). A node used several times has a ledger: one entry per
scalar contribution it received, in the order the engine added them (its parents'
backward ranks), tagged with the frame at which it arrives (-1: from outside the
view, already there when the view starts). The running sum at a frame is the sum,
in engine order, of the entries arrived by then, starting from 0.0 as the engine
does; at the node's own frame every entry has arrived, so the ledger's last sum
is the recorded grad bit for bit. Groups keep a ledger per *value* (the members
their label summarises; summary.group_values).

Ordering: among the nodes that are ready (every consumer done), the one the
engine finished first (the smallest backward rank among its members) goes next,
so the frames follow the real backward pass wherever the folding allows.
A folding whose visible graph has a cycle has no topological order; the
cycle's nodes are then named in the error.

What each frame's texts read (the nodes' running sums, 'grad ?', the edges' labels)
is computed here too (frame_texts.py; with the drawn SVG, where each edge label goes:
edge_labels.py), once for every surface that plays or prints frames.
"""

import heapq
from itertools import repeat

from microgpt.errors import InputError
from microgpt.files import json_safe
from microgpt.recording.runs import gather, scopes_in
from microgpt.recording.scopes import scope_path

from ..draw.heatmap import grad_rows
from ..draw.ids import edge_id, node_id
from ..draw.labels import group_title
from .edge_labels import place_edge_labels
from .frame_bundles import edge_bundles
from .frame_texts import add_node_fields, edge_text

MODES = ('backward', 'forward')
FORMAT = 'microgpt-graph frames'
VERSION = 1


class FramesError(InputError):
    """The view cannot be stepped through (bad mode, or a cycle in its folding)."""


def visible_graph(folded):
    """(names, consumers, drawn): the visible nodes but references, in drawing
    order; {name: [consumer names]} (data flows src -> consumer); and, per logical
    edge (src, dst), the drawn edge that shows it (a referenced hub's edges are
    drawn as the reference node's edge into dst)."""
    names = [n.name for n in folded.nodes if n.kind != 'ref']
    consumers = {n: [] for n in names}
    drawn = {}
    for e in folded.edges:
        if e.kind == 'ref':
            for s in e.sources:
                consumers[s[0]].append(e.dst)
                drawn[(s[0], e.dst)] = (e.src, e.dst)
        else:
            consumers[e.src].append(e.dst)
            drawn[(e.src, e.dst)] = (e.src, e.dst)
    return names, consumers, drawn


def order(trace, folded, mode='backward'):
    """Visible node names in frame order (see the module docstring)."""
    if mode not in MODES:
        raise FramesError(f"mode {mode!r} is not one of: {', '.join(MODES)}")
    names, consumers, _ = visible_graph(folded)
    nodes = {n.name: n for n in folded.nodes}
    rank = trace.backward_rank
    big = len(trace)

    def first_rank(name):       # the smallest rank >= 0 of its members, read per run in C
        ranks = gather(rank, nodes[name].runs)
        least = min(ranks, default=big)
        return least if least >= 0 else min(filter((-1).__lt__, ranks), default=big)     # some unreached

    inputs = {n: [] for n in names}
    for src, dsts in consumers.items():
        for d in dsts:
            inputs[d].append(src)
    if mode == 'forward':
        return _forward_order(names, inputs, consumers)
    after, before = consumers, inputs    # a node is ready when all its consumers are done
    key = {n: (first_rank(n), k) for k, n in enumerate(names)}
    waiting = {n: len(set(after[n])) for n in names}
    heap = [key[n] + (n,) for n in names if waiting[n] == 0]
    heapq.heapify(heap)
    out = []
    while heap:
        n = heapq.heappop(heap)[-1]
        out.append(n)
        for m in dict.fromkeys(before[n]):
            waiting[m] -= 1
            if waiting[m] == 0:
                heapq.heappush(heap, key[m] + (m,))
    if len(out) != len(names):
        _cycle([n for n in names if waiting[n] > 0])
    return out


def _cycle(stuck):
    raise FramesError(f"the visible graph of this view has a cycle through {', '.join(stuck[:6])}"
                      f"{' ...' if len(stuck) > 6 else ''}; try another level")


def _forward_order(names, inputs, consumers):
    """The forward pass as the data flows: the computed nodes (those with a visible input) in
    topological order, the first made first (drawing order follows ids: creation order), each
    preceded by the sources it reads that are not lit yet (parameters, cached keys and values,
    constants: nodes nothing visible feeds). A source is lit with its first reader, never in a
    run of leaves before any computation; a view of sources only lights them in drawing order."""
    computed = [n for n in names if inputs[n]]
    if not computed:
        return list(names)
    key = {n: k for k, n in enumerate(names)}
    waiting = {n: len({m for m in inputs[n] if inputs[m]}) for n in computed}
    heap = [(key[n], n) for n in computed if waiting[n] == 0]
    heapq.heapify(heap)
    out, lit = [], set()
    while heap:
        n = heapq.heappop(heap)[1]
        for m in sorted(dict.fromkeys(inputs[n]), key=key.get):
            if not inputs[m] and m not in lit:
                lit.add(m)
                out.append(m)
        out.append(n)
        for m in dict.fromkeys(consumers[n]):
            waiting[m] -= 1
            if waiting[m] == 0:
                heapq.heappush(heap, (key[m], m))
    if len(out) - len(lit) != len(computed):
        _cycle([n for n in computed if waiting[n] > 0])
    return out + [n for n in names if not inputs[n] and n not in lit]     # sources nothing reads


def frames(view, mode='backward', svg=None):
    """The frames of `view` (a View from build_view) as a JSON-able dict; with `svg`, the
    view drawn (text), each labelled edge also says where its label goes ('at')."""
    return frames_of(view.trace, view.folded, mode, svg, view.fields)


def frames_of(trace, folded, mode='backward', svg=None, drawn=None):
    """frames() of a folding; `drawn`: its nodes' data and grad fields as drawn (View.fields)."""
    seq = order(trace, folded, mode)
    out = _forward(trace, folded, seq) if mode == 'forward' else _backward(trace, folded, seq)
    add_node_fields(trace, drawn or {}, out)
    if svg is not None:
        place_edge_labels(out, svg)
    return out


def _owner(folded):
    """{member id: its visible node's name} (made in C: a token view holds 440,000 ids at 5 M nodes)."""
    owner = {}
    for n in folded.nodes:
        if n.kind != 'ref':
            owner.update(zip(n.ids, repeat(n.name)))
    return owner


def _node_info(trace, n, folded):
    """A node's entry: its kind, side and name in words (a scalar's Trace.name; a summary's title and
    scope, 'x + residual (pos4/layer0/mlp/residual)', as the picture titles it: labels.group_title)."""
    d = {'kind': n.kind, 'side': n.side}
    matrix = folded.selection.matrix
    if n.kind == 'scalar':
        i = n.ids[0]
        d.update(id=i, label=trace.name(i), data=json_safe(trace.data[i]), grad=json_safe(trace.grad[i]))
    else:
        title = matrix if n.kind == 'matrix' else group_title(n, folded.level, trace)
        path = scope_path(n.scope)
        d.update(ops=len(n.ids), values=len(n.values), label=title if not path or title == path else f'{title} ({path})')
    if n.kind == 'matrix' and matrix is not None:
        # the heat-map's grad column: its colours are the grads, hidden until the matrix's frame
        d['parts'] = [node_id(r) for r in grad_rows(trace, n, matrix)]
    return d


def _backward(trace, folded, seq):
    names, _consumers, drawn = visible_graph(folded)
    nodes = {n.name: n for n in folded.nodes}
    frame_of = {name: k for k, name in enumerate(seq)}
    owner = _owner(folded)
    grad, local = trace.grad, trace.local

    bundles = edge_bundles(trace, folded, names, owner)

    # -- frames --------------------------------------------------------------------------
    out_frames = []
    into = {}       # dst name -> [(src, bundle)] in drawing order
    for (src, dst), b in bundles.items():
        into.setdefault(dst, []).append((src, b))
    for k, name in enumerate(seq):
        n = nodes[name]
        edges = []
        for src, b in sorted(into.get(name, ()), key=lambda t: frame_of[t[0]]):
            shown = drawn.get((src, name))
            if shown is None:       # not drawn: fold leaves out an output's operands outside the view
                continue
            count = b.count
            d = {'src': src, 'dst': name, 'svg': edge_id(*shown), 'count': count,
                 'contribution': json_safe(b.contribution)}      # in the engine's order, from 0.0
            if count > 1:       # a sum that can cancel: also its norm and whether its signs agree
                d.update(norm=json_safe(b.norm), signs=b.signs)
                if is_softmax_edge(trace, nodes[src], n):
                    d['note'] = SOFTMAX_NOTE
            if shown[0] != src:
                d['via'] = node_id(shown[0])     # a referenced hub: its reference node
            if count == 1:      # one scalar edge, whatever the folding: its own numbers
                parent, edge = b.last
                d.update(local=json_safe(local[edge]), upstream=json_safe(grad[parent]), parent=parent)
            elif nodes[src].kind == 'scalar' and n.kind == 'scalar':     # x*x, x+x
                d.update(local=json_safe(b.local), upstream=json_safe(grad[n.ids[0]]))
            d['text'] = edge_text(d)
            edges.append(d)
        f = {'frame': k, 'node': name, 'svg': node_id(name), 'edges': edges}
        if n.kind == 'scalar':
            f['grad'] = json_safe(grad[n.ids[0]])
        out_frames.append(f)

    # -- nodes and the ledgers of scalar nodes ---------------------------------------------
    books = ledgers(trace, folded, seq, groups=False, owner=owner)
    info = {}
    for name in seq:
        d = _node_info(trace, nodes[name], folded)
        d['frame'] = frame_of[name]
        if name in books:
            d['ledger'] = books[name][nodes[name].ids[0]]
        info[name] = d
    loss_id = trace.meta.get('loss_id')
    return {'format': FORMAT, 'version': VERSION, 'mode': 'backward',
            'loss': owner.get(loss_id) if loss_id is not None else None, 'order': seq,
            'nodes': info, 'frames': out_frames}


SOFTMAX_NOTE = "softmax's gradients sum to 0"
LOGITS, SOFTMAX = ('logits', 'attn_logits'), ('probs', 'attn_weights')


def is_softmax_edge(trace, src, dst):
    """Whether the folded edge src -> dst carries a softmax's gradients into its logits: they sum
    to 0 (d/dz_i of softmax, summed over i, is 0), so their signed sum says nothing."""
    def roles(n):       # its members' scopes per run (runs.scopes_in), not per id
        return {trace.scopes[sid].role for sid in scopes_in(trace, n.runs)}

    return bool(roles(src) & set(LOGITS)) and bool(roles(dst) & set(SOFTMAX))


def ledgers(trace, folded, seq=None, groups=True, owner=None):
    """{visible name: {member id: ledger rows}} (see _running) for scalar nodes and,
    with `groups`, for each value of every group (summary.group_values; boundary groups:
    every member but constants; parameter groups: every member). `seq`: the backward frame order (default: order());
    `owner`: _owner(folded), when known."""
    if seq is None:
        seq = order(trace, folded, 'backward')
    frame_of = {name: k for k, name in enumerate(seq)}
    owner = _owner(folded) if owner is None else owner
    rank, grad = trace.backward_rank, trace.grad
    pptr, parent, pedge = trace.parents_index()
    loss_id = trace.meta.get('loss_id')
    out = {}
    for n in folded.nodes:
        if n.kind == 'ref' or (n.kind != 'scalar' and not groups):
            continue
        book = out[n.name] = {}
        for i in (n.ids if n.kind == 'scalar' else n.values):
            entries = []
            ks = [k for k in range(pptr[i], pptr[i + 1]) if rank[parent[k]] >= 0]  # else backward added nothing
            # these edges' contributions only (Trace.edge_contribs), not the whole column (see _backward)
            contrib = trace.edge_contribs(map(pedge.__getitem__, ks), (grad[parent[k]] for k in ks))
            for k, c in zip(ks, contrib):
                p = parent[k]
                src = owner.get(p)
                entries.append((rank[p], p, c, frame_of[src] if src is not None else -1, src or 'outside'))
            entries.sort()
            book[i] = _running(entries, i == loss_id)
    return out


def _running(entries, is_loss):
    """Ledger rows [frame, from, parent id, contribution, sum shown at that frame]:
    at frame f the sum is that of the entries arrived by f (frame <= f), added in
    engine order from 0.0. The last row's sum is the recorded grad."""
    if is_loss:
        return [[-1, 'seed', None, 1.0, 1.0]]    # backward() sets the loss's grad to 1
    rows = []
    arrivals = sorted({f for _, _, _, f, _ in entries})
    for _, p, c, f, src in entries:
        rows.append([f, src, p, c, None])
    for f in arrivals:
        s = 0.0
        for row in rows:
            if row[0] <= f:
                s += row[3]
        # the sum shown from frame f on: put it on the last row (in engine order) arriving at f
        last = max(k for k, row in enumerate(rows) if row[0] == f)
        rows[last][4] = s
    for row in rows:
        row[3] = json_safe(row[3])
        if row[4] is not None:
            row[4] = json_safe(row[4])
    return rows


def ledger_sum(rows):
    """The grad a ledger completes to: the sum at the latest arrival frame."""
    if not rows:
        return 0.0
    last_frame = max(r[0] for r in rows)
    return [r[4] for r in rows if r[0] == last_frame and r[4] is not None][-1]


def _forward(trace, folded, seq):
    """Forward frames: one per computed node (see _forward_order); the sources it reads first
    are lit at its frame ('with'), so their 'frame' is its frame."""
    _names, consumers, drawn = visible_graph(folded)
    nodes = {n.name: n for n in folded.nodes}
    inputs = {}
    for src, dsts in consumers.items():
        for d in dsts:
            inputs.setdefault(d, []).append(src)
    last = max((k for k, name in enumerate(seq) if inputs.get(name)), default=-1)
    out_frames, frame_of, waiting = [], {}, []
    for at, name in enumerate(seq):
        if not inputs.get(name) and at < last:
            waiting.append(name)        # a source: lit with the reader that follows it
            continue
        k = len(out_frames)
        n = nodes[name]
        edges = [{'src': s, 'dst': name, 'svg': edge_id(*drawn[(s, name)])}
                 for s in dict.fromkeys(inputs.get(name, ()))]
        f = {'frame': k, 'node': name, 'svg': node_id(name), 'edges': edges}
        if waiting:
            f['with'] = waiting
        if n.kind == 'scalar':
            f['data'] = json_safe(trace.data[n.ids[0]])
        out_frames.append(f)
        for m in waiting + [name]:
            frame_of[m] = k
        waiting = []
    info = {}
    for name in seq:
        d = _node_info(trace, nodes[name], folded)
        d['frame'] = frame_of[name]
        info[name] = d
    return {'format': FORMAT, 'version': VERSION, 'mode': 'forward', 'order': seq,
            'nodes': info, 'frames': out_frames}
