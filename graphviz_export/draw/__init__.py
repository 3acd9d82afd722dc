"""Draw: a Folded view -> a graphviz.Digraph (DOT text), one style table.

    digraph.py   draw(): clusters, nodes, edges, legend, layout direction
    labels.py    what each node and edge says (records, tooltips)
    style.py     fonts, colours, the number format
    heatmap.py   a parameter matrix as striped rows
    page.py      the layout direction that fits a 16:9 screen
    escape.py    text that is not ours, made safe for DOT
    ids.py       the id of each node, edge and matrix cluster (what a frame player lights)
"""

from .digraph import draw

__all__ = ['draw']
