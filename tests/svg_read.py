"""Read a Graphviz SVG back: per node and per edge, its texts, tooltip and colours.

Parsing with ElementTree is itself the well-formedness check. Graphviz writes a
node as <g class="node"><title>NAME</title> [<g><a xlink:title="TOOLTIP">] shapes
and <text>s; runs of spaces come back as no-break spaces (in texts and tooltips),
turned into spaces here.
"""

import re
import xml.etree.ElementTree as ET

SVG = '{http://www.w3.org/2000/svg}'
XLINK = '{http://www.w3.org/1999/xlink}'


def _clean(text):
    return (text or '').replace('\xa0', ' ')


def read_svg(svg_bytes):
    """{'nodes': {name: item}, 'edges': {'a->b': item}, 'clusters': {name: item}, 'title': [texts]};
    an item is {'texts': [...], 'tooltip': str or None, 'fills': [...], 'strokes': [...], 'widths': [...],
    'dashed': bool}."""
    root = ET.fromstring(svg_bytes)
    assert root.tag == SVG + 'svg'
    out = {'nodes': {}, 'edges': {}, 'clusters': {}}
    graph = root.find(SVG + 'g')
    out['title'] = [_clean(t.text) for t in graph.findall(SVG + 'text')]
    for g in root.iter(SVG + 'g'):
        cls = g.get('class')
        if cls not in ('node', 'edge', 'cluster'):
            continue
        name = g.find(SVG + 'title').text
        item = {'texts': [], 'tooltip': None, 'fills': [], 'strokes': [], 'widths': [], 'dashed': False}
        for el in g.iter():
            if el.tag == SVG + 'text':
                item['texts'].append(_clean(el.text))
            elif el.tag == SVG + 'a' and item['tooltip'] is None:
                item['tooltip'] = _clean(el.get(XLINK + 'title'))
            elif el.tag in (SVG + 'polygon', SVG + 'path', SVG + 'ellipse', SVG + 'polyline'):
                item['fills'].append(el.get('fill'))
                item['strokes'].append(el.get('stroke'))
                item['widths'].append(el.get('stroke-width'))
                item['dashed'] = item['dashed'] or el.get('stroke-dasharray') is not None
        out[{'node': 'nodes', 'edge': 'edges', 'cluster': 'clusters'}[cls]][name] = item
    return out


def record_head(item):
    """A scalar record's first field: its texts before 'data ...', joined by a space (a
    stacked record breaks an op's name after the arrow: '* \u2192' over 'q[2]@pos3')."""
    texts = item['texts']
    return ' '.join(texts[:next(k for k, t in enumerate(texts) if t.startswith('data '))])


def scalar_name(item):
    """The node name a scalar record shows: its head without the ' = op' a value's name
    carries ('q[2]@pos3 = +' -> 'q[2]@pos3'); other heads are the name itself."""
    head = record_head(item)
    m = re.fullmatch(r'([^\u2192]+) = (\+|\*|exp|log|relu|\*\* \S+)', head)
    return m.group(1) if m else head
