"""A matrix's heat-map as the explorer sends and paints it (draw/heatmap.py `cells`, /api/heatrow,
web/explorer/static/heat.js), against the picture that shows itself (striped rows: render, export,
the notebook's saved output). The page's colours, tooltips and edges are read in real chromium at
1024x768; the expected colours come from the colour rule written out here and the trace's values."""

import base64
import json
import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graphviz_export.draw.style import HEAT_PALETTE, heat_fill, heat_indices
from graphviz_export.view import build_view, render_view
from tests.explorer_helpers import get, get_json, running_server
from tests.svg_read import read_svg

NEG = ('#d8daeb', '#b2abd2', '#8073ac', '#542788')
POS = ('#fee0b6', '#fdb863', '#e08214', '#b35806')


def rule(x, scale):
    """The heat-map's colour rule, written out: black not finite, white 0 (or no scale), else the
    sign's ramp by |x| / scale in factors of 4."""
    if not math.isfinite(x):
        return '#000000'
    if x == 0 or not scale:
        return '#ffffff'
    r = abs(x) / scale
    return (POS if x > 0 else NEG)[3 if r >= 1 / 4 else 2 if r >= 1 / 16 else 1 if r >= 1 / 64 else 0]


@given(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 0.25, -1 / 16, 1 / 64])),
                max_size=40),
       st.one_of(st.none(), st.floats(min_value=0), st.sampled_from([math.inf, math.nan, 5e-324])))
def test_the_cells_indices_are_the_colour_rule(values, scale):
    """heat_indices (a matrix at once, the explorer's payload) and heat_fill give the rule's colour for
    every value, a matrix's own largest |x| or any other scale (0, inf, NaN, subnormal)."""
    if scale is None:
        scale = max(map(abs, values), default=0.0)
    assert [HEAT_PALETTE[k] for k in heat_indices(values, scale)] == [rule(x, scale) for x in values]
    assert [heat_fill(x, scale) for x in values] == [rule(x, scale) for x in values]


@pytest.fixture(scope='module')
def trace():
    from microgpt.recording import record_step
    from microgpt.train import fresh_model
    params, config, tok = fresh_model(42)
    return record_step(params, config, tok, 'emma')


@pytest.fixture(scope='module')
def server():
    with running_server(doc='emma', seed=42) as s:
        yield s


def side(trace, name, part):
    base = trace.param_base[name]
    rows, cols = trace.param_shapes[name]
    column = trace.data if part == 'd' else trace.grad
    return [column[base + k] for k in range(rows * cols)]


def test_the_matrix_view_sends_its_cells_once_and_no_stripes_or_values(server, trace):
    """The answer of a matrix's view carries each side's cells once (a palette index a cell, the rule's
    colour), one plain box a row, and no value of a cell (its tooltip is asked on hover). Striped, this
    answer was 486 kB (its SVG 451 kB); at 4 x 64 6.2 MB, 463 kB now (benchmarks, the report)."""
    name = 'layer0.mlp_fc1'
    rows, cols = trace.param_shapes[name]
    status, _, body = get(server, f'/api/view?view=param&param={name}')
    v = json.loads(body)
    assert status == 200 and len(body) < 160_000, len(body)
    (m, heat), = v['heat'].items()
    assert (heat['rows'], heat['cols']) == (rows, cols)
    assert heat['titles'] == {'d': f'{name}[{{row}}] data, columns 0..{cols - 1}:',
                              'g': f'{name}[{{row}}] grad, columns 0..{cols - 1}:'}
    for part in 'dg':
        values = side(trace, name, part)
        top = max(map(abs, values))
        got = [heat['palette'][k] for k in base64.b64decode(heat[part])]
        assert got == [rule(x, top) for x in values]
    drawn = read_svg(v['svg'])['nodes']
    for r in (0, rows - 1):
        for part in 'dg':
            assert [f for f in drawn[f'{m}_{part}{r}']['fills'] if f not in ('none', None)] == ['transparent']
            assert drawn[f'{m}_{part}{r}']['tooltip'] is None       # given on hover
    for x in side(trace, name, 'd')[:50] + side(trace, name, 'g')[:50]:
        if x != 0:
            assert repr(x) not in body.decode('utf-8')


