"""The one style table: fonts, graph/node/edge attributes, the colour scale, number format.

Colour encodes a node's grad, by sign and order of magnitude (a diverging
purple-orange scale, ColorBrewer PuOr, readable by the colour-blind):

    grad <= -1          darkest purple        grad >= 1          darkest orange
    -1 < grad <= -1e-2  ...                   1e-2 <= grad < 1   ...
    -1e-2 ... -1e-4     ...                   1e-4 ... 1e-2      ...
    -1e-4 ... -1e-6     lightest purple       1e-6 ... 1e-4      lightest orange
    0 < |grad| < 1e-6   near-white            grad == 0          white
    NaN or infinite     black

A summary node takes the colour of its largest |grad|. The legend in every
picture is built from LEGEND below, so the two cannot disagree.
"""

import math

FONT = 'Helvetica'

GRAPH = {
    'newrank': 'true',      # ranks across clusters: measured 3 s -> 1 s on a clustered graph
    'ordering': 'out',      # keep each node's out-edges in the order given: stable layouts
    'rankdir': 'LR',        # data flows left to right, as in micrograd's draw_dot
    'compound': 'true',     # edges may start at a cluster's border (the matrix heat-map)
    'fontname': FONT,
    'fontsize': '12',
    'labelloc': 't',
    'labeljust': 'l',
    'nodesep': '0.12',
    'ranksep': '0.35',
    'pad': '0.1',
}
NODE = {'fontname': FONT, 'fontsize': '9', 'margin': '0.04,0.02', 'penwidth': '0.8', 'color': '#444444'}
EDGE = {'fontname': FONT, 'fontsize': '8', 'arrowsize': '0.5', 'penwidth': '0.8', 'color': '#555555'}

# node attributes by class; 'boundary' and 'highlight' are added on top of another class
NODE_CLASS = {
    'scalar': {'shape': 'record', 'style': 'filled'},
    'const': {'shape': 'record', 'style': 'filled', 'fontcolor': '#555555', 'fontsize': '8'},
    'param': {'shape': 'record', 'style': 'filled', 'penwidth': '1.4'},
    'group': {'shape': 'record', 'style': 'filled,rounded'},
    'ref': {'shape': 'plaintext', 'fontsize': '8', 'fontcolor': '#555555', 'margin': '0.01'},
    'heat': {'shape': 'box', 'style': 'striped', 'label': '', 'fixedsize': 'true',
             'penwidth': '0.3', 'color': '#999999'},
    'legend': {'shape': 'box', 'style': 'filled', 'fontsize': '8', 'height': '0.18', 'width': '1.3',
               'margin': '0.02', 'penwidth': '0.5'},
    'notes': {'shape': 'note', 'style': 'filled', 'fillcolor': '#fffbe6', 'fontsize': '9'},
}
BOUNDARY = {'style': 'dashed'}          # added to the style of nodes outside the view
HIGHLIGHT = {'color': '#e41a1c', 'penwidth': '3'}
FOCUS = {'penwidth': '2', 'color': '#000000'}

EDGE_CLASS = {
    'data': {},
    'boundary': {'style': 'dashed'},
    'ref': {'style': 'dotted', 'arrowhead': 'empty'},
    'focus': {'penwidth': '1.6', 'color': '#000000', 'fontcolor': '#000000'},
}

# cluster attributes by the scope field that makes the cluster
CLUSTER = {
    'pos': {'style': 'rounded', 'color': '#888888', 'fontsize': '12'},
    'layer': {'style': 'rounded', 'color': '#aaaaaa', 'fontsize': '11'},
    'block': {'style': 'rounded,filled', 'fillcolor': '#f6f6f6', 'color': '#bbbbbb', 'fontsize': '10'},
    'head': {'style': 'dashed', 'color': '#bbbbbb', 'fontsize': '9'},
    'matrix': {'style': 'rounded', 'color': '#444444', 'fontsize': '10'},
    'legend': {'style': 'rounded', 'color': '#cccccc', 'fontsize': '9', 'label': 'legend'},
}

# -- the colour scale ---------------------------------------------------------------------
MAGNITUDES = (1e-6, 1e-4, 1e-2, 1.0)     # bucket edges of |grad|
NEGATIVE = ('#d8daeb', '#b2abd2', '#8073ac', '#542788')   # 1e-6.., 1e-4.., 1e-2.., >=1
POSITIVE = ('#fee0b6', '#fdb863', '#e08214', '#b35806')
TINY, ZERO, NONFINITE = '#f7f7f7', '#ffffff', '#000000'
DARK = {NEGATIVE[2], NEGATIVE[3], POSITIVE[3], NONFINITE}  # fills that need white text


def grad_fill(g):
    """(fill colour, font colour) for a grad value."""
    if not math.isfinite(g):
        fill = NONFINITE
    elif g == 0:
        fill = ZERO
    else:
        a = abs(g)
        if a < MAGNITUDES[0]:
            fill = TINY
        else:
            k = sum(1 for m in MAGNITUDES[1:] if a >= m)      # 0..3
            fill = (POSITIVE if g > 0 else NEGATIVE)[k]
    return fill, ('#ffffff' if fill in DARK else '#000000')


def heat_fill(x, scale):
    """Fill of one heat-map cell: sign of x and |x| / scale in factors of 4
    (>= 1/4, >= 1/16, >= 1/64, less), 0 white. `scale` is the matrix's max |x|."""
    if not math.isfinite(x):
        return NONFINITE
    if x == 0 or not scale:
        return ZERO
    r = abs(x) / scale
    k = 3 if r >= 1 / 4 else 2 if r >= 1 / 16 else 1 if r >= 1 / 64 else 0
    return (POSITIVE if x > 0 else NEGATIVE)[k]


LEGEND = (
    (POSITIVE[3], 'grad >= 1'),
    (POSITIVE[2], 'grad 1e-2 .. 1'),
    (POSITIVE[1], 'grad 1e-4 .. 1e-2'),
    (POSITIVE[0], 'grad 1e-6 .. 1e-4'),
    (TINY, '|grad| < 1e-6'),
    (ZERO, 'grad = 0'),
    (NEGATIVE[0], 'grad -1e-4 .. -1e-6'),
    (NEGATIVE[1], 'grad -1e-2 .. -1e-4'),
    (NEGATIVE[2], 'grad -1 .. -1e-2'),
    (NEGATIVE[3], 'grad <= -1'),
)
LEGEND_NONFINITE = (NONFINITE, 'grad NaN or inf')
LEGEND_MARKS = {   # shown when the picture has such nodes
    'boundary': 'dashed: outside the view',
    'group': 'rounded: many ops folded',
    'ref': '\u2197 name: drawn once, elsewhere',
    'highlight': 'red outline: highlighted',
}


# -- numbers ---------------------------------------------------------------------------------
def fmt(x):
    """A number as shown in a label: 4 significant digits ('0.1234', '-1.2e-05', 'nan')."""
    return f'{x:.4g}'


def full(x):
    """A number as shown in a tooltip: repr, every digit of the float."""
    return repr(float(x))
