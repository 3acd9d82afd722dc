"""Geometry of every README view and example, measured in a real headless browser (Chromium).

For each picture, on both renderers (native `dot`, WebAssembly Graphviz): every text
of a node lies inside that node's shape and crosses none of its record's field
separators (the WebAssembly build sizes fields with its own font metrics), no two
nodes overlap; and the picture fits 16:9 (at most 16:9 x 1.25 wide) with no text
below 10 px at 1920 px width (fit-to-width: a taller picture scrolls), on both
renderers. One browser, one page, a document per picture.
"""

import sys
from pathlib import Path

import pytest

from graphviz_export import build_view, render_view
from microgpt.recording import record_step
from microgpt.train import fresh_model
from tests.conftest import DOT

EXAMPLES = Path(__file__).resolve().parent.parent / 'examples'

# the README's `microgpt-graph render ...` views, as build_view arguments (doc 'emma' unless said)
README_VIEWS = {
    'default': {},
    'anna-token2-block': {'doc': 'anna', 'token': 2, 'level': 'block'},
    'token2-expand-head0': {'token': 2, 'level': 'block', 'expand': ['pos2/layer0/attn/head0/*']},
    'layer0-head1-token3-scalar': {'layer': 0, 'head': 1, 'token': 3, 'level': 'scalar'},
    'param-wq-edge-grads': {'param': 'layer0.attn_wq[3][5]', 'edge_grads': True},
    'param-wte': {'param': 'wte'},
    'node-loss-depth3': {'node': 'loss', 'depth': 3},
    # not a README view: the vector-level layer view at every position (issue 11)
    'layer0-vector-every-position': {'layer': 0, 'level': 'vector'},
}

MEASURE = """() => {
  const out = {nodes: [], width: 0, height: 0, minFont: 1e9};
  const svg = document.querySelector('svg');
  const r = svg.getBoundingClientRect();
  out.width = r.width; out.height = r.height;
  for (const g of document.querySelectorAll('g.node')) {
    const shape = g.querySelector('polygon, ellipse, path');
    if (!shape) continue;
    const b = shape.getBoundingClientRect();
    const texts = [];
    for (const t of g.querySelectorAll('text')) {
      const tb = t.getBoundingClientRect();
      texts.push([tb.left, tb.top, tb.right, tb.bottom, t.textContent]);
      const scale = r.width / svg.viewBox.baseVal.width;
      out.minFont = Math.min(out.minFont, parseFloat(getComputedStyle(t).fontSize) * scale);
    }
    // a record's fields are separated by polylines: a text crossing one overflows its field
    const seps = [];
    for (const l of g.querySelectorAll('polyline')) {
      const lb = l.getBoundingClientRect();
      seps.push([lb.left, lb.top, lb.right, lb.bottom]);
    }
    out.nodes.push({id: g.id, title: (g.querySelector('title')||{}).textContent,
                    box: [b.left, b.top, b.right, b.bottom], texts, seps});
  }
  return out;
}"""


def pictures():
    params, config, tok = fresh_model(seed=42)
    traces = {}
    out = []
    for name, q in README_VIEWS.items():
        q = dict(q)
        doc = q.pop('doc', 'emma')
        if doc not in traces:
            traces[doc] = record_step(params, config, tok, doc)
        out.append((name, lambda q=q, doc=doc: build_view(traces[doc], **q)))
    sys.path.insert(0, str(EXAMPLES))
    import regenerate
    for script in regenerate.SCRIPTS[:4]:
        out.append((script.stem, lambda s=script: regenerate.example_views(s)[0][1]))
    return out


RENDERERS = ['native', 'wasm']
CASES = [(n, f, r) for n, f in pictures() for r in RENDERERS]


