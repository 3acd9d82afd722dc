"""Page size: choose the direction a view is laid out in so that it fits the screen.

A projector shows 1920 px; text must stay at 10 px or more at fit-to-width, so a
picture whose smallest text is 9 pt may be at most 1920 / 10 * 9 = 1728 pt wide.
Data flows left to right (rankdir LR) when the longest chain of the view fits that
width; a longer chain (a whole token at vector level, a head at scalar level) is
laid out top to bottom instead (rankdir TB), where the chain becomes the height and
the width is the widest step (four heads side by side, sixteen products of a
dot product). The width is estimated from the label texts before layout: a
column is as wide as its widest node, Helvetica at 9 pt averages ~5 pt a character
(measured on these labels with dot: 4.6-5.3).

For a given screen shape (spec.ASPECTS, e.g. presentation mode's 16:9 or 4:3) both
directions are estimated, width and height, and the one whose box, scaled to fill that
shape, gets the larger scale wins (ties: LR, micrograd's draw_dot): a lecture on a wide
projector gets the flow across the screen where that fits it at least as well.
"""

import re

MAX_WIDTH_PT = 1600         # the LR estimate allowed; 1728 is the hard limit (9 pt text at 10 px)
CHAR_PT = 5.2               # average width of a 9 pt Helvetica character on these labels
NODE_PAD_PT = 14            # a node's margins and border
RANKSEP_PT = 25             # GRAPH['ranksep'] 0.35 in
LINE_PT = 11                # a line of 9 pt text in a record field, with its leading
BREADTH = 1.6               # dot's ranks are ~1.4-2.2x as broad as their nodes side by side (clusters,
#                             edges between them; measured on the token, head, cell and node views of 'emma')
LEGEND_PT = (340, 110)      # the legend: 64 characters wide, ~7 lines, plus the title's two lines
NODESEP_PT = {'LR': 22, 'TB': 9}    # style.LR_NODESEP 0.3 in, GRAPH['nodesep'] 0.12 in


# a record label's pieces: an escaped character (its character kept), an unescaped '|' (a field
# ends), a brace (dropped), or a stretch of plain text (a lone '\\' at the end is text too)
_PIECES = re.compile(r'\\(.)|(\|)|[{}]|([^\\|{}]+|\\)', re.S)


def _fields(label):
    """The record's fields (escaped text), split at unescaped '|', braces dropped: read piece by
    piece (a regular expression's matches, in C), not character by character (a vector view's
    labels: 160 records measured per view)."""
    out, cur = [], []
    for esc, bar, text in _PIECES.findall(str(label)):
        if bar:
            out.append(''.join(cur))
            cur = []
        else:
            cur.append(esc or text)
    out.append(''.join(cur))
    return out


def label_width_lr(label):
    """Estimated width (pt) in rankdir LR of a record label: a top-level '{a|b}' runs across,
    'a|b' stacks; plain labels ('\\n' lines) are as wide as their longest line."""
    text = str(label)
    if text.startswith('{'):
        fields = _fields(text)
        chars = sum(map(len, fields)) + 2 * len(fields)
    else:
        chars = max(len(line) for f in _fields(text) for line in f.replace('\\l', '\\n').split('\\n'))
    return chars * CHAR_PT + NODE_PAD_PT


def label_size(label, rankdir):
    """Estimated (width, height) in pt of a label drawn in `rankdir`. A record's top level
    stacks in LR and runs across in TB; a top-level '{...}' the other way round. Plain labels
    ('\\n' lines) and boxes: their longest line by their line count."""
    text = str(label)
    lines = text.replace('\\l', '\n').replace('\\r', '\n').replace('\\n', '\n')      # DOT's line ends
    fields = [f.split('\n') for f in _fields(lines)]
    if text.startswith('{') == (rankdir == 'LR') and len(fields) > 1:      # across
        w = sum(max(len(x) for x in f) + 2 for f in fields) * CHAR_PT
        h = max(len(f) for f in fields) * LINE_PT
    else:                                                                  # stacked, or one field
        w = max(len(x) for f in fields for x in f) * CHAR_PT
        h = sum(len(f) for f in fields) * LINE_PT
    return w + NODE_PAD_PT, h + NODE_PAD_PT / 2


