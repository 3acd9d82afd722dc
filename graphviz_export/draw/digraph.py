"""Draw: a Folded view -> a graphviz.Digraph (DOT text only; render.py lays it out).

One style table (style.py) for everything; clusters by position, layer, block
and head (a cluster is drawn when it holds two or more nodes); boundary nodes
dashed; a legend and the notes in the picture. Node names come from trace ids,
clusters are numbered in drawing order, and nodes and edges are emitted in a
fixed order, so the same view always gives the same DOT text. Each drawn node,
edge and matrix cluster carries its `id` (ids.py) for the frame player.
"""

import math
import textwrap

import graphviz

import graphviz_export.draw.escape as escape
import graphviz_export.draw.labels as labels
from microgpt.recording.runs import gather, runs_of

from ..fold.owners import Owners
from ..fold.summary import group_figures, held_figures, interior_of, share_figures
from .heatmap import heatmap_cluster, row_anchor
from .ids import edge_id, node_id
from .page import choose_for_aspect, choose_rankdir, label_width_lr
from .placement import (
    dot_product_rows,
    feeds_heads,
    inputs_on_top,
    order_uses,
    position_uses,
    row_starts,
    rows_in_index_order,
    unwired_in_a_row,
    wrap_chains,
)
from .style import (
    BOUNDARY,
    CLUSTER,
    EDGE,
    EDGE_CLASS,
    FOCUS,
    GRAPH,
    HIGHLIGHT,
    LEGEND,
    LEGEND_MARKS,
    LEGEND_MIXED,
    LEGEND_NONFINITE,
    LEGEND_SCALE,
    LEGEND_WIDTH,
    LR_NODESEP,
    NODE,
    NODE_CLASS,
    RESIDUAL,
    fmt,
    grad_fill,
    group_fill,
)


