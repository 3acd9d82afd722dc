"""A new view lays its drawing out once, where the camera opens: in real headless chromium, between
its SVG going in and the end of its view event the page reads no layout (each read would make the
browser lay the whole drawing out there, and again after the camera moved: tens of ms each on a big
view), and what it placed from the shapes Graphviz wrote (viewbox.js shapeBox) is where the browser's
own boxes (getBBox, once the view is on screen) say: the identity badges at each node's top right
corner, an expansion's frame around its nodes, the camera centred on where to look first, readable,
and the minimap as getBBox's boxes paint it."""

import pytest

from microgpt.checks.diagnose import node_check_data
from tests.explorer_helpers import running_server
from tests.test_explorer_browser import _missing, open_page

if _missing:
    pytestmark = pytest.mark.skip(reason=f"browser tests need {' and '.join(_missing)}")

# views of emma's step: the default (the last position's block view), the whole document, a layer,
# a matrix's uses (heat-maps), an expansion (its frame), a search (the camera on its matches)
VIEWS = [{}, {'view': 'doc', 'level': None}, {'view': 'layer', 'layer': 0, 'token': 4, 'level': None},
         {'view': 'param', 'param': 'wte', 'level': None},
         {'view': 'token', 'token': 4, 'level': 'vector', 'expand': ['pos4/layer0/attn/rmsnorm']},
         {'view': 'token', 'token': 4, 'level': 'vector', 'hl': 'max:grad'}]

# every DOM read that makes the browser lay the page out (if it is not), counted with the stack of
# its caller while `window.__watch` is on: from the new SVG put into #graph to the view event's end
WATCH = """() => {
  window.__reads = []; window.__watch = false;
  const note = (name) => {
    if (window.__watch) window.__reads.push(name + ' <- ' + (new Error().stack.split('\\n')[3] || '').trim());
  };
  const wrap = (proto, names) => { for (const n of names) {
    const d = Object.getOwnPropertyDescriptor(proto, n);
    if (d.get) Object.defineProperty(proto, n, {get() { note(n); return d.get.call(this); }, set: d.set, configurable: true});
    else proto[n] = function () { note(n); return d.value.apply(this, arguments); };
  } };
  wrap(Element.prototype, ['getBoundingClientRect', 'getClientRects', 'scrollIntoView', 'clientLeft', 'clientTop', 'clientWidth',
                           'clientHeight', 'scrollWidth', 'scrollHeight', 'scrollLeft', 'scrollTop']);
  wrap(HTMLElement.prototype, ['offsetLeft', 'offsetTop', 'offsetWidth', 'offsetHeight', 'offsetParent', 'innerText', 'focus']);
  wrap(SVGGraphicsElement.prototype, ['getBBox', 'getCTM', 'getScreenCTM']);
  wrap(SVGTextContentElement.prototype, ['getComputedTextLength', 'getSubStringLength', 'getStartPositionOfChar',
                                         'getExtentOfChar']);
  wrap(SVGGeometryElement.prototype, ['getTotalLength', 'getPointAtLength', 'isPointInFill', 'isPointInStroke']);
  const style = window.getComputedStyle;
  window.getComputedStyle = function () { note('getComputedStyle'); return style.apply(this, arguments); };
  const html = Object.getOwnPropertyDescriptor(Element.prototype, 'innerHTML');
  Object.defineProperty(Element.prototype, 'innerHTML', {get: html.get, configurable: true, set(v) {
    html.set.call(this, v);
    if (this.id === 'graph' && String(v).includes('<svg')) window.__watch = true;      // the new drawing is in
  }});
  window.explorer.on('view', () => { window.__watch = false; });    // registered last: after every part's listener
}"""

# the view asked from the page, resolved once it is on screen (two frames after its view event)
SHOW = """(t) => new Promise((res) => {
  window.explorer.on('view', () => requestAnimationFrame(() => requestAnimationFrame(() => res())));
  window.explorer.setState(Object.assign({view: null, token: null, layer: null, head: null, param: null, level: null,
                                          expand: null, hl: null, sel: null, focus: null}, t));
})"""

# the browser's own box of a drawn node, in its graph group's units (the view on screen: laid out)
BOXES = """() => {
  const box = (name) => explorer.svg.querySelector(`g.node[data-name="${CSS.escape(name)}"]`).getBBox();
  const badges = [...explorer.svg.querySelectorAll('g.badge')].map((m) => {
    const b = box(m.dataset.node), c = m.querySelector('circle'), t = m.querySelector('text');
    return {node: m.dataset.node, got: [+c.getAttribute('cx'), +c.getAttribute('cy'), +t.getAttribute('x'), +t.getAttribute('y')],
            want: [b.x + b.width, b.y, b.x + b.width, b.y + 3.5]};
  });
  const frames = [...explorer.svg.querySelectorAll('g.frame')].map((f) => {
    const gs = Object.keys(explorer.view.nodes).filter((k) => explorer.view.nodes[k].exp === f.dataset.pattern).map(box);
    const x0 = Math.min(...gs.map((b) => b.x)), y0 = Math.min(...gs.map((b) => b.y));
    const x1 = Math.max(...gs.map((b) => b.x + b.width)), y1 = Math.max(...gs.map((b) => b.y + b.height));
    const r = f.querySelector('rect');
    return {got: ['x', 'y', 'width', 'height'].map((a) => +r.getAttribute(a)),
            want: [x0 - 8, y0 - 20, x1 - x0 + 16, y1 - y0 + 28]};
  });
  return {badges, frames};
}"""

