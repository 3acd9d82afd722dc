"""Stable element ids in a view's SVG, so a player can find what a frame lights.

Graphviz numbers its SVG groups in emission order (`node17`, `edge42`), which
says nothing about what they draw. Every node and edge group starts with a
<title> holding its DOT name ('n4711', 'g4700->n4711'), so after layout each
visible node's group gets id `node-<name>` and each drawn edge's group
`edge-<src>-<dst>` (frames.svg_node_id / svg_edge_id). A matrix heat-map is a
cluster ('cluster_m0'); its edges leave from one of its rows ('m0_g13'), and
both are renamed to the matrix node's name. The layout is untouched: this only
rewrites id attributes, so it works on the output of either renderer and needs
no change to draw.py.
"""

import re

from .frames import svg_edge_id, svg_node_id

_GROUP = re.compile(r'<g id="[^"]*" class="(node|edge|cluster)">\s*<title>([^<]*)</title>')
_ARROW = '&#45;&gt;'


def tag_svg(svg, folded):
    """`svg` (text) with ids on the groups of `folded`'s nodes and edges."""
    names = {n.name for n in folded.nodes}
    matrices = {n.name for n in folded.nodes if n.kind == 'matrix'}

    def visible(name):
        if name in names:
            return name
        base = name.rsplit('_', 1)[0]
        return base if base in matrices else None

    def swap(m):
        kind, title = m.group(1), m.group(2)
        new = None
        if kind == 'node':
            new = svg_node_id(title) if title in names else None
        elif kind == 'cluster':
            name = title[len('cluster_'):] if title.startswith('cluster_') else None
            new = svg_node_id(name) if name in matrices else None
        else:
            src, _, dst = title.partition(_ARROW)
            if not _:
                src, _, dst = title.partition('->')
            a, b = visible(src), visible(dst)
            new = svg_edge_id(a, b) if a and b else None
        if new is None:
            return m.group(0)
        return m.group(0).replace(m.group(0)[:m.group(0).index('" class=')], f'<g id="{new}', 1)

    return _GROUP.sub(swap, svg)
