"""A parameter matrix as a heat-map: data on the left, grad on the right, one row per node.

The WebAssembly Graphviz has no HTML-like labels (it is built without expat), so
the table cannot be an HTML <TABLE>. Each matrix row is instead one box with
`style=striped`: one stripe per column, filled by heat_fill (sign, and |x| as a
share of the matrix's largest |x|, in factors of 4). Both renderers draw it, in
every output format. A row's tooltip lists its values with every digit.

Each row is labelled, between its data and its grad, with what indexes it: the character for `wte`
and `lm_head` ('m', BOS), `pos 3` for `wpe`, the row number otherwise. An edge
to a use that reads one row (an embedding at one position) leaves from that
row's grad stripe, so the picture shows which row each position used
(`row_anchor`); a use that reads many rows leaves from the middle row.
"""

from itertools import chain, repeat
from operator import add, floordiv, sub

import graphviz_export.draw.escape as escape
from microgpt.recording.names import char_name

from .ids import node_id
from .labels import words
from .style import CLUSTER, HIGHLIGHT, NODE_CLASS, fmt, full, heat_fill

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


def heatmap_cluster(container, trace, node, name, reasons=(), fields=None):
    """Add the heat-map of matrix `name` (the matrix node `node`) to `container`.
    Returns (the DOT node its out-edges start at, the cluster's name) for ltail.
    `fields`: filled with {node name: {'grad': its grad line}} (View.fields)."""
    rows, cols = trace.param_shapes[name]
    base = trace.param_base[name]
    data = [trace.data[base + k] for k in range(rows * cols)]
    grad = [trace.grad[base + k] for k in range(rows * cols)]
    dmax = max((abs(x) for x in data), default=0.0)
    gmax = max((abs(x) for x in grad), default=0.0)
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
        for part, values, scale in (('d', data, dmax), ('g', grad, gmax)):
            fills = list(map(heat_fill, values, repeat(scale)))
            with c.subgraph() as rank:
                rank.attr(rank='same')
                for r in range(rows):
                    row = values[r * cols:(r + 1) * cols]
                    word = 'data' if part == 'd' else 'grad'
                    tip = [f'{name}[{r}] {word}, columns 0..{cols - 1}:'] + [
                        f'[{r}][{k}] {full(x)}' for k, x in enumerate(row)]
                    rank.node(f'{node.name}_{part}{r}', id=node_id(f'{node.name}_{part}{r}'),
                              fillcolor=':'.join(fills[r * cols:(r + 1) * cols]),
                              width=f'{cols * CELL:.2f}', height=f'{CELL:.2f}', tooltip=escape.tooltip(tip),
                              **NODE_CLASS['heat'])
            for r in range(rows - 1):   # flat invisible edges keep the rows in order, row 0 on top
                c.edge(f'{node.name}_{part}{r + 1}', f'{node.name}_{part}{r}', style='invis')
        with c.subgraph() as rank:      # the row names, a column between data and grad
            rank.attr(rank='same')
            for r in range(rows):
                rank.node(f'{node.name}_l{r}', escape.plain(row_name(trace, name, r)), height=f'{CELL:.2f}',
                          tooltip=escape.tooltip([f'{name} row {r}: {row_name(trace, name, r)}']),
                          **NODE_CLASS['heat_label'])
            for r in range(rows - 1):
                c.edge(f'{node.name}_l{r + 1}', f'{node.name}_l{r}', style='invis')
        for r in range(rows):           # data | row name | grad, one line per row
            c.edge(f'{node.name}_d{r}', f'{node.name}_l{r}', style='invis')
            c.edge(f'{node.name}_l{r}', f'{node.name}_g{r}', style='invis')
    return f'{node.name}_g{rows // 2}', cluster