def draw(trace, folded, *, edge_grads=False, highlight=None, notes=(), legend=True, annotate=None,
         red_edges=(), list_missing=True, fields=None, aspect='auto', cells=None):
    """The Digraph of `folded`. highlight: {node id: reason}, drawn with a red outline
    and the reason in the tooltip; notes: lines for a note box (health flags);
    annotate: {node id: text} written on the scalar node as one more field (the
    failure picture's "found | should be"); red_edges: {(child id, parent id)} drawn red;
    list_missing: name highlighted ids outside the view in the notes (else one count);
    fields: a dict to fill with {node name: {'data', 'grad'[, 'norm']} texts} of every scalar and
    summary node, and {'grad': its grad line} of a heat-map, as drawn (labels.drawn_fields,
    heatmap.grad_line: what the frame player rewrites); aspect: the screen shape to lay it
    out for (page.py; 'auto': left to right where that fits a 16:9 projection); cells: a dict to
    fill with a matrix heat-map's cells, its rows then drawn as plain boxes for a page to paint
    (heatmap.heatmap_cluster; None: striped, a picture that shows itself)."""
    sel = folded.selection
    reasons, missing = _highlights(folded, highlight or {})
    if missing and not list_missing:
        missing = [f'{len(missing)} more highlighted nodes are outside this view']
    all_notes = [*notes, *folded.notes, *missing]
    annotate = annotate or {}
    names = {n.name: n for n in folded.nodes}
    interior = interior_of(trace, sel)
    memo = {}       # each node's texts built once per view, its record once per rankdir (widths, then drawing)
    rankdir, wrap = _rankdir(trace, folded, names, reasons, interior, annotate, aspect, memo)
    graph = dict(GRAPH, rankdir=rankdir)
    if rankdir == 'LR' and not any(n.kind == 'matrix' for n in folded.nodes):
        graph['nodesep'] = LR_NODESEP     # LR pictures run wide: more air between rows costs no width
    g = graphviz.Digraph('microgpt', graph_attr=graph, node_attr=NODE, edge_attr=EDGE)
    g.attr(label=_title(trace, folded))
    anchors = {}    # matrix node name -> (the DOT node its edges start at, its cluster)
    root = _cluster_tree(folded.nodes, names)
    if wrap:
        # the rows are laid out on their own (fold._reference_other_rows), and dot stacks
        # such parts of an LR picture in the reverse of their drawing order: position 0 on top
        root['items'].reverse()
    counter = [0]
    uses = position_uses(folded)
    rows = []       # an expanded head's dot products (TB), each in index order
    if rankdir == 'TB' and folded.level != 'scalar':
        for by_k in dot_product_rows(trace, folded).values():
            rows.extend(r for r in (row_starts(trace, c) for _, c in sorted(by_k.items())) if len(r) > 1)
    boxes = set(uses) | {f'n{i}' for row in rows for i in row}     # plain boxes: flat edges hold

    def emit(container, cluster):
        for kind, item in cluster['items']:
            if kind == 'cluster':
                if item['count'] < 2:
                    emit(container, item)        # a one-node cluster only adds a box
                    continue
                counter[0] += 1
                field, value = item['path'][-1]
                with container.subgraph(name=f'cluster_{counter[0]}') as c:
                    c.attr(label=escape.plain(_cluster_label(trace, field, value)), **CLUSTER[field])
                    emit(c, item)
            elif item.kind == 'matrix':
                anchors[item.name] = heatmap_cluster(container, trace, item, sel.matrix,
                                                     reasons.get(item.name, ()), fields, cells)
            else:
                attrs = _node_attrs(trace, item, folded.level, names, reasons, interior,
                                    annotate.get(item.ids[0]) if item.kind == 'scalar' else None,
                                    'box' if item.name in boxes else rankdir, fields, memo)
                container.node(item.name, id=node_id(item.name), **attrs)

    emit(g, root)
    emit = None     # recursive, so its closure held itself: cleared, draw's locals (the selection's ids) go now
    if uses:
        order_uses(g, uses)
    rows_in_index_order(g, rows)
    red = {(f'n{c}', f'n{p}') for c, p in red_edges}
    for e in _emission_order(folded.edges, names, rankdir):
        attrs = _edge_attrs(trace, e, names, folded, edge_grads, anchors)
        attrs['id'] = edge_id(e.src, e.dst)
        if wrap and _enters_mlp(names[e.src], names[e.dst]):
            attrs['constraint'] = 'false'   # the MLP restarts at the left, under the attention
        if (e.src, e.dst) in red:
            attrs.update(HIGHLIGHT, label=escape.plain('wrong local derivative'), fontcolor=HIGHLIGHT['color'])
        src = _edge_ends(e, anchors)[0]
        if e.src in anchors:
            row = row_anchor(trace, names[e.src], sel.matrix, names[e.dst])
            if row is not None:         # from the row this use reads, not the matrix's middle
                src = row
                attrs.pop('ltail', None)
        g.edge(src, e.dst, **attrs)
    if wrap:
        unwired_in_a_row(g, folded)
    expanded = rankdir == 'TB' and folded.level != 'scalar' and wrap_chains(g, trace, folded)
    if expanded:
        inputs_on_top(g, folded)
    if all_notes:
        g.node('notes', escape.lines(all_notes), **NODE_CLASS['notes'])
    if legend:
        _legend(g, trace, folded, reasons, edge_grads, names)
        if uses and sel.matrix is not None:   # beside the last column, not the heat-map's
            g.edge(folded.nodes[-1].name, 'legend_bar', style='invis', weight='0')
        elif expanded:  # under the picture: the top row holds the inputs
            last = [n.name for n in folded.nodes if n.side == 'interior' and n.kind != 'ref']
            g.edge(last[-1], 'legend_bar', style='invis', weight='0')
    return g