# the view asked, and at its view event (before a bar appearing later resizes the canvas) where the
# camera opened, the canvas's size, and the browser's box of the newest position's loss in viewBox units
FRAMED = """(t) => new Promise((res) => {
  window.explorer.on('view', () => {
    const P = explorer.page, whole = P.cam.whole(), c = document.querySelector('#canvas').getBoundingClientRect();
    const loss = Object.keys(P.view.nodes).find((k) => P.view.nodes[k].path === 'pos4/loss');
    const b = explorer.svg.querySelector(`g.node[data-name="${loss}"]`).getBBox();
    const m = explorer.svg.querySelector('g.graph').transform.baseVal.consolidate().matrix;
    res({vb: explorer.svg.getAttribute('viewBox').split(' ').map(Number), whole: [whole.x, whole.y, whole.w, whole.h],
         canvas: [c.width, c.height], loss: [m.a * (b.x + b.width / 2) + m.e, m.d * (b.y + b.height / 2) + m.f]});
  });
  window.explorer.setState(Object.assign({view: null, token: null, layer: null, head: null, param: null, level: null}, t));
})"""


@pytest.fixture(scope='module')
def server():
    with running_server(doc='emma', seed=42, check=node_check_data) as s:     # as `explore` starts it
        yield s


@pytest.fixture
def page(browser, server):
    ctx = browser.new_context(viewport={'width': 1600, 'height': 900}, bypass_csp=True)
    pg = ctx.new_page()
    pg.errors = []
    pg.on('pageerror', lambda e: pg.errors.append(str(e)))
    pg.server = server
    yield pg
    ctx.close()


def test_a_new_view_reads_no_layout_from_its_svg_going_in_to_its_view_event(page):
    open_page(page)
    page.evaluate(WATCH)
    for view in VIEWS + [{'view': 'token', 'token': 2, 'level': None}]:
        page.evaluate(SHOW, view)
        assert page.evaluate('window.__reads') == [], view
        assert page.evaluate('explorer.svg.querySelectorAll("g.badge").length') or view.get('view') == 'param', view
    assert page.errors == []


def test_badges_and_frames_sit_where_the_browsers_own_boxes_say(page):
    open_page(page)
    seen = {'badges': 0, 'frames': 0}
    for view in VIEWS:
        page.evaluate(SHOW, view)
        got = page.evaluate(BOXES)
        for kind in seen:
            for b in got[kind]:
                assert b['got'] == pytest.approx(b['want'], abs=1e-3), (view, kind, b)
            seen[kind] += len(got[kind])
    assert seen['badges'] >= 20 and seen['frames'] >= 1, seen
    assert page.errors == []


# the minimap's pixels as painted, and as painted again from getBBox's boxes
MINIMAP = """async () => {
  const idle = () => new Promise((res) => requestIdleCallback(() => res(), {timeout: 2000}));
  await idle();
  const cv = document.querySelector('#minimap canvas'), drawn = cv.toDataURL();
  const shapeBox = MicrogptCamera.shapeBox;
  MicrogptCamera.shapeBox = (g) => g.getBBox();
  try { explorer.page.drawMinimap(); await idle(); } finally { MicrogptCamera.shapeBox = shapeBox; }
  return {drawn, browsers: cv.toDataURL(), blank: drawn === document.createElement('canvas').toDataURL()};
}"""


@pytest.mark.parametrize('size', [(1024, 768), (1600, 900)])
def test_the_camera_opens_centred_on_the_newest_loss_and_the_minimap_is_getbboxs(browser, server, size):
    ctx = browser.new_context(viewport={'width': size[0], 'height': size[1]}, bypass_csp=True)
    pg = ctx.new_page()
    pg.server = server
    try:
        open_page(pg)
        for view in ({'view': 'doc'}, {'view': 'token', 'token': 4}):
            f = pg.evaluate(FRAMED, view)
            x, y, w, h = f['vb']
            wx, wy, ww, wh = f['whole']
            # centred on it on each axis, unless that would show past the drawing's edge (then at that edge)
            for c, lo, span, wlo, wspan in ((f['loss'][0], x, w, wx, ww), (f['loss'][1], y, h, wy, wh)):
                at_edge = lo == pytest.approx(wlo, abs=1e-3) or lo + span == pytest.approx(wlo + wspan, abs=1e-3)
                assert lo + span / 2 == pytest.approx(c, abs=1e-3) or (at_edge and lo <= c <= lo + span), (view, f)
            assert w / h == pytest.approx(f['canvas'][0] / f['canvas'][1], rel=1e-6), f     # the canvas's own shape
            assert w < ww                                               # zoomed in to be read, not the whole drawing
            m = pg.evaluate(MINIMAP)
            assert not m['blank'] and m['drawn'] == m['browsers'], view
    finally:
        ctx.close()