def ranks(names, edges):
    """{name: rank}: the longest path to each node over the drawn edges (Kahn's algorithm)."""
    index = {n: k for k, n in enumerate(names)}
    succs = [[] for _ in names]
    indeg = [0] * len(names)
    for a, b in edges:
        if a in index and b in index:
            succs[index[a]].append(index[b])
            indeg[index[b]] += 1
    rank = [0] * len(names)
    ready = [k for k in range(len(names)) if not indeg[k]]
    while ready:
        k = ready.pop()
        for j in succs[k]:
            rank[j] = max(rank[j], rank[k] + 1)
            indeg[j] -= 1
            if not indeg[j]:
                ready.append(j)
    return {n: rank[k] for n, k in index.items()}


def layout_box(names, edges, sizes, rankdir):
    """Estimated (width, height) of the layout: ranks along the flow, each as deep as its
    deepest node; across it, the widest rank's nodes side by side. A source (a parameter, a
    cached key) sits one rank before its first reader, as dot's ranking puts it, not in a
    first rank of all the sources."""
    along, across = {}, {}
    flow, side = (0, 1) if rankdir == 'LR' else (1, 0)
    rank = ranks(names, edges)
    fed, first = {b for _, b in edges}, {}
    for a, b in edges:
        if a in rank and b in rank and a not in fed:
            first[a] = min(first.get(a, rank[b]), rank[b])
    for a, r in first.items():
        rank[a] = max(0, r - 1)
    for n, r in rank.items():
        along[r] = max(along.get(r, 0.0), sizes[n][flow])
        across[r] = across.get(r, 0.0) + sizes[n][side] + NODESEP_PT[rankdir]
    length = sum(along.values()) + RANKSEP_PT * max(0, len(along) - 1)
    breadth = BREADTH * max(across.values(), default=0.0)
    w, h = (length, breadth) if rankdir == 'LR' else (breadth, length)
    # the title over the picture; the legend a column at its end (LR) or a row under it (TB)
    return (w + LEGEND_PT[0], max(h, LEGEND_PT[1])) if rankdir == 'LR' else (max(w, LEGEND_PT[0]), h + LEGEND_PT[1])


def fill_scale(box, aspect):
    """The scale at which `box` (w, h) fills a screen of shape `aspect` ('16:9')."""
    a, b = (float(x) for x in aspect.split(':'))
    w, h = box
    return min(a / max(w, 1.0), b / max(h, 1.0))


def choose_for_aspect(names, edges, labels, aspect):
    """'LR' or 'TB': the direction whose estimated layout fills a screen of `aspect` at the
    larger scale; `labels` {name: {rankdir: label text}} (records turn with the layout)."""
    scale = {d: fill_scale(layout_box(names, edges, {n: label_size(labels[n][d], d) for n in names}, d), aspect)
             for d in ('LR', 'TB')}
    return 'LR' if scale['LR'] >= scale['TB'] else 'TB'


def lr_width(names, edges, widths):
    """Estimated width (pt) of an LR layout: longest-path columns, each as wide as its widest node.

    Columns by Kahn's algorithm over the drawn edges: O(nodes + edges). (A depth-first
    walk that re-pushes unranked predecessors is exponential on the scalar views'
    diamonds: it took minutes on a 12-position layer view.)"""
    cols = {}
    for n, r in ranks(names, edges).items():
        cols[r] = max(cols.get(r, 0.0), widths[n])
    return sum(cols.values()) + RANKSEP_PT * max(0, len(cols) - 1)


def choose_rankdir(names, edges, widths):
    """'LR' when the view's estimated LR width fits MAX_WIDTH_PT, else 'TB'."""
    return 'LR' if lr_width(names, edges, widths) <= MAX_WIDTH_PT else 'TB'
