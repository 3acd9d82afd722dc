"""The `id` each drawn node, edge and matrix cluster carries in the DOT, so in the SVG.

Graphviz writes a DOT `id` attribute as the id of the object's SVG group (both
renderers; '-' comes out as the entity &#45;, which parsers read back as '-'),
so a player finds what a frame lights by id, never by patching the SVG after
layout. A matrix heat-map's cluster carries its matrix node's id; an edge that
leaves from one of its rows carries the matrix node's name as its source.
"""


def node_id(name):
    """The SVG id of drawn node `name` (a matrix node: its heat-map cluster)."""
    return f'node-{name}'


def edge_id(src, dst):
    """The SVG id of the drawn edge from node `src` to node `dst` (folded names)."""
    return f'edge-{src}-{dst}'