def test_a_rows_tooltip_lines_come_from_the_server_with_every_digit(server, trace):
    base = trace.param_base['wte']
    status, d = get_json(server, '/api/heatrow?view=param&param=wte&row=m0_g4')
    assert status == 200 and d['lines'] == ['wte[4] grad, columns 0..15:'] + [
        f'[4][{k}] {trace.grad[base + 4 * 16 + k]!r}' for k in range(16)]
    status, d = get_json(server, '/api/heatrow?view=param&param=wte&row=m0_d3')
    assert d['lines'][1:] == [f'[3][{k}] {trace.data[base + 3 * 16 + k]!r}' for k in range(16)]
    for query, said in (('view=param&param=wte&row=m0_d27', "row 'm0_d27' is not a row of this view's heat-map; "
                                                            "its rows are m0_d0..m0_d26 (data) and m0_g0..m0_g26 (grad)"),
                        ('view=param&param=wte&row=m1_d3', "row 'm1_d3' is not a row"),
                        ('view=param&param=wte&row=m0_x3', "row 'm0_x3' is not a row"),
                        ('view=token&token=1&row=m0_d3', 'this view has no heat-map')):
        status, d = get_json(server, f'/api/heatrow?{query}')
        assert status == 400 and d['error'].startswith(said) and '\n' not in d['error'], d


def test_export_render_and_the_saved_notebook_keep_the_striped_rows(server, trace):
    """What leaves the page shows itself: the export (svg, dot) and `render` stripe each row with the
    rule's colours, the same layout as the page's boxes."""
    name = 'wte'
    rows, cols = trace.param_shapes[name]
    status, _, exported = get(server, '/api/export?view=param&param=wte&fmt=svg')
    status_dot, _, dot = get(server, '/api/export?view=param&param=wte&fmt=dot')
    page = get_json(server, '/api/view?view=param&param=wte')[1]
    rendered = render_view(build_view(trace, param=name), 'svg').decode('utf-8')
    assert status == status_dot == 200
    for svg in (exported.decode('utf-8'), rendered):
        drawn = read_svg(svg)['nodes']
        for part in 'dg':
            values = side(trace, name, part)
            top = max(map(abs, values))
            for r in range(rows):
                stripes = [f for f in drawn[f'm0_{part}{r}']['fills'] if f not in ('none', None)]
                assert stripes == [rule(x, top) for x in values[r * cols:(r + 1) * cols]]
    assert dot.decode('utf-8').count('fillcolor="#') >= 2 * rows and 'style=striped' in dot.decode('utf-8')
    # the same places: every row's box where the page's box is
    assert len(row_boxes(page['svg'], 'm0')) == 2 * rows and row_boxes(page['svg'], 'm0') == row_boxes(exported, 'm0')
    m = f"m{trace.param_base['layer0.mlp_fc1']}"
    page = get_json(server, '/api/view?view=param&param=layer0.mlp_fc1')[1]
    exported = get(server, '/api/export?view=param&param=layer0.mlp_fc1&fmt=svg')[2]
    assert len(row_boxes(page['svg'], m)) == 128 and row_boxes(page['svg'], m) == row_boxes(exported, m)


def row_boxes(svg, m):
    """{row name: the points of its box's outline (its last polygon)} of the SVG's heat-map rows (matrix node m)."""
    text = svg if isinstance(svg, str) else svg.decode()
    rows = re.findall(rf'<title>({m}_[dg]\d+)</title>', text)
    out = {}
    for name in rows:
        group = text[text.index(f'<title>{name}</title>'):]
        group = group[:group.index('\n<!--')]     # to the next node or edge
        out[name] = re.findall(r'points="([^"]+)"', group)[-1]
    return out


