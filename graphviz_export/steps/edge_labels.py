"""Where each lit edge's label goes: on its drawn path, clear of every node and of the
frame's other labels. Computed once from the laid-out SVG, for every surface.

A backward frame labels the edges that carry the new grad, `local × upstream =
contribution` (frame_texts.edge_text). Graphviz did not lay those labels out (they
change per frame, the picture does not), so they are placed here, in the graph's
coordinates (those of the SVG's `g.graph` group, where the player and the slide
writer add them): at the path's middle, else at 35%, 65%, 20%, 80%, 10% or 90% of
its length, else one, two or three lines above or below those points; the middle
when nothing is clear. The SVG is read with an XML parser, by the ids draw gave
(draw/ids.py); node boxes come from their shapes' coordinates.

A label's width is estimated from its characters in Helvetica Bold (Arial and
Liberation Sans have the same widths), the font stepper.css gives it, plus 8%.
"""

import math
import xml.etree.ElementTree as ET

SVG = '{http://www.w3.org/2000/svg}'
FONT_PX = 11                # stepper.css: text.mg-edge-label
ASCENT, DESCENT = 0.905, 0.212     # of the font, in ems
SLACK = 1.08
FRACTIONS = (0.5, 0.35, 0.65, 0.2, 0.8, 0.1, 0.9)
LINES = (0, -1, 1, -2, 2, -3, 3)
# Helvetica-Bold advance widths (1/1000 em) of the characters labels use; others: WIDE
WIDTHS = {**dict.fromkeys('0123456789', 556), '.': 278, ',': 278, ' ': 278, '-': 333, ':': 333, '(': 333,
          ')': 333, '/': 278, '+': 584, '=': 584, '\u00d7': 584, '\u2212': 584, '\u03a3': 667, 'e': 556,
          'i': 278, 'l': 278, 'f': 333, 't': 333, 'r': 389}
WIDE = 667
_SEPARATORS = str.maketrans({ch: ' ' for ch in ',MCLmcl'})     # Graphviz paths: M x,y C x,y x,y x,y ...


def text_box(text):
    """(x, y, width, height) of `text` drawn at (0, 0), middle-anchored, baseline at 0."""
    w = sum(WIDTHS.get(ch, WIDE) for ch in text) * FONT_PX / 1000 * SLACK
    return -w / 2, -ASCENT * FONT_PX, w, (ASCENT + DESCENT) * FONT_PX


def _numbers(text):
    """The numbers of a `points` or path `d` attribute as Graphviz writes them."""
    return [float(x) for x in (text or '').translate(_SEPARATORS).split()]


def shape_box(g):
    """(x0, y0, x1, y1) around the shapes (and texts) of an SVG group, or None."""
    xs, ys = [], []
    for el in g.iter():
        tag = el.tag[len(SVG):] if el.tag.startswith(SVG) else el.tag
        if tag in ('polygon', 'polyline'):
            nums = _numbers(el.get('points'))
        elif tag == 'path':
            nums = _numbers(el.get('d'))
        elif tag == 'ellipse':
            cx, cy, rx, ry = (float(el.get(k, 0)) for k in ('cx', 'cy', 'rx', 'ry'))
            nums = [cx - rx, cy - ry, cx + rx, cy + ry]
        elif tag == 'text' and el.get('x') is not None:
            nums = [float(el.get('x')), float(el.get('y'))]
        else:
            continue
        xs.extend(nums[0::2])
        ys.extend(nums[1::2])
    if not xs:
        return None
    return min(xs), min(ys), max(xs), max(ys)


def path_points(d, fractions=FRACTIONS, steps=8):
    """The points at `fractions` of the length of an SVG path 'M x,y C x,y x,y x,y ...'
    (Graphviz's edges: one start point and cubic Bézier segments)."""
    nums = _numbers(d)
    pts = list(zip(nums[0::2], nums[1::2]))
    if not pts:
        return []
    line = [pts[0]]
    for k in range(1, len(pts) - 2, 3):
        p0, p1, p2, p3 = pts[k - 1], pts[k], pts[k + 1], pts[k + 2]
        for s in range(1, steps + 1):
            t = s / steps
            a, b, c, e = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t * t, t ** 3
            line.append((a * p0[0] + b * p1[0] + c * p2[0] + e * p3[0], a * p0[1] + b * p1[1] + c * p2[1] + e * p3[1]))
    run = [0.0]
    for (x0, y0), (x1, y1) in zip(line, line[1:]):
        run.append(run[-1] + math.hypot(x1 - x0, y1 - y0))
    out = []
    for f in fractions:
        at = f * run[-1]
        k = next((j for j in range(1, len(run)) if run[j] >= at), len(run) - 1)
        span = run[k] - run[k - 1] if k else 0.0
        u = (at - run[k - 1]) / span if span else 0.0
        (x0, y0), (x1, y1) = line[max(k - 1, 0)], line[k]
        out.append((x0 + u * (x1 - x0), y0 + u * (y1 - y0)))
    return out


def place(text, points, boxes, placed):
    """[x, y] of the text's anchor, and its box (x0, y0, x1, y1) (see the module docstring).
    `boxes`: the node boxes; `placed`: the boxes of the frame's labels so far."""
    bx, by, bw, bh = text_box(text)
    step = bh + 2
    reach = 3 * step + bw
    ax0, ay0 = min(x for x, _ in points) - reach, min(y for _, y in points) - reach
    ax1, ay1 = max(x for x, _ in points) + reach, max(y for _, y in points) + reach
    near = [b for b in boxes if b[0] < ax1 and ax0 < b[2] and b[1] < ay1 and ay0 < b[3]] + placed
    for line in LINES:
        for x, y in points:
            x0, y0 = bx + x, by + y - 3 + line * step
            x1, y1 = x0 + bw, y0 + bh
            if not any(b[0] < x1 and x0 < b[2] and b[1] < y1 and y0 < b[3] for b in near):
                return [round(x, 2), round(y - 3 + line * step, 2)], (x0, y0, x1, y1)
    x, y = points[0][0], points[0][1] - 3
    return [round(x, 2), round(y, 2)], (bx + x, by + y, bx + x + bw, by + y + bh)


def svg_groups(svg):
    """(root element, {id: <g>}) of SVG text."""
    root = ET.fromstring(svg.encode('utf-8') if isinstance(svg, str) else svg)
    return root, {g.get('id'): g for g in root.iter(SVG + 'g') if g.get('id')}


def place_edge_labels(fr, svg):
    """Add 'at': [x, y] (the label's middle, on its baseline) to every labelled edge of the
    frames dict `fr` whose drawn path is in `svg` (the view's SVG text). Returns `fr`."""
    _root, groups = svg_groups(svg)
    boxes = [b for g in groups.values() if g.get('class') == 'node' for b in [shape_box(g)] if b]
    paths = {}
    for f in fr['frames']:
        placed = []
        for e in f['edges']:
            if not e.get('text'):
                continue
            if e['svg'] not in paths:
                g = groups.get(e['svg'])
                path = g.find(f'.//{SVG}path') if g is not None else None
                paths[e['svg']] = path_points(path.get('d')) if path is not None else []
            points = paths[e['svg']]
            if not points:
                continue
            e['at'], box = place(e['text'], points, boxes, placed)
            placed.append(box)
    return fr
