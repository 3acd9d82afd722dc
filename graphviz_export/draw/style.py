"""The one style table: fonts, graph/node/edge attributes, the colour scale, number format.

Colour encodes a node's grad, by sign and order of magnitude (a diverging
purple-orange scale, ColorBrewer PuOr, readable by the colour-blind):

    grad <= -1          darkest purple        grad >= 1          darkest orange
    -1 < grad <= -1e-2  ...                   1e-2 <= grad < 1   ...
    -1e-2 ... -1e-4     ...                   1e-4 ... 1e-2      ...
    -1e-4 ... -1e-6     lightest purple       1e-6 ... 1e-4      lightest orange
    0 < |grad| < 1e-6   near-white            grad == 0          white
    NaN or infinite     black

A summary node (many values) is coloured by the L2 norm of its grads, on the
same magnitude buckets: orange when every grad is >= 0, purple when every grad
is <= 0, grey when the signs are mixed (`group_fill`). A boundary parameter is
coloured by this view's share of its grad (what flowed back along the edges
drawn). The legend in every picture is built from LEGEND below, so the two
cannot disagree.
"""

import math
from bisect import bisect_right
from itertools import repeat
from operator import truediv

# The font every label is measured and drawn in. Not 'Helvetica': the WebAssembly Graphviz (no font
# library) sizes labels from the metrics of the font named, and for Helvetica its SVG says
# font-family="Helvetica,sans-Serif", which librsvg (rsvg-convert, GNOME's viewer) hands to
# fontconfig whole: the answer is DejaVu Sans, ~15% wider, and labels spilled out of their boxes
# (Chromium takes Helvetica -> Liberation Sans, which fits). DejaVu Sans is in the WebAssembly
# build's metrics table, native `dot` already measured Helvetica as DejaVu Sans (its pictures are
# unchanged), and a viewer without it falls back to a narrower sans: labels fit in either case.
# tests/test_picture_librsvg.py checks it with rsvg-convert.
FONT = 'DejaVu Sans'

GRAPH = {
    'newrank': 'true',      # ranks across clusters: measured 3 s -> 1 s on a clustered graph
    'mclimit': '4',         # more crossing-minimisation passes: measured, the heads then keep 0, 1, 2, 3
    'rankdir': 'LR',        # data flows left to right, as in micrograd's draw_dot; page.py may choose TB
    'compound': 'true',     # edges may start at a cluster's border (the matrix heat-map)
    'fontname': FONT,
    'fontsize': '12',
    'labelloc': 't',
    'labeljust': 'l',
    'nodesep': '0.12',
    'ranksep': '0.35',
    'pad': '0.1',
}
LR_NODESEP = '0.3'           # rankdir LR (not heat-maps): rows further apart; example 03 2.30:1 -> 2.1:1
NODE = {'fontname': FONT, 'fontsize': '9', 'margin': '0.04,0.03', 'penwidth': '0.8', 'color': '#444444'}
EDGE = {'fontname': FONT, 'fontsize': '9', 'arrowsize': '0.5', 'penwidth': '0.8', 'color': '#555555'}

# node attributes by class; 'boundary' and 'highlight' are added on top of another class
NODE_CLASS = {
    'scalar': {'shape': 'record', 'style': 'filled'},
    'const': {'shape': 'record', 'style': 'filled', 'fontcolor': '#555555', 'fontsize': '9'},
    'param': {'shape': 'record', 'style': 'filled', 'penwidth': '1.4'},
    'group': {'shape': 'record', 'style': 'filled,rounded'},
    'ref': {'shape': 'plaintext', 'fontsize': '9', 'fontcolor': '#555555', 'margin': '0.01'},
    'heat': {'shape': 'box', 'style': 'striped', 'label': '', 'fixedsize': 'true',
             'penwidth': '0.3', 'color': '#999999'},
    # a heat-map row the explorer's page paints (draw/heatmap.py, `cells`): the striped row's box, its
    # cells painted under its outline; filled (transparent) so that the whole box takes the pointer
    'heat_box': {'shape': 'box', 'style': 'filled', 'fillcolor': 'transparent', 'label': '', 'fixedsize': 'true',
                 'penwidth': '0.3', 'color': '#999999'},
    'heat_label': {'shape': 'plaintext', 'fontsize': '9', 'margin': '0.01,0', 'fixedsize': 'shape',
                   'width': '0.45'},
    'legend': {'shape': 'plaintext', 'fontsize': '9', 'margin': '0.02'},
    'legend_bar': {'shape': 'box', 'style': 'striped', 'label': '', 'fixedsize': 'true', 'width': '1.6',
                   'height': '0.16', 'penwidth': '0.5', 'color': '#999999',
                   'tooltip': 'grad colour scale: -1 .. -1e-6 (purple), 0 (white), 1e-6 .. 1 (orange)'},
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
    'legend': {'style': 'rounded', 'color': '#cccccc', 'fontsize': '9', 'label': ''},
}

