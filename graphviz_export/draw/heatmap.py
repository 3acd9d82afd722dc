"""A parameter matrix as a heat-map: data on the left, grad on the right, one row per node.

The WebAssembly Graphviz has no HTML-like labels (it is built without expat), so
the table cannot be an HTML <TABLE>. Each matrix row is instead one box with
`style=striped`: one stripe per column, filled by heat_fill (sign, and |x| as a
share of the matrix's largest |x|, in factors of 4). Both renderers draw it, in
every output format. A row's tooltip lists its values with every digit (row_lines).

The explorer asks for the same heat-map as plain boxes instead (`cells=`: the same size, ids and
order, so the layout and the edges' anchors are the same): its 33,000 stripes and their tooltips
were 5.7 MB of a matrix view's 6.2 MB answer at 4 x 64. It sends each matrix's cells once as
palette indices (`painted`), the page paints them over the boxes (web/explorer/static/heat.js),
and a row's tooltip lines come from row_lines when the pointer is on it (/api/heatrow).

Each row is labelled, between its data and its grad, with what indexes it: the character for `wte`
and `lm_head` ('m', BOS), `pos 3` for `wpe`, the row number otherwise. An edge
to a use that reads one row (an embedding at one position) leaves from that
row's grad stripe, so the picture shows which row each position used
(`row_anchor`); a use that reads many rows leaves from the middle row.
"""

import base64
from itertools import chain, repeat
from operator import add, floordiv, sub

import graphviz_export.draw.escape as escape
from microgpt.recording.names import char_name

from .ids import node_id
from .labels import words
from .style import CLUSTER, HEAT_PALETTE, HIGHLIGHT, NODE_CLASS, fmt, full, heat_indices

CELL = 0.1  # inches per cell


def row_name(trace, name, r):
    """What row r of matrix `name` stands for: "'m'" (wte, lm_head), 'pos 3' (wpe), else '3'."""
    if name in ('wte', 'lm_head') and trace.meta.get('chars') is not None:
        return char_name(trace.meta['chars'], r)
    if name == 'wpe':
        return f'pos {r}'
    return str(r)


def row_anchor(trace, node, name, dst):
    """The DOT node an edge from matrix node `node` to the node `dst` starts at: the grad
    row dst reads when it reads one row, else None (the matrix's middle row)."""
    base = trace.param_base[name]
    rows, cols = trace.param_shapes[name]
    ptr, ids = trace.child_ptr, dst.ids
    children = chain.from_iterable(map(trace.child.__getitem__, map(slice, map(ptr.__getitem__, ids),
                                                                     map(ptr.__getitem__, map(add, ids, repeat(1))))))
    cells = filter(range(base, base + rows * cols).__contains__, children)      # in C: a use group holds 80,000
    used = map(floordiv, map(sub, cells, repeat(base)), repeat(cols))
    # read lazily, up to the second row found: a use group of a whole matrix (196,000 products at
    # 5 M nodes) reads row 0 in its first products and row 1 right after
    first = next(used, None)
    return f'{node.name}_g{first}' if first is not None and next(filter(first.__ne__, used), None) is None else None


def grad_line(word, shown):
    """The heat-map's label line about its grad column: 'right: grad (max |grad| 0.1234)'."""
    return f'right: {word} (max |{word}| {shown})'


def grad_rows(trace, node, name):
    """The DOT names of the grad column's rows (one box each, striped per column)."""
    return [f'{node.name}_g{r}' for r in range(trace.param_shapes[name][0])]


def values(trace, name, part, r=None):
    """The values of matrix `name` drawn on side `part` ('d': data, 'g': grad): row r's, else
    every row's, row after row."""
    base = trace.param_base[name]
    rows, cols = trace.param_shapes[name]
    column = trace.data if part == 'd' else trace.grad
    return column[base:base + rows * cols] if r is None else column[base + r * cols:base + (r + 1) * cols]


def row_title(name, part, r, cols):
    """A row's tooltip's first line: 'layer0.mlp_fc1[3] grad, columns 0..15:'."""
    return f"{name}[{r}] {'data' if part == 'd' else 'grad'}, columns 0..{cols - 1}:"


def row_lines(trace, name, part, r):
    """A row's tooltip: row_title, then each cell's value with every digit (style.full)."""
    cols = trace.param_shapes[name][1]
    return [row_title(name, part, r, cols)] + [f'[{r}][{k}] {full(x)}' for k, x in enumerate(values(trace, name, part, r))]


def painted(name, rows, cols, sides):
    """A heat-map as the explorer's page paints it: {'rows', 'cols', 'palette': HEAT_PALETTE,
    'd', 'g': each side's palette indices, row after row, base64; 'titles': each side's row_title
    with '{row}' for the row}: a row's first tooltip line at once, its values asked on hover."""
    return {'rows': rows, 'cols': cols, 'palette': list(HEAT_PALETTE),
            **{part: base64.b64encode(cells).decode('ascii') for part, cells in sides.items()},
            'titles': {part: row_title(name, part, '{row}', cols) for part in sides}}