def test_the_saved_notebook_output_of_a_matrix_view_is_striped(trace):
    from graphviz_export.web.explorer.api import Api
    from graphviz_export.web.explorer.recordings import Recordings
    from graphviz_export.web.notebook.snapshot import snapshot
    api = Api(Recordings(doc='emma', seed=42))
    out = snapshot(api, 'view=param&param=wte')
    drawn = read_svg(out['image/svg+xml'])['nodes']
    values = side(trace, 'wte', 'g')
    top = max(map(abs, values))
    assert [f for f in drawn['m0_g4']['fills'] if f not in ('none', None)] == [rule(x, top) for x in values[64:80]]


# -- in the page ----------------------------------------------------------------------------------------
PIXELS = """async ([png, points]) => {
  const img = new Image();
  img.src = 'data:image/png;base64,' + png;
  await img.decode();
  const c = document.createElement('canvas');
  c.width = img.width; c.height = img.height;
  const ctx = c.getContext('2d');
  ctx.drawImage(img, 0, 0);
  return points.map(([x, y]) => {
    const d = ctx.getImageData(Math.floor(x), Math.floor(y), 1, 1).data;
    return '#' + [d[0], d[1], d[2]].map((v) => v.toString(16).padStart(2, '0')).join('');
  });
}"""


@pytest.fixture
def page(browser, server):
    ctx = browser.new_context(viewport={'width': 1024, 'height': 768}, bypass_csp=True)
    pg = ctx.new_page()
    pg.errors = []
    pg.on('console', lambda m: pg.errors.append(m.text) if m.type == 'error' else None)
    pg.on('pageerror', lambda e: pg.errors.append(str(e)))
    pg.goto(server.link('view=param&param=wte'))
    pg.wait_for_function('window.explorer && window.explorer.view && window.explorer.view.kind === "matrix" '
                         '&& document.querySelector("#graph g.mg-heat")')
    yield pg
    ctx.close()


def cell_colours(pg, cells):
    """{(row name, column): colour on screen} of cells (row name, column): each row brought on screen
    and sampled at its cells' centres."""
    out = {}
    for row, k in cells:
        pg.evaluate('r => explorer.page.focusOn([r])', row)
        pg.wait_for_timeout(100)
        box = pg.evaluate("""r => { const b = document.querySelector(`#graph [id="node-${r}"] polygon`).getBoundingClientRect();
                                    return [b.x, b.y, b.width, b.height]; }""", row)
        x, y, w, h = box
        assert w / 16 >= 4 and h >= 4, box            # a cell of some pixels: its centre is its own colour
        png = base64.b64encode(pg.screenshot()).decode('ascii')
        (out[row, k],) = pg.evaluate(PIXELS, [png, [[x + (k + 0.5) * w / 16, y + h / 2]]])
    return out


def test_the_page_paints_each_cell_in_its_rules_colour(page, trace):
    """Sampled on screen at 1024x768: data and grad side, positive, negative, zero and each side's largest
    |x| (the darkest), each the rule's colour for that value of the trace."""
    data, grad = side(trace, 'wte', 'd'), side(trace, 'wte', 'g')
    dtop, gtop = max(map(abs, data)), max(map(abs, grad))
    big_d = max(range(len(data)), key=lambda i: abs(data[i]))
    big_g = max(range(len(grad)), key=lambda i: abs(grad[i]))
    neg_g = next(i for i in range(len(grad)) if grad[i] < 0 and rule(grad[i], gtop) != rule(grad[big_g], gtop))
    zero_g = next(i for i in range(len(grad)) if grad[i] == 0)
    pos_d = next(i for i in range(len(data)) if data[i] > 0 and rule(data[i], dtop) != rule(data[big_d], dtop))
    picks = [('d', big_d, data, dtop), ('d', pos_d, data, dtop), ('d', 17, data, dtop),
             ('g', big_g, grad, gtop), ('g', neg_g, grad, gtop), ('g', zero_g, grad, gtop)]
    got = cell_colours(page, [(f'm0_{part}{i // 16}', i % 16) for part, i, _, _ in picks])
    want = {(f'm0_{part}{i // 16}', i % 16): rule(values[i], top) for part, i, values, top in picks}
    assert got == want
    assert '#ffffff' in want.values() and set(want.values()) & set(POS) and set(want.values()) & set(NEG)
    assert page.errors == []


