"""Page size: choose the direction a view is laid out in so that it fits a 16:9 screen.

A projector shows 1920 px; text must stay at 10 px or more at fit-to-width, so a
picture whose smallest text is 9 pt may be at most 1920 / 10 * 9 = 1728 pt wide.
Data flows left to right (rankdir LR) when the longest chain of the view fits that
width; a longer chain (a whole token at vector level, a head at scalar level) is
laid out top to bottom instead (rankdir TB), where the chain becomes the height and
the width is the widest step (four heads side by side, sixteen products of a
dot product). The width is estimated from the label texts before layout: a
column is as wide as its widest node, Helvetica at 9 pt averages ~5 pt a character
(measured on these labels with dot: 4.6-5.3).
"""

MAX_WIDTH_PT = 1600         # the LR estimate allowed; 1728 is the hard limit (9 pt text at 10 px)
CHAR_PT = 5.2               # average width of a 9 pt Helvetica character on these labels
NODE_PAD_PT = 14            # a node's margins and border
RANKSEP_PT = 25             # GRAPH['ranksep'] 0.35 in


def _fields(label):
    """The record's fields (escaped text), split at unescaped '|', braces dropped."""
    out, cur, k = [], [], 0
    text = str(label)
    while k < len(text):
        ch = text[k]
        if ch == '\\' and k + 1 < len(text):
            cur.append(text[k + 1])
            k += 2
            continue
        if ch == '|':
            out.append(''.join(cur))
            cur = []
        elif ch not in '{}':
            cur.append(ch)
        k += 1
    out.append(''.join(cur))
    return out


def label_width_lr(label):
    """Estimated width (pt) in rankdir LR of a record label: a top-level '{a|b}' runs across,
    'a|b' stacks; plain labels ('\\n' lines) are as wide as their longest line."""
    text = str(label)
    if text.startswith('{'):
        chars = sum(len(f) for f in _fields(text)) + 2 * len(_fields(text))
    else:
        chars = max(len(line) for f in _fields(text) for line in f.replace('\\l', '\\n').split('\\n'))
    return chars * CHAR_PT + NODE_PAD_PT


def lr_width(names, edges, widths):
    """Estimated width (pt) of an LR layout: longest-path columns, each as wide as its widest node.

    Columns by Kahn's algorithm over the drawn edges: O(nodes + edges). (A depth-first
    walk that re-pushes unranked predecessors is exponential on the scalar views'
    diamonds: it took minutes on a 12-position layer view.)"""
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
    cols = {}
    for n, k in index.items():
        cols[rank[k]] = max(cols.get(rank[k], 0.0), widths[n])
    return sum(cols.values()) + RANKSEP_PT * max(0, len(cols) - 1)


def choose_rankdir(names, edges, widths):
    """'LR' when the view's estimated LR width fits MAX_WIDTH_PT, else 'TB'."""
    return 'LR' if lr_width(names, edges, widths) <= MAX_WIDTH_PT else 'TB'