# -- clusters ------------------------------------------------------------------------------
def cluster_path(node, names=None):
    """((field, value), ...) of the clusters an interior node sits in; () outside. A
    reference to a scalar sits in its reader's head cluster (outside, dot would put it
    beside the cluster: a column of references ~240 pt wide beside an expanded head)."""
    if node.side != 'interior' or node.kind == 'matrix':
        return ()
    pos, layer, block, head, _ = node.scope
    reader = names.get(node.name[1:]) if node.kind == 'ref' and names else None
    if node.kind != 'scalar' and (reader is None or reader.kind != 'scalar'):
        head = None     # summaries name their head; a head cluster would defeat the head order
    path = []
    for f, v in (('pos', pos), ('layer', layer), ('block', block), ('head', head)):
        if v is not None and v != 'params':
            path.append((f, v))
    return tuple(path)


def _cluster_tree(nodes, names=None):
    root = {'path': (), 'items': [], 'count': 0, 'sub': {}}
    for n in nodes:
        c = root
        c['count'] += 1
        for step in cluster_path(n, names):
            sub = c['sub'].get(step)
            if sub is None:
                sub = c['sub'][step] = {'path': c['path'] + (step,), 'items': [], 'count': 0, 'sub': {}}
                c['items'].append(('cluster', sub))
            c = sub
            c['count'] += 1
        c['items'].append(('node', n))
    return root


def _cluster_label(trace, field, value):
    if field == 'pos':
        strs = trace.meta.get('token_strs') or []
        if value + 1 < len(strs):
            return f"position {value}: '{strs[value]}' -> '{strs[value + 1]}'"
        return f'position {value}'
    if field == 'layer':
        return f'layer {value}'
    if field == 'head':
        return f'head {value}'
    return str(value)


# -- nodes and edges ---------------------------------------------------------------------------
def _style(*parts):
    out = []
    for p in parts:
        for s in p.split(','):
            if s and s not in out:
                out.append(s)
    return ','.join(out)


def _rankdir(trace, folded, names, reasons, interior, annotate, aspect='auto', memo=None):
    """(rankdir, wrap): 'LR' when the view fits a 16:9 screen that way (page.py), else
    'TB'; a matrix heat-map is always LR (its rows are laid out for it). wrap: a view of
    several positions too wide for LR whose MLPs, each drawn under its attention (two
    lines per position), fit: still LR, so that the positions stay rows. With an `aspect`
    (a screen shape), the direction that fills that shape best (page.choose_for_aspect)."""
    if any(n.kind == 'matrix' for n in folded.nodes):
        return 'LR', False

    def label(n, rankdir):
        note = annotate.get(n.ids[0]) if n.kind == 'scalar' else None
        return _node_attrs(trace, n, folded.level, names, reasons, interior, note, rankdir, memo=memo)['label']

    edges = [(e.src, e.dst) for e in folded.edges]
    if aspect != 'auto':
        labels = {n.name: {'LR': label(n, 'LR'), 'TB': label(n, 'TB')} for n in folded.nodes}
        return choose_for_aspect(list(names), edges, labels, aspect), False
    widths = {n.name: label_width_lr(label(n, 'LR')) for n in folded.nodes}
    rankdir = choose_rankdir(list(names), edges, widths)
    if rankdir == 'LR' or folded.level == 'scalar':
        return rankdir, False
    if len({n.scope.pos for n in folded.nodes if n.side == 'interior'}) < 2:
        return rankdir, False
    wrapped = [(a, b) for a, b in edges if not _enters_mlp(names[a], names[b])]
    if len(wrapped) == len(edges) or choose_rankdir(list(names), wrapped, widths) != 'LR':
        return rankdir, False
    return 'LR', True


def _enters_mlp(src, dst):
    """An edge into a position's MLP from that position's attention (the flow and the
    residual skip): cut from the ranking when the MLP is wrapped under the attention."""
    return (src.side == 'interior' and dst.side == 'interior' and src.kind != 'ref'
            and ((dst.scope.block == 'mlp' and src.scope.block != 'mlp')
                 or (dst.scope.block == 'lm_head' and src.scope.block == 'mlp'))
            and src.scope.pos == dst.scope.pos)