@pytest.fixture(scope='module')
def measured(_chromium):
    """measured(name, make, renderer): the picture drawn and measured once for both tests of this
    module that read it (the drawing is deterministic: the same bytes each time), each picture in a
    document of its own on one page (set_content replaces the document; the SVG runs no script):
    a new context and renderer per picture cost ~0.4 CPU-s."""
    ctx = _chromium().new_context(viewport={'width': 1920, 'height': 1080})
    page = ctx.new_page()
    seen = {}

    def measure(name, make, renderer):
        if renderer == 'native' and DOT is None:
            pytest.skip('no native dot (looked up once, at collection: tests/conftest.py)')
        if (name, renderer) not in seen:
            svg = render_view(make(), 'svg', renderer=renderer)
            page.set_content('<html><body style="margin:0">' + svg.decode('utf-8').split('?>', 1)[-1]
                             .split('-->', 2)[-1] + '</body></html>')
            page.evaluate("() => { const s = document.querySelector('svg'); const vb = s.viewBox.baseVal;"
                          " s.setAttribute('width', '1920px'); s.setAttribute('height', (1920 * vb.height / vb.width) + 'px'); }")
            seen[name, renderer] = page.evaluate(MEASURE)
        return seen[name, renderer]
    try:
        yield measure
    finally:
        ctx.close()


@pytest.mark.parametrize('name,make,renderer', CASES, ids=[f'{n}-{r}' for n, _, r in CASES])
def test_texts_inside_their_nodes_and_no_overlaps(measured, name, make, renderer):
    m = measured(name, make, renderer)
    assert m['nodes']
    tol = 0.5   # px at 1920 px width
    bad = []
    for n in m['nodes']:
        x0, y0, x1, y1 = n['box']
        for tx0, ty0, tx1, ty1, text in n['texts']:
            if tx0 < x0 - tol or tx1 > x1 + tol or ty0 < y0 - tol or ty1 > y1 + tol:
                bad.append((n['title'], text, round(tx1 - x1, 1)))
    assert not bad, f'{len(bad)} texts overflow their node, e.g. {bad[:5]}'
    crossed = []
    for n in m['nodes']:
        for tx0, ty0, tx1, ty1, text in n['texts']:
            for sx0, sy0, sx1, sy1 in n['seps']:
                if sx0 < tx1 - tol and tx0 + tol < sx1 and sy0 < ty1 - tol and ty0 + tol < sy1:
                    crossed.append((n['title'], text))
    assert not crossed, f'{len(crossed)} texts cross a field separator of their record, e.g. {crossed[:5]}'
    boxes = sorted((n['box'], n['title']) for n in m['nodes'])
    overlaps = []
    for k, (a, an) in enumerate(boxes):
        for b, bn in boxes[k + 1:]:
            if b[0] >= a[2] - tol:
                break
            if b[1] < a[3] - tol and a[1] < b[3] - tol:
                overlaps.append((an, bn))
    assert not overlaps, f'{len(overlaps)} overlapping node pairs, e.g. {overlaps[:5]}'


FIT_CASES = [pytest.param(n, f, r, id=f'{n}-{r}') for n, f, r in CASES]


@pytest.mark.parametrize('name,make,renderer', FIT_CASES)
def test_fits_16_9_with_text_at_least_10px(measured, name, make, renderer):
    """At fit-to-width on a 1920 px screen: no wider than 16:9 (x 1.25; a taller picture
    scrolls) and no text below 10 px, on both renderers."""
    m = measured(name, make, renderer)
    assert m['width'] / m['height'] <= 16 / 9 * 1.25, f"{m['width']:.0f}x{m['height']:.0f} px"
    assert m['minFont'] >= 10, f"smallest text {m['minFont']:.1f} px"


# -- order: heads 0, 1, 2, 3 and positions as rows, read from the rendered SVG ----------------
SVG_NS = '{http://www.w3.org/2000/svg}'


