"""Labels fit their boxes in librsvg (`rsvg-convert`, GNOME's image viewer), whichever
Graphviz drew the picture.

Why this needs its own test: the WebAssembly Graphviz has no font library, so it sizes a
label from the metrics table of the font the DOT source names, while a viewer draws it with
whatever font its font lookup answers for the family the SVG names. For 'Helvetica' the SVG
said `font-family="Helvetica,sans-Serif"`: Chromium tries the families one by one (Helvetica
-> Liberation Sans, Helvetica's metrics: the label fits), but librsvg hands the whole list to
fontconfig, which answers DejaVu Sans (about 15% wider): the label spilled out of its box.
Native `dot` measures with that same fontconfig answer, so its pictures fitted. The pictures
now name DejaVu Sans (draw/style.py FONT): the WebAssembly build has its metrics, and every
viewer that has it draws it; one that lacks it draws a narrower sans.

How it is measured: librsvg itself draws, from a copy of the picture, only the nodes' texts,
each node's texts clipped to the outside of its own box, and the result must be empty
(pixels at least half covered count: less is the antialiased edge the box's border cuts).
Each node's texts get their own colour, so a pixel left over names its node.
"""

import copy
import io
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from graphviz_export import build_view, render_view
from tests.conftest import DOT, IN_CI
from tests.test_picture_geometry import README_VIEWS

SVG = 'http://www.w3.org/2000/svg'
NS = f'{{{SVG}}}'
RSVG = shutil.which('rsvg-convert')
ZOOM = 1            # a pixel per SVG unit (point): a spill of one unit shows, as the probe test checks
SHAPES = ('path', 'polygon', 'ellipse')


def node_colour(k):
    """A distinct opaque colour per node index (k < 2**24 - 1), so a stray pixel names its node."""
    k += 1
    return f'#{k:06x}'


def outline(shape):
    """The path data of a node's shape (Graphviz draws them as path, polygon or ellipse)."""
    tag = shape.tag[len(NS):]
    if tag == 'path':
        return shape.get('d')
    if tag == 'polygon':
        return 'M' + ' L'.join(shape.get('points').split()) + ' Z'
    if tag == 'ellipse':
        cx, cy, rx, ry = (float(shape.get(a)) for a in ('cx', 'cy', 'rx', 'ry'))
        return f'M{cx - rx},{cy} A{rx},{ry} 0 1 0 {cx + rx},{cy} A{rx},{ry} 0 1 0 {cx - rx},{cy} Z'
    raise ValueError(f'no outline for a node drawn as <{tag}>')


def texts_outside_boxes(svg: bytes):
    """An SVG in which librsvg draws only what of each node's texts lies outside that node's
    box, and the node titles by index."""
    ET.register_namespace('', SVG)
    ET.register_namespace('xlink', 'http://www.w3.org/1999/xlink')
    root = ET.fromstring(svg)
    graph = root.find(NS + 'g')
    defs = ET.SubElement(root, NS + 'defs')
    kept, titles = [], []
    for g in graph.iter(NS + 'g'):
        if g.get('class') != 'node':
            continue
        shape = next((el for el in g.iter() if el.tag in tuple(NS + s for s in SHAPES)), None)
        texts = list(g.iter(NS + 'text'))
        if shape is None or not texts:
            continue
        k = len(titles)
        titles.append(((g.findtext(NS + 'title') or '?'), [t.text or '' for t in texts]))
        # the clip is the plane less the box (even-odd), in the graph's coordinates: it is used
        # inside the graph's group, under its transform
        clip = ET.SubElement(defs, NS + 'clipPath', id=f'out{k}', clipPathUnits='userSpaceOnUse')
        ET.SubElement(clip, NS + 'path', d=f'M-1e6,-1e6 H1e6 V1e6 H-1e6 Z {outline(shape)}', attrib={'clip-rule': 'evenodd'})
        group = ET.Element(NS + 'g', attrib={'clip-path': f'url(#out{k})', 'fill': node_colour(k)})
        for t in texts:
            t = copy.deepcopy(t)
            t.attrib.pop('fill', None)
            group.append(t)
        kept.append(group)
    for child in list(graph):           # nothing else is drawn: edges, clusters, shapes, labels
        graph.remove(child)
    graph.extend(kept)
    return ET.tostring(root), titles