def _node_attrs(trace, node, level, names, reasons, interior=None, note=None, rankdir='LR', fields=None, memo=None):
    """The DOT attributes of one node. `memo` (a dict) keeps what was built for a node, so that
    measuring the labels (_rankdir) and drawing them builds each label and figure once."""
    if memo is None:
        memo = {}
    key = (node.name, rankdir)
    if key in memo:
        attrs, value_fields = memo[key]
    else:
        attrs, value_fields = memo[key] = _build_attrs(trace, node, level, names, reasons, interior, note,
                                                       rankdir, memo)
    if fields is not None and value_fields is not None:
        fields[node.name] = value_fields
    return dict(attrs)


def _build_attrs(trace, node, level, names, reasons, interior, note, rankdir, memo):
    """(attributes, value fields or None) of one node (see _node_attrs)."""
    why = reasons.get(node.name, ())
    value_fields = None
    if node.kind == 'ref':
        refs = [labels.short_name(trace, names[r], level) for r in node.refers]
        read = _scalars_read(trace, names.get(node.name[1:]), [names[r] for r in node.refers])
        short = read or labels.ref_names(trace, [names[r] for r in node.refers], level)
        why_here = ("drawn in another position's row, or once at the top, and read by this row: "
                    if node.between_rows else 'drawn once elsewhere, as it has many consumers: ')
        attrs = dict(NODE_CLASS['ref'], label=labels.ref_label(short), tooltip=escape.tooltip([why_here + ', '.join(refs)]))
        return attrs, None
    if ('look', node.name) not in memo:     # once for both directions: its colours, figures and texts
        memo['look', node.name] = look(trace, node, interior, outlined=bool(why))
        memo['texts', node.name] = _texts(trace, node, level, why, note, memo['look', node.name])
    fill, font, fig, share = memo['look', node.name]
    fields, tooltip, value_fields = memo['texts', node.name]
    if node.kind == 'scalar':
        op = trace.op_name(node.ids[0])
        cls = 'param' if op == 'param' else 'const' if op == 'const' else 'scalar'
        attrs = dict(NODE_CLASS[cls], label=graphviz.nohtml(labels.scalar_record(fields, rankdir)))
    else:
        attrs = dict(NODE_CLASS['group'], label=graphviz.nohtml(labels.group_record(fields, rankdir)))
    attrs['tooltip'] = tooltip
    attrs['fillcolor'] = fill
    if feeds_heads(node):
        attrs['ordering'] = 'out'   # its out-edges go to heads 0, 1, 2, 3: keep them in that order
    if rankdir == 'box':
        attrs['shape'] = 'box'
    if font != '#000000':
        attrs['fontcolor'] = font
    if node.side != 'interior':
        attrs['style'] = _style(attrs['style'], BOUNDARY['style'])
    if node.focus:
        attrs.update(FOCUS)
    if why:
        attrs.update(HIGHLIGHT)
    return attrs, value_fields


def _texts(trace, node, level, why, note, looked):
    """(record fields, tooltip, drawn number fields) of a scalar or summary node: what its label
    says in either direction, made once per view (labels.scalar_record / group_record lay the
    fields out for a direction)."""
    _, _, fig, share = looked
    if node.kind == 'scalar':
        fields, tooltip = labels.scalar_fields(trace, node, note), labels.scalar_tooltip(trace, node, why)
    else:
        shape = trace.param_shapes.get(node.scope.role) if node.scope.block == 'params' else None
        title = labels.group_title(node, level, trace)
        fields = labels.group_fields(trace, node, level, fig, shape, share, title)
        tooltip = labels.group_tooltip(trace, node, level, fig, why, share, title)
    return fields, tooltip, labels.drawn_fields(trace, node, fig, share)


