"""One frame player: a tour's slide shows what the player shows at the same frame, and the
pages' one escape and number format write what the Python side writes.

The player (stepper.js) runs in headless chromium on the tour's HTML; the slides are
`tour --frames`' SVG files, read back with an XML parser. At every position of the stop,
every node and edge group has the same classes, every node the same texts and font sizes,
and the same edge labels stand at the same places.
"""

import html
import math
import xml.etree.ElementTree as ET

import pytest

from graphviz_export.steps.edge_labels import text_box
from graphviz_export.web.tour import build_tour_html, parse_tour, write_frames
from tests.test_tour import get_trace

SVG = '{http://www.w3.org/2000/svg}'
ONE_STOP = """
title = "one parameter"
doc = "emma"

[[stop]]
caption = "a parameter's five uses"
param = "layer0.attn_wq[3][5]"
"""

# what the player shows in the stop's SVG: per group with an id, its classes, texts and font sizes
SHOWN = """() => {
  const svg = document.querySelector('#stop-0 svg');
  const groups = {};
  for (const g of svg.querySelectorAll('g[id^="node-"], g[id^="edge-"]')) {
    const texts = [...g.querySelectorAll('text')];
    groups[g.id] = [[...g.classList].sort(), texts.map(t => t.textContent), texts.map(t => t.getAttribute('font-size'))];
  }
  const labels = [...svg.querySelectorAll('text.mg-edge-label')].map(t =>
    [t.textContent, +t.getAttribute('x'), +t.getAttribute('y'), t.getBBox().width]);
  return {root: [...svg.classList].sort(), groups, labels};
}"""


def slide_shows(path):
    """The same record, read from a slide's SVG file."""
    root = ET.parse(path).getroot()
    groups = {}
    for g in root.iter(f'{SVG}g'):
        gid = g.get('id') or ''
        if gid.startswith(('node-', 'edge-')):
            texts = list(g.iter(f'{SVG}text'))
            groups[gid] = [sorted(g.get('class').split()), [''.join(t.itertext()) for t in texts],
                           [t.get('font-size') for t in texts]]
    labels = [[''.join(t.itertext()), float(t.get('x')), float(t.get('y'))]
              for t in root.iter(f'{SVG}text') if t.get('class') == 'mg-edge-label']
    return {'root': sorted(root.get('class').split()), 'groups': groups, 'labels': labels}


# a matrix: its heat-map's grad column (the rows' groups) hidden until its frame, on both surfaces
MATRIX_STOP = """
title = "one matrix"
doc = "emma"

[[stop]]
caption = "wte's grads arrive"
param = "wte"
"""


@pytest.fixture(scope='module', params=[ONE_STOP, MATRIX_STOP], ids=['cell', 'matrix'])
def one_stop(tmp_path_factory, request):
    folder = tmp_path_factory.mktemp('one-stop')
    tour = parse_tour(request.param)
    page = folder / 'tour.html'
    page.write_text(build_tour_html(tour, get_trace), encoding='utf-8')
    written = write_frames(tour, get_trace, folder / 'frames', write=lambda p, b: p.write_bytes(b), png=False)
    return page, sorted(p for p in written if p.suffix == '.svg')


def test_every_slide_shows_what_the_player_shows_at_its_frame(one_stop, browser):
    page_path, slides = one_stop
    running = labels = hidden = 0
    page = browser.new_context(offline=True, viewport={'width': 1400, 'height': 900}).new_page()
    errors = []
    page.on('pageerror', lambda e: errors.append(str(e)))
    page.goto(page_path.as_uri())
    count = page.evaluate('tour.player().count')
    assert len(slides) == count + 1 > 10
    matrix = 'one matrix' in page.title()
    # what the player shows at every position, recorded in one call (one round trip, not 3 a position:
    # seek() redraws at once, and SHOWN reads the document as it is then), and each position's lit edges
    every = page.evaluate(f'n => [...Array(n).keys()].map(p => {{ tour.player().seek(p); return ({SHOWN})(); }})',
                          len(slides))
    lit_edges = page.evaluate("JSON.parse(document.getElementById('tour-data').textContent)"
                              ".stops[0].frames.frames.map(f => f.edges.length)")
    assert len(lit_edges) == count
    for pos, (slide, shown) in enumerate(zip(slides, every)):
        want = slide_shows(slide)
        assert shown['root'] == want['root'] == ['mg-backward', 'mg-stepper']
        assert shown['groups'] == want['groups'], f'position {pos}: {slide.name} differs from the player'
        assert len(shown['labels']) == len(want['labels']), pos
        for a, b in zip(shown['labels'], want['labels']):
            assert a[0] == b[0] and math.isclose(a[1], b[1]) and math.isclose(a[2], b[2]), (pos, a, b)
            # placed by an estimate of its width (edge_labels.text_box): never narrower than drawn
            assert a[3] <= text_box(a[0])[2], (a, text_box(a[0]))
        lit = lit_edges[pos - 1] if pos else 0
        assert len(shown['labels']) == lit, f'position {pos}: {lit} edges lit, their labels missing'
        labels += lit
        running += sum(t.startswith(('grad +=', '+= ')) for g in shown['groups'].values() for t in g[1])
        hidden += sum('mg-hidden' in g[0] for g in shown['groups'].values())
    assert errors == []
    if matrix:      # wte's 27 grad rows hidden at every position before the matrix's frame
        assert hidden >= 27 and labels > 10
    else:
        assert running > 20 and labels > 10      # running sums and labels are there to be compared


# numbers where a format can go wrong: ties (to even in Python), carries, exponents, signs
NUMBERS = [0.0, -0.0, 1.0, -1.0, 0.5, 1 / 3, -2 / 3, 3.428, 0.015625, 1.0625, -1.0625, 2.675, 1.0005, 9999.4,
           9999.5, 99995.0, 12345.0, 1e4, 1e-4, 1e-5, 1.234e-5, -0.0001234, 0.00012345, 0.00099995, 1e21, 1.5e300,
           5e-324, 123.45, 0.1, math.nan, math.inf, -math.inf]
TEXTS = ['plain', '<b>&amp;</b>', 'it\'s "quoted"', 'a < b > c & d', 'σ → Δ', '']


def test_the_pages_format_and_escape_are_pythons(browser):
    """MicrogptFormat.fmt(x) == f'{x:.4g}' (draw/style.fmt) and esc(s) == html.escape(s),
    in the browser, on the file the pages load (web/static/format.js)."""
    from importlib.resources import files
    script = (files('graphviz_export.web') / 'static' / 'format.js').read_text(encoding='utf-8')
    import random
    rng = random.Random(5)
    numbers = NUMBERS + [rng.uniform(-1, 1) * 10 ** rng.randint(-9, 9) for _ in range(500)]
    page = browser.new_page()
    page.set_content(f'<script>{script}</script>')
    finite = [x for x in numbers if math.isfinite(x)]
    got = page.evaluate('xs => xs.map(MicrogptFormat.fmt)', finite)
    assert got == [f'{x:.4g}' for x in finite]
    assert page.evaluate('[NaN, Infinity, -Infinity, -0].map(MicrogptFormat.fmt)') == ['nan', 'inf', '-inf', '-0']
    assert page.evaluate('["nan", "-inf"].map(MicrogptFormat.fmt)') == ['nan', '-inf']    # JSON's strings
    assert page.evaluate('xs => xs.map(MicrogptFormat.esc)', TEXTS) == [html.escape(s) for s in TEXTS]