def spilled(svg: bytes):
    """[(node title, its texts, stray pixels)] for the nodes whose texts librsvg draws outside
    their box, most pixels first."""
    from PIL import Image
    probe, titles = texts_outside_boxes(svg)
    png = subprocess.run([RSVG, '--zoom', str(ZOOM), '--format', 'png'], input=probe,
                         capture_output=True, check=True, timeout=120).stdout
    image = Image.open(io.BytesIO(png)).convert('RGBA')
    body = image.getchannel('A').point(lambda a: 255 if a >= 128 else 0)  # less: an antialiased edge
    if body.getbbox() is None:
        return []
    counts = {}
    for n, (r, g, b, a) in image.getcolors(maxcolors=1 << 24):
        if a >= 128:
            k = (r << 16 | g << 8 | b) - 1
            if 0 <= k < len(titles):
                counts[k] = counts.get(k, 0) + n
    if not counts:      # only colours of no node (cannot happen unless the probe is wrong): say so
        return [('?', [], body.getbbox())]
    return sorted(((titles[k][0], titles[k][1], n) for k, n in counts.items()), key=lambda s: -s[2])


@pytest.fixture(scope='module')
def traces():
    from microgpt.recording import record_step
    from microgpt.train import fresh_model
    params, config, tok = fresh_model(seed=42)
    return {doc: record_step(params, config, tok, doc) for doc in ('emma', 'anna')}


@pytest.fixture(autouse=True)
def _rsvg():
    if RSVG is None:
        if IN_CI:
            pytest.fail('rsvg-convert is missing (CI=true: .ci/run installs librsvg2-bin)')
        pytest.skip('rsvg-convert not installed')


# every README view as the WebAssembly Graphviz draws it (the renderer whose pictures spilled),
# and two as `dot` draws them (the same font lookup decides both)
CASES = ([(name, 'wasm') for name in README_VIEWS if name != 'layer0-vector-every-position']
         + [('default', 'native'), ('node-loss-depth3', 'native')])


@pytest.mark.parametrize('name,renderer', CASES, ids=[f'{n}-{r}' for n, r in CASES])
def test_labels_inside_their_boxes_in_librsvg(traces, name, renderer):
    if renderer == 'native' and DOT is None:
        pytest.skip('no native dot (looked up once, at collection: tests/conftest.py)')
    q = dict(README_VIEWS[name])
    view = build_view(traces[q.pop('doc', 'emma')], **q)
    bad = spilled(render_view(view, 'svg', renderer=renderer))
    assert not bad, f'{len(bad)} nodes whose labels librsvg draws outside the box, e.g. {bad[:3]}'


def test_the_probe_sees_a_label_one_unit_too_wide():
    """The measure itself: a box 1 unit narrower than its label (librsvg's own width of it) is
    caught, the same box 1 unit wider than the label is not."""
    font = 'font-family="DejaVu Sans" font-size="9.00"'
    text = 'grad here -0.3474 … 0.4958'

    def picture(half):
        return (f'<svg xmlns="{SVG}" width="300pt" height="40pt" viewBox="0 0 300 40"><g class="graph" '
                f'transform="translate(4 36)"><g class="node"><title>n</title>'
                f'<polygon fill="none" stroke="black" points="{150 - half},-30 {150 + half},-30 '
                f'{150 + half},0 {150 - half},0"/><text text-anchor="middle" x="150" y="-10" {font}>{text}'
                f'</text></g></g></svg>').encode()
    # librsvg's width of the label: the ink of the text alone (one unit a pixel)
    alone = (f'<svg xmlns="{SVG}" width="300" height="40" viewBox="0 0 300 40"><text id="t" x="10" y="20" '
             f'{font}>{text}</text></svg>').encode()
    png = subprocess.run([RSVG, '--export-id', 't'], input=alone, capture_output=True, check=True).stdout
    width = int.from_bytes(png[16:20], 'big')
    assert 100 < width < 160, width
    assert spilled(picture(width / 2 - 1)), 'a label 2 units wider than its box was not seen'
    assert not spilled(picture(width / 2 + 1))