def look(trace, node, interior=None, outlined=False):
    """(fill, font colour, figures, share) of a scalar or summary node on `trace`'s numbers:
    a scalar is coloured by its grad, a summary by its figures (a boundary parameter's by this
    view's share of its grad, what flowed back from `interior`). figures and share are None
    for a scalar. Drawing and the live view (steps/live.py) colour a node by this alone.
    `outlined` (a highlighted group): its figures are of all it holds (summary.held_figures)."""
    if node.kind == 'scalar':
        return (*grad_fill(trace.grad[node.ids[0]]), None, None)
    shape = node.scope.block == 'params' and node.scope.role in trace.param_shapes
    fig = held_figures(trace, node) if outlined and not shape else group_figures(trace, node)
    share = share_figures(trace, node, interior) if shape and interior is not None else None
    shown = share or fig
    return (*group_fill(shown.grad_min, shown.grad_max, shown.grad_norm), fig, share)


def _scalars_read(trace, target, referred):
    """The names of the scalars a scalar node reads from the nodes it references
    ('k[1]@pos0' rather than the whole 'k (cached) pos 0..1'); [] for a summary reader."""
    if target is None or target.kind != 'scalar':
        return []
    out = []
    for c in trace.children(target.ids[0]):
        if any(c in r.ids for r in referred) and trace.name(c) not in out:
            out.append(trace.name(c))
    return out


def _emission_order(edges, names, rankdir='LR'):
    """The edges in drawing order, except that the out-edges of a node that feeds the heads
    are emitted last head first: with ordering=out in rankdir LR, dot stacks a node's
    out-edges bottom to top, so this puts head 0 on top (measured with dot 2.43 and the
    WebAssembly build)."""
    out = list(edges)
    if rankdir != 'LR':
        return out
    slots = {}
    for k, e in enumerate(out):
        if feeds_heads(names[e.src]):
            slots.setdefault(e.src, []).append(k)
    for ks in slots.values():
        picked = [out[k] for k in ks][::-1]
        for k, e in zip(ks, picked):
            out[k] = e
    return out


def _is_skip(src, dst):
    """A residual (skip) connection: into a residual add from outside its block."""
    return (dst.kind != 'ref' and dst.scope.role == 'residual' and src.kind != 'ref'
            and (src.scope.block != dst.scope.block or src.scope.role == 'residual'))


def _edge_ends(e, anchors):
    src = anchors[e.src][0] if e.src in anchors else e.src
    return src, e.dst


def _edge_attrs(trace, e, names, folded, edge_grads, anchors):
    src, dst = names[e.src], names[e.dst]
    level = folded.level
    attrs = dict(EDGE_CLASS[e.kind])
    if e.src in anchors:
        attrs['ltail'] = anchors[e.src][1]
    if e.count > 1:
        attrs['penwidth'] = f'{min(3.0, 0.8 + 0.5 * math.log10(e.count)):.2f}'
    if e.kind != 'ref' and _is_skip(src, dst):
        attrs.update(RESIDUAL)
    if e.kind == 'ref':
        refs = [labels.short_name(trace, names[s[0]], level) for s in e.sources]
        attrs['tooltip'] = labels.ref_tooltip(refs, e)
    else:
        attrs['tooltip'] = labels.edge_tooltip(labels.short_name(trace, src, level),
                                               labels.short_name(trace, dst, level), e)
    if e.kind == 'focus' and src.kind == 'scalar' and trace.param_cell(src.ids[0]) is not None:
        attrs['label'] = escape.plain(_use_label(trace, src.ids[0], dst, e))
    elif e.kind == 'focus' and src.kind == 'matrix':
        attrs['label'] = escape.plain(f'\u2016{labels.words(trace)[1]} share\u2016 {fmt(e.contrib_norm)}')
    elif edge_grads:
        attrs['label'] = labels.edge_label(e)
    return attrs