def _boxes(svg):
    """{kind: [(first text, (x0, y0, x1, y1))]} of the SVG's node and cluster groups (SVG units,
    y down), from their polygon/path points."""
    import re
    import xml.etree.ElementTree as ET
    out = {'node': [], 'cluster': []}
    for g in ET.fromstring(svg).iter(SVG_NS + 'g'):
        kind = g.get('class')
        if kind not in out:
            continue
        texts = [(t.text or '').replace('\xa0', ' ') for t in g.iter(SVG_NS + 'text')]
        pts = []
        for el in g.iter():
            if el.tag in (SVG_NS + 'polygon', SVG_NS + 'path'):
                nums = [float(v) for v in re.findall(r'-?\d+(?:\.\d+)?', el.get('points') or el.get('d') or '')]
                pts += list(zip(nums[0::2], nums[1::2]))
        if texts and pts:
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            out[kind].append((texts[0], (min(xs), min(ys), max(xs), max(ys))))
    return out


def _rendered(view, renderer):
    if renderer == 'native' and DOT is None:
        pytest.skip('no native dot')
    return render_view(view, 'svg', renderer=renderer)


@pytest.fixture(scope='module')
def emma():
    params, config, tok = fresh_model(seed=42)
    return record_step(params, config, tok, 'emma')


HEAD_VIEWS = {
    'token2-block (TB)': {'token': 2, 'level': 'block'},
    'token2-vector (TB)': {'token': 2, 'level': 'vector'},
    'layer0-token4-block (LR)': {'layer': 0, 'token': 4, 'level': 'block'},
    'layer0-block, every position (LR)': {'layer': 0, 'level': 'block'},
}


@pytest.mark.parametrize('renderer', RENDERERS)
@pytest.mark.parametrize('name', list(HEAD_VIEWS))
def test_heads_are_drawn_in_order_0_1_2_3(emma, name, renderer):
    """Within each position and step (the vector view draws logits, weights, head per head),
    head h's node is above head h+1's (LR) or left of it (TB)."""
    import re
    view = build_view(emma, **HEAD_VIEWS[name])
    tb = 'rankdir=TB' in view.source
    assert tb == name.endswith('(TB)')
    boxes = _boxes(_rendered(view, renderer))
    positions = sorted((b[1], b[3], t) for t, b in boxes['cluster'] if t.startswith('position '))
    heads = {}
    for text, (x0, y0, x1, y1) in boxes['node']:
        m = re.match(r'head (\d): ', text)
        if m:
            cy = (y0 + y1) / 2
            pos = next((t for top, bottom, t in positions if top <= cy <= bottom), None)
            heads.setdefault((pos, text[m.end():]), []).append((int(m.group(1)), (x0 + x1) / 2 if tb else cy))
    assert heads and all(len(hs) == 4 for hs in heads.values()), heads
    for where, hs in heads.items():
        along = [c for _, c in sorted(hs)]
        assert along == sorted(along), f'{where}: heads 0..3 at {along}'


@pytest.mark.parametrize('renderer', RENDERERS)
@pytest.mark.parametrize('what', ['layer', 'document'])
def test_positions_are_rows_in_order(emma, renderer, what):
    """The layer view at every position, and the whole document (the explorer's Document tab):
    one row per position, 0 on top, rows not overlapping."""
    view = build_view(emma, layer=0, level='block') if what == 'layer' else build_view(emma, document=True,
                                                                                           level='block')
    boxes = _boxes(_rendered(view, renderer))
    rows = sorted((int(t.split()[1].rstrip(':')), b) for t, b in boxes['cluster'] if t.startswith('position '))
    assert [p for p, _ in rows] == list(range(5))
    tops = [b[1] for _, b in rows]
    assert tops == sorted(tops), tops
    for (_, a), (_, b) in zip(rows, rows[1:]):
        assert a[3] <= b[1], f'position rows overlap: {a} {b}'
    if what == 'document':
        # each row is three lines in the flow's order: attention, the MLP, lm_head. Native dot
        # stacks them top down; the WebAssembly build (another Graphviz version) bottom up, in
        # every row alike (measured): the order is checked, the direction must be one for all
        blocks = {}
        for t, b in boxes['cluster']:
            if t in ('attn', 'mlp', 'lm_head'):
                cy = (b[1] + b[3]) / 2
                row = next(p for p, (_, top, _, bottom) in rows if top <= cy <= bottom)
                blocks.setdefault(row, {})[t] = b
        assert sorted(blocks) == list(range(5))
        directions = set()
        for p, bl in sorted(blocks.items()):
            a, m, h = bl['attn'], bl['mlp'], bl['lm_head']
            if a[3] <= m[1] and m[3] <= h[1]:
                directions.add('down')
            elif h[3] <= m[1] and m[3] <= a[1]:
                directions.add('up')
            else:
                raise AssertionError(f'position {p}: attention, MLP and lm_head not one under the other: {bl}')
        assert directions == ({'down'} if renderer == 'native' else {'up'}), directions