def test_a_rows_tooltip_on_hover_is_the_servers_lines(page, trace):
    base = trace.param_base['wte']
    page.evaluate('() => explorer.page.focusOn(["m0_g4"])')
    page.locator('#graph g.node[data-name="m0_g4"]').hover()
    page.wait_for_function('() => document.querySelector(\'#graph [id="node-m0_g4"] polygon > title\').dataset.lines === "shown"')
    title = page.evaluate("() => document.querySelector('#graph [id=\"node-m0_g4\"] polygon > title').textContent")
    assert title == '\n'.join(['wte[4] grad, columns 0..15:'] +
                              [f'[4][{k}] {trace.grad[base + 4 * 16 + k]!r}' for k in range(16)])
    assert page.errors == []


def test_an_edge_from_a_one_row_use_starts_on_that_rows_painted_box(page, trace):
    """Each position's use of wte leaves from the grad row of its token (BOS, 'e', 'm', 'm', 'a'), on
    that row's box (over its painted cells: test_the_page_paints_each_cell_in_its_rules_colour)."""
    page.keyboard.press('f')
    page.wait_for_timeout(200)
    starts = page.evaluate("""() => [...document.querySelectorAll('#graph g.edge')].map((g) => {
        const name = g.querySelector('title').textContent, p = g.querySelector('path');
        if (!name.startsWith('m0_g')) return null;
        const row = name.split('->')[0], box = document.querySelector(`#graph [id="node-${row}"] polygon`);
        const q = p.getPointAtLength(0).matrixTransform(p.getScreenCTM()), b = box.getBoundingClientRect();
        return [row, q.x - b.left, q.x - b.right, q.y - b.top, q.y - b.bottom];
      }).filter(Boolean)""")
    from microgpt.train import fresh_model
    tokens = fresh_model(42)[2].encode('emma')[:5]         # the token read at positions 0..4
    assert tokens == [26, 4, 12, 12, 0]
    assert sorted(s[0] for s in starts) == sorted(f'm0_g{t}' for t in tokens)
    for row, left, right, top, bottom in starts:      # on the box's border (Graphviz clips it there)
        assert left >= -1 and right <= 1 and top >= -1 and bottom <= 1, (row, left, right, top, bottom)


def test_the_step_through_still_covers_and_repaints_a_painted_row(page, trace):
    """A grad row hidden until its frame is grey over its cells (stepper.css over heat.js's paint), and
    the update phase's Δvalue repaints a row and gives its colours back after (stepper.js)."""
    fills = ['#542788'] * 8 + ['#fee0b6'] * 8
    page.evaluate("f => MicrogptStepper.paintUpdate(explorer.svg, {rows: {'node-m0_g4': f}, line: ['', '']})", fills)
    assert cell_colours(page, [('m0_g4', 2), ('m0_g4', 12)]) == {('m0_g4', 2): '#542788', ('m0_g4', 12): '#fee0b6'}
    page.evaluate("() => MicrogptStepper.clearUpdate(explorer.svg, {rows: {}, line: ['', '']})")
    grad = side(trace, 'wte', 'g')
    top = max(map(abs, grad))
    assert cell_colours(page, [('m0_g4', 2)]) == {('m0_g4', 2): rule(grad[4 * 16 + 2], top)}
    page.evaluate("""() => { explorer.svg.classList.add('mg-stepper');
                             document.querySelector('#graph [id="node-m0_g4"]').classList.add('mg-hidden'); }""")
    assert cell_colours(page, [('m0_g4', 2)]) == {('m0_g4', 2): '#eeeeee'}
    assert page.errors == []