def _use_label(trace, cell, dst, e):
    """'#3 +0.0012': this use's place in the order backward added the contributions, and its own."""
    if dst.kind == 'scalar':
        order = [p for p, _, _ in trace.uses(cell)]
        k = order.index(dst.ids[0]) + 1 if dst.ids[0] in order else '?'
        return f'#{k}  {fmt(e.contrib)}'
    return f'{e.count} uses  {fmt(e.contrib)}'


def _highlights(folded, highlight):
    """({visible node name: [reasons]}, [notes for ids not in the view])."""
    if not highlight:
        return {}, []
    owner = Owners(folded)      # a few ids asked: by bisection, not a dict of every id of the view
    reasons, missing = {}, []
    for i, why in sorted(highlight.items()):
        name = owner.get(i)
        if name is None:
            missing.append(f'highlighted node {i} is not in this view: {why}')
        else:
            reasons.setdefault(name, []).append(f'node {i}: {why}')
    return reasons, missing


def _finite(trace, n):
    """Whether every grad a drawn node shows is finite: a group's are when the L2 norm of its values'
    grads is (group_figures, found once per view; an infinite norm may be an overflow: then read), else
    sliced per run of ids and tested in C."""
    if n.kind == 'group' and n.values and math.isfinite(group_figures(trace, n).grad_norm):
        return True
    return all(map(math.isfinite, gather(trace.grad, n.value_runs if n.values else runs_of(n.ids[:1]))))


def _title(trace, folded):
    st, sel = folded.stats, folded.selection
    lines = [sel.title,
             f"level {st['level']}{' (auto)' if st.get('auto') else ''} \u00b7 {st['nodes']} nodes, "
             f"{st['edges']} edges \u00b7 {st['ops']} ops in view + {st['boundary_ops']} on its boundary, "
             f"{st['folded_ops'] + st['folded_boundary_ops']} of them folded into summary nodes"]
    if 'loss_id' in trace.meta:
        lines[-1] += f" \u00b7 {labels.words(trace)[2]} {fmt(trace.loss)}"
    if folded.expand:
        lines.append('expanded to scalars: ' + ', '.join(folded.expand))
    return escape.lines(lines)


def _legend(g, trace, folded, reasons, edge_grads=False, names=None):
    """A compact legend: one colour bar and the lines that explain what this picture shows."""
    lines = [LEGEND_SCALE]
    kinds = {n.kind for n in folded.nodes}
    if 'group' in kinds:
        lines.append(LEGEND_MIXED)
    if not all(_finite(trace, n) for n in folded.nodes if n.kind != 'ref'):
        lines.append(LEGEND_NONFINITE)
    marks = []
    if any(n.side != 'interior' for n in folded.nodes):
        marks.append(LEGEND_MARKS['boundary'])
    if any(n.side != 'interior' and n.kind == 'group' and n.scope.block == 'params' for n in folded.nodes):
        marks.append(LEGEND_MARKS['param_share'])
    if 'ref' in kinds:
        marks.append(LEGEND_MARKS['ref'])
    if reasons:
        marks.append(LEGEND_MARKS['highlight'])
    if edge_grads:
        marks.append(LEGEND_MARKS['edge_grads'])
    marks.append(LEGEND_MARKS['arrows'])
    if any(e.src in names and names[e.src].side == 'interior' and _is_skip(names[e.src], names[e.dst])
           for e in folded.edges if e.dst in names):
        marks.append(LEGEND_MARKS['residual'])
    lines.extend(marks)
    lines = [part for line in lines for part in textwrap.wrap(line, LEGEND_WIDTH)]
    with g.subgraph(name='cluster_legend') as c:
        c.attr(rank='same', **CLUSTER['legend'])      # one column (LR) or row (TB): the bar, then the words
        c.node('legend_bar', fillcolor=':'.join(LEGEND), **NODE_CLASS['legend_bar'])
        c.node('legend_text', escape.lines(lines), **NODE_CLASS['legend'])