@pytest.mark.parametrize('renderer', RENDERERS)
def test_layer_vector_view_rows_attention_above_mlp(emma, renderer):
    """The vector-level layer view at every position (render --layer 0 --level vector): one
    row per position, 0 on top, rows not overlapping; in each row the attention comes before
    the MLP (above it: the MLP is wrapped under the attention); the heads in order 0..3."""
    import re
    view = build_view(emma, layer=0, level='vector')
    assert 'rankdir=LR' in view.source
    boxes = _boxes(_rendered(view, renderer))
    rows = sorted((int(t.split()[1].rstrip(':')), b) for t, b in boxes['cluster'] if t.startswith('position '))
    assert [p for p, _ in rows] == list(range(5))
    for (_, a), (_, b) in zip(rows, rows[1:]):
        assert a[3] <= b[1], f'position rows overlap: {a} {b}'

    def row_of(box):
        cy = (box[1] + box[3]) / 2
        return next(p for p, (_, top, _, bottom) in rows if top <= cy <= bottom)

    blocks = {}
    for t, b in boxes['cluster']:
        if t in ('attn', 'mlp'):
            blocks.setdefault(row_of(b), {})[t] = b
    assert sorted(blocks) == list(range(5))
    for p, bl in sorted(blocks.items()):
        assert bl['attn'][3] <= bl['mlp'][1], f"position {p}: attn {bl['attn']} is not above mlp {bl['mlp']}"
    heads = {}
    for text, b in boxes['node']:
        m = re.match(r'head (\d): ', text)
        if m:
            heads.setdefault((row_of(b), text[m.end():]), []).append((int(m.group(1)), (b[1] + b[3]) / 2))
    assert len(heads) == 15 and all(len(hs) == 4 for hs in heads.values()), heads
    for where, hs in heads.items():
        along = [c for _, c in sorted(hs)]
        assert along == sorted(along), f'{where}: heads 0..3 at {along}'


@pytest.mark.parametrize('renderer', RENDERERS)
def test_wte_heat_map_rows_named_and_uses_in_position_order(emma, renderer):
    """Each row of wte is named by its character; the five uses read x@pos0 .. x@pos4 top to
    bottom; each use's edge leaves from the row it reads (BOS, 'e', 'm', 'm', 'a')."""
    view = build_view(emma, param='wte')
    svg = _rendered(view, renderer)
    boxes = _boxes(svg)
    uses = [(b[1], t) for t, b in boxes['node'] if t.startswith('x@pos')]
    assert [t for _, t in sorted(uses)] == ["x@pos0 = wte[BOS] + wpe[0]", "x@pos1 = wte['e'] + wpe[1]",
                                            "x@pos2 = wte['m'] + wpe[2]", "x@pos3 = wte['m'] + wpe[3]",
                                            "x@pos4 = wte['a'] + wpe[4]"]
    from tests.svg_read import read_svg
    drawn = read_svg(svg)
    names = [drawn['nodes'][f'm0_l{r}']['texts'] for r in range(27)]
    assert names == [[repr(c)] for c in 'abcdefghijklmnopqrstuvwxyz'] + [['BOS']]
    rows = sorted(e.split('->')[0] for e in drawn['edges'] if e.startswith('m0_g'))
    assert rows == ['m0_g0', 'm0_g12', 'm0_g12', 'm0_g26', 'm0_g4']


