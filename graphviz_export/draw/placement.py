"""Placement: the invisible edges and rank constraints that make dot keep things in the
order a reader expects (an expanded head's dot products one under the other and each
row in index order, a matrix's uses in position order, the referenced parameters in
one line, the q/k/v parameters in the top row of inputs). Nothing here adds a node a
reader sees; each helper says what it fixed and the figure it was measured on.
"""

def unwired_in_a_row(g, folded):
    """The nodes drawn once and only referenced (the parameter matrices every row reads)
    side by side in one line (invisible edges), not one column of records as tall as a row."""
    wired = {e.src for e in folded.edges} | {e.dst for e in folded.edges}
    line = [n.name for n in folded.nodes if n.fan_out and n.name not in wired]
    for a, b in zip(line, line[1:]):
        g.edge(a, b, style='invis')


def inputs_on_top(g, folded):
    """With a head expanded, the parameters of q, k, v join the top row of inputs (wte, wpe,
    cached k and v) instead of sitting beside the view, three abreast at q, k, v's height
    (~530 pt of width); the legend then goes under the picture. Measured on head 0 of 'emma'
    pos 2 at block level (native dot): with the references inside the head cluster
    (cluster_path), 1676 -> 1586 pt wide."""
    names = {n.name: n for n in folded.nodes}
    feeders = {n.name for n in folded.nodes if feeds_heads(n)}
    embed = {n.name for n in folded.nodes if n.side == 'interior' and n.scope.block == 'embed'}
    qkv = {e.src for e in folded.edges if e.dst in feeders and names[e.src].side == 'input'}
    row = {e.src for e in folded.edges if e.dst in embed and names[e.src].side == 'input'}
    row |= {n.name for n in folded.nodes if n.side == 'input' and n.scope.block == 'attn'}  # cached k, v
    if qkv and row:     # rank=same with the top row (rank=min alone left them where they were)
        with g.subgraph() as top:
            top.attr(rank='same')
            for n in folded.nodes:
                if n.name in qkv or n.name in row:
                    top.node(n.name)


WRAPPED_ROLES = ('attn_logits', 'head_out')


def wrap_chains(g, trace, folded):
    """An expanded head's dot products one below the other, not side by side: each
    element's chain (the products and sums making attn_logits[h][t], head_out[h][d])
    starts under the previous element's value (invisible edges), so the head is a few
    products wide instead of all of them; the heads left folded beside an expanded one go
    one under the other (they would otherwise sit in a row beside it). Only for a head
    expanded in a coarser view: a whole head at scalar level is wider than tall already
    (1545x1616 pt; stacked it would be 1646x3670). Head 0 of 'emma' pos 2 at
    block level: ~3,300 -> 1,902 pt wide (native dot). True when a head is expanded."""
    chains = dot_product_rows(trace, folded)
    expanded = {(n.scope.pos, n.scope.layer) for n in folded.nodes if n.kind == 'scalar' and n.side == 'interior'
                and n.scope.head is not None}
    others = {}     # the heads left folded beside an expanded one: one column, not a row
    for n in folded.nodes:
        pos, layer, block, head, role = n.scope
        if (n.kind == 'group' and n.side == 'interior' and block == 'attn' and head is not None
                and role is None and (pos, layer) in expanded):
            others.setdefault((pos, layer), []).append((head, n.name))
    for key in sorted(others, key=repr):
        column = sorted(others[key])
        for (_, a), (_, b) in zip(column, column[1:]):
            g.edge(a, b, style='invis')
    for key in sorted(chains, key=repr):
        by_k = chains[key]
        ks = sorted(by_k)
        for prev, k in zip(ks, ks[1:]):
            ends = [i for i, is_value in by_k[prev] if is_value]
            members = {i for i, _ in by_k[k]}
            starts = [i for i, _ in by_k[k] if not any(c in members for c in trace.children(i))]
            for a in ends:
                for b in starts:
                    g.edge(f'n{a}', f'n{b}', style='invis')
    return bool(expanded)


def dot_product_rows(trace, folded):
    """{(pos, layer, head, role): {k: [(id, is_value), ...]}}: an expanded head's chains, one
    per element (the products and sums making attn_logits[h][t], head_out[h][d])."""
    names = trace.names()
    chains = {}
    for n in folded.nodes:
        if n.kind != 'scalar' or n.side != 'interior' or n.scope.role not in WRAPPED_ROLES:
            continue
        k, is_value = names.element(n.ids[0])
        if isinstance(k, int):
            pos, layer, _, head, role = n.scope
            chains.setdefault((pos, layer, head, role), {}).setdefault(k, []).append((n.ids[0], is_value))
    return chains


def row_starts(trace, chain):
    """The first row of one element's chain: the products (q[j]*k[j], weights[t]*v[t][d]),
    in index order: the tape made them in that order, so ids ascend with the index."""
    members = {i for i, _ in chain}
    return sorted(i for i in members if not any(c in members for c in trace.children(i)))


def rows_in_index_order(g, rows):
    """Each dot product's products left to right in index order (q[0]*k[0], q[1]*k[1], ...):
    flat invisible edges in a rank=same subgraph. They are plain boxes, not records: dot
    loses flat edges next to records. Without them dot's crossing minimisation put them in
    any order (k[3], k[1], k[0], k[2])."""
    for row in rows:
        with g.subgraph() as same:
            same.attr(rank='same')
            for i in row:
                same.node(f'n{i}')
            for a, b in zip(row, row[1:]):
                same.edge(f'n{a}', f'n{b}', style='invis')


def position_uses(folded):
    """A matrix view's uses, one node per position, in position order (else []); a
    parameter cell's view likewise: the scalars the cell feeds directly, one a position."""
    sel = folded.selection
    if sel.matrix is not None:
        uses = sorted((n.positions[0], n.name) for n in folded.nodes
                      if n.side == 'interior' and n.kind == 'group' and len(n.positions) == 1)
    elif sel.kind == 'param':
        focus = {n.name for n in folded.nodes if n.focus}
        fed = {e.dst for e in folded.edges if e.src in focus}
        uses = sorted((n.scope.pos, n.name) for n in folded.nodes
                      if n.name in fed and n.kind == 'scalar' and n.scope.pos is not None)
    else:
        return []
    if len(uses) < 2 or len({p for p, _ in uses}) != len(uses):
        return []
    return [name for _, name in uses]


def order_uses(g, uses):
    """The uses in one column, position 0 on top: flat invisible edges pos k -> pos k+1
    (measured with dot 2.43: in rankdir LR this stacks them top to bottom). They are plain
    boxes, not records: dot loses flat edges between records."""
    with g.subgraph() as rank:
        rank.attr(rank='same')
        for name in uses:
            rank.node(name)
        for a, b in zip(uses, uses[1:]):
            rank.edge(a, b, style='invis')


def feeds_heads(node):
    """q (vector level) and 'q, k, v' (block level) fan out to the heads."""
    return (node.side == 'interior' and node.kind == 'group' and node.scope.block == 'attn'
            and node.scope.head is None and node.scope.role in (None, 'q'))