# -- the colour scale ---------------------------------------------------------------------
MAGNITUDES = (1e-6, 1e-4, 1e-2, 1.0)     # bucket edges of |grad|
NEGATIVE = ('#d8daeb', '#b2abd2', '#8073ac', '#542788')   # 1e-6.., 1e-4.., 1e-2.., >=1
POSITIVE = ('#fee0b6', '#fdb863', '#e08214', '#b35806')
MIXED = ('#e8e8e8', '#cccccc', '#999999', '#666666')       # mixed signs, by norm
TINY, ZERO, NONFINITE = '#f7f7f7', '#ffffff', '#000000'
DARK = {NEGATIVE[2], NEGATIVE[3], POSITIVE[3], MIXED[3], NONFINITE}  # fills that need white text


def _bucket(a):
    """0..3: which magnitude bucket |x| = a >= 1e-6 falls in."""
    return sum(1 for m in MAGNITUDES[1:] if a >= m)


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
            fill = (POSITIVE if g > 0 else NEGATIVE)[_bucket(a)]
    return fill, ('#ffffff' if fill in DARK else '#000000')


def group_fill(grad_min, grad_max, grad_norm):
    """(fill, font) of a summary: the magnitude of its grad norm; the sign only when all
    its grads agree (all >= 0: orange, all <= 0: purple), grey when they are mixed."""
    if not (math.isfinite(grad_min) and math.isfinite(grad_max) and math.isfinite(grad_norm)):
        fill = NONFINITE
    elif grad_norm == 0:
        fill = ZERO
    elif grad_norm < MAGNITUDES[0]:
        fill = TINY
    else:
        ramp = POSITIVE if grad_min >= 0 else NEGATIVE if grad_max <= 0 else MIXED
        fill = ramp[_bucket(grad_norm)]
    return fill, ('#ffffff' if fill in DARK else '#000000')


# a heat-map cell's fill is one of these (heat_index gives which): the explorer sends a heat-map as
# these indices and the page paints them (draw/heatmap.py painted, web/explorer/static/heat.js)
HEAT_PALETTE = (ZERO, *NEGATIVE, *POSITIVE, NONFINITE)


HEAT_STEPS = (1 / 64, 1 / 16, 1 / 4)     # |x| / scale from which a cell is one shade darker


def heat_indices(values, scale):
    """bytes: which HEAT_PALETTE colour fills each of `values`' heat-map cells: black for NaN or
    inf, 0 (white) for 0, else its sign's ramp at the count of HEAT_STEPS that |x| / scale reaches
    (in factors of 4: >= 1/4, >= 1/16, >= 1/64, less). `scale` is the matrix's max |x| (0: every
    finite cell white; not finite: every other cell the lightest of its sign). Ratios and steps
    taken in C, a matrix at once."""
    finite = math.isfinite
    if not scale:
        return bytes(0 if finite(x) else 9 for x in values)
    ks = (map(bisect_right, repeat(HEAT_STEPS), map(truediv, map(abs, values), repeat(scale)))
          if finite(scale) else repeat(0))
    return bytes(0 if x == 0 else (k + 5 if x > 0 else k + 1) if finite(x) else 9 for x, k in zip(values, ks))


def heat_index(x, scale):
    """heat_indices of one value."""
    return heat_indices((x,), scale)[0]


def heat_fill(x, scale):
    """Fill of one heat-map cell (heat_index's colour)."""
    return HEAT_PALETTE[heat_index(x, scale)]


# The colour bar, darkest negative to darkest positive (one striped box in the legend),
# and the words under it. Every symbol a picture can show is explained in LEGEND_MARKS.
LEGEND = (NEGATIVE[3], NEGATIVE[2], NEGATIVE[1], NEGATIVE[0], TINY, ZERO, TINY,
          POSITIVE[0], POSITIVE[1], POSITIVE[2], POSITIVE[3])
LEGEND_SCALE = ('colour = grad: purple < 0 < orange, darker = larger |grad| '
                '(steps at 1e-6, 1e-4, 1e-2, 1), white = 0')
LEGEND_MIXED = 'rounded = many ops folded: colour of their grad norm; sign only if all agree, grey = mixed'
LEGEND_NONFINITE = 'black = NaN or inf'
LEGEND_MARKS = {   # shown when the picture has such nodes
    'boundary': 'dashed = outside the view',
    'param_share': "boundary parameter: this view's share of its grad",
    'ref': '\u2197 name = drawn once, elsewhere',
    'highlight': 'red = wrong grad (found | should be)',
    'edge_grads': 'edge: local derivative, contribution',
    'arrows': 'arrows: forward; grads flow back against them',
    'residual': 'blue = residual (skip) connection',
}
LEGEND_WIDTH = 64           # characters a legend line may have: the legend stays narrow
RESIDUAL = {'color': '#1f78b4', 'penwidth': '1.6'}     # edges of a residual (skip) connection


# -- numbers ---------------------------------------------------------------------------------
def fmt(x):
    """A number as shown in a label: 4 significant digits ('0.1234', '-1.2e-05', 'nan')."""
    return f'{x:.4g}'


def full(x):
    """A number as shown in a tooltip: repr, every digit of the float."""
    return repr(float(x))