def _named_boxes(svg):
    """{DOT node name: (x0, y0, x1, y1)} of the SVG's nodes (SVG units, y down)."""
    import re
    import xml.etree.ElementTree as ET
    out = {}
    for g in ET.fromstring(svg).iter(SVG_NS + 'g'):
        if g.get('class') != 'node':
            continue
        pts = []
        for el in g.iter():
            if el.tag in (SVG_NS + 'polygon', SVG_NS + 'path'):
                nums = [float(v) for v in re.findall(r'-?\d+(?:\.\d+)?', el.get('points') or el.get('d') or '')]
                pts += list(zip(nums[0::2], nums[1::2]))
        if pts:
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            out[g.find(SVG_NS + 'title').text] = (min(xs), min(ys), max(xs), max(ys))
    return out


@pytest.mark.parametrize('renderer', RENDERERS)
def test_cell_uses_in_position_order(emma, renderer):
    """Example 04 (README: --param layer0.attn_wq[3][5] --edge-grads): the cell's five uses
    (q[3] = ... at positions 0..4) one above the other, position 0 on top, not overlapping."""
    view = build_view(emma, param='layer0.attn_wq[3][5]', edge_grads=True)
    cell = next(n for n in view.folded.nodes if n.focus)
    uses = {e.dst for e in view.folded.edges if e.src == cell.name}
    by_pos = sorted((n.scope.pos, n.name) for n in view.folded.nodes if n.name in uses)
    assert [p for p, _ in by_pos] == [0, 1, 2, 3, 4]
    boxes = _named_boxes(_rendered(view, renderer))
    rows = [boxes[name] for _, name in by_pos]
    tops = [b[1] for b in rows]
    assert tops == sorted(tops), f'uses at positions 0..4 drawn at y {tops}'
    for a, b in zip(rows, rows[1:]):
        assert a[3] <= b[1], f'uses overlap: {a} {b}'


@pytest.mark.parametrize('renderer', RENDERERS)
def test_expanded_head_products_in_index_order(emma, renderer):
    """Example 02 (README: --token 2 --level block --expand 'pos2/layer0/attn/head0/*'): in
    each dot product's row, the products read k[0], k[1], k[2], k[3] (attn_logits) or
    v[0][d], v[1][d], v[2][d] (head_out) left to right, read from the rendered SVG: each
    product's x against the index of the k or v it multiplies (its reference's name, or for
    the position's own keys, the index in the row's tape order)."""
    import re
    view = build_view(emma, token=2, level='block', expand=['pos2/layer0/attn/head0/*'])
    from tests.svg_read import read_svg, scalar_name
    svg = _rendered(view, renderer)
    boxes = _named_boxes(svg)
    items = read_svg(svg)['nodes']
    svg_text = {name: node['texts'] for name, node in items.items()}
    rows = {}
    for n in view.folded.nodes:
        if n.kind != 'scalar' or n.side != 'interior' or emma.op_name(n.ids[0]) != 'mul':
            continue
        text = scalar_name(items[n.name])
        m = re.match(r'\* \u2192 (attn_logits\[h0\]\[t\d\]|head_out\[h0\]\[\d\])@pos2$', text)
        if m:
            rows.setdefault(m.group(1), []).append(n)
    assert len(rows) == 3 + 4, sorted(rows)     # attn_logits t0..t2, head_out 0..3
    for row, products in rows.items():
        # the index each product multiplies, from its reference ('k[2]@pos0', 'v[1][3]'...)
        read = {}
        for p in products:
            ref = svg_text.get('r' + p.name)
            if ref:
                read[p.name] = ref[0]
        xs = [boxes[p.name][0] for p in sorted(products, key=lambda p: p.ids[0])]
        assert xs == sorted(xs), f'{row}: products drawn at x {xs}'
        assert len(products) == (4 if row.startswith('attn') else 3)
        if row.startswith('attn') and len(read) == len(products):     # a cached position: named k[j]
            by_x = [read[p.name] for p in sorted(products, key=lambda p: boxes[p.name][0])]
            assert by_x == [f'\u2197 k[{j}]@pos{row[-2]}' for j in range(4)], (row, by_x)