def heatmap_cluster(container, trace, node, name, reasons=(), fields=None, cells=None):
    """Add the heat-map of matrix `name` (the matrix node `node`) to `container`.
    Returns (the DOT node its out-edges start at, the cluster's name) for ltail.
    `fields`: filled with {node name: {'grad': its grad line}} (View.fields).
    `cells`: None, each row striped with its cells' fills and its tooltip listing them (a picture
    that shows itself); a dict, each row a plain box of the same size and id (and no tooltip), and
    cells[node name] = painted(...): the page paints the rows and asks their tooltips (row_lines)."""
    rows, cols = trace.param_shapes[name]
    data, grad = values(trace, name, 'd'), values(trace, name, 'g')
    dmax = max(map(abs, data), default=0.0)
    gmax = max(map(abs, grad), default=0.0)
    sides = {'d': heat_indices(data, dmax), 'g': heat_indices(grad, gmax)}
    if cells is not None:
        cells[node.name] = painted(name, rows, cols, sides)
    cluster = f'cluster_{node.name}'
    with container.subgraph(name=cluster) as c:
        data_word, grad_word, _ = words(trace)
        if fields is not None:
            fields[node.name] = {'grad': grad_line(grad_word, fmt(gmax))}
        c.attr(label=escape.lines([f'{name}  {rows}x{cols}', f'left: {data_word} (max |data| {fmt(dmax)})',
                                   grad_line(grad_word, fmt(gmax)),
                                   'colour: sign, and |x| / max in factors of 4']),
               id=node_id(node.name), **CLUSTER['matrix'])
        if reasons:
            c.attr(tooltip=escape.tooltip([f'HIGHLIGHT: {r}' for r in reasons]), **HIGHLIGHT)
        paint = cells is not None
        if paint:
            c.attr('edge', style='invis')       # every edge of the cluster (_edges)
        size = {'width': f'{cols * CELL:.2f}', 'height': f'{CELL:.2f}'}
        for part, indices in sides.items():
            with c.subgraph() as rank:
                rank.attr(rank='same')
                rows_of = []
                for r in range(rows):
                    row = f'{node.name}_{part}{r}'
                    if paint:       # no tooltip (no <a> around the box: 25% of the page's time): the page
                        own = {}    # gives it row_title at once and asks row_lines on hover
                    else:
                        own = {'fillcolor': ':'.join(HEAT_PALETTE[k] for k in indices[r * cols:(r + 1) * cols]),
                               'tooltip': escape.tooltip(row_lines(trace, name, part, r))}
                    rows_of.append((row, dict(own, id=node_id(row))))
                _nodes(rank, rows_of, dict(size, **NODE_CLASS['heat_box' if paint else 'heat']), paint)
            # flat invisible edges keep the rows in order, row 0 on top
            _edges(c, [(f'{node.name}_{part}{r + 1}', f'{node.name}_{part}{r}') for r in range(rows - 1)], paint)
        with c.subgraph() as rank:      # the row names, a column between data and grad
            rank.attr(rank='same')
            _nodes(rank, [(f'{node.name}_l{r}', {'label': escape.plain(row_name(trace, name, r)),
                                                 'tooltip': escape.tooltip([f'{name} row {r}: {row_name(trace, name, r)}'])})
                          for r in range(rows)], dict(height=f'{CELL:.2f}', **NODE_CLASS['heat_label']), False)
            _edges(c, [(f'{node.name}_l{r + 1}', f'{node.name}_l{r}') for r in range(rows - 1)], paint)
        # data | row name | grad, one line per row
        _edges(c, [pair for r in range(rows) for pair in ((f'{node.name}_d{r}', f'{node.name}_l{r}'),
                                                          (f'{node.name}_l{r}', f'{node.name}_g{r}'))], paint)
    return f'{node.name}_g{rows // 2}', cluster


def _nodes(sub, items, common, paint):
    """Add (name, own attributes) nodes with the `common` attributes to subgraph `sub`: in
    each node's line, or (`paint`: the explorer's boxes) once, as the subgraph's node default: the
    same nodes to Graphviz, and 512 rows' attributes not quoted one by one. (Not the row names:
    given as a default, their attributes changed dot's layout: 13.4 -> 23.4 inches tall for wte.)"""
    if paint:
        sub.attr('node', **common)
    for name, own in items:
        sub.node(name, **own, **({} if paint else common))


def _edges(c, pairs, paint):
    """Add invisible edges to cluster `c`: each marked so, or (`paint`) by the cluster's edge
    default (set before its first edge)."""
    if paint:
        c.edges(pairs)
    else:
        for tail, head in pairs:
            c.edge(tail, head, style='invis')
