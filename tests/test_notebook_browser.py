"""The notebook widget's front end in real headless chromium, with no Jupyter and no HTTP server:
tests/notebook_harness.py plays the kernel, answering the page's requests with the Python widget's
own command (the explorer's Api.answer), and carrying `state` both ways as the comm would."""

import json
import os
import shutil
from pathlib import Path

import pytest

from tests import needs

needs.module('anywidget', "pip install -e '.[test]'")

from graphviz_export import explorer_widget  # noqa: E402
from tests.notebook_harness import open_widget, push, synced  # noqa: E402

CHROMIUM = '/usr/bin/chromium'
ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--no-first-run']
ARTIFACTS = Path(__file__).resolve().parent.parent / 'out' / 'test-artifacts'    # git-ignored (out/.gitignore)

try:
    from playwright.sync_api import sync_playwright
except ImportError:
    sync_playwright = None
_missing = [what for what, ok in (('playwright', sync_playwright is not None),
                                  ('chromium', os.path.exists(CHROMIUM) or shutil.which('chromium'))) if not ok]
if _missing:
    if os.environ.get('CI'):
        raise RuntimeError(f"browser tests need {' and '.join(_missing)} (CI is set, so they may not skip)")
    pytestmark = pytest.mark.skip(reason=f"browser tests need {' and '.join(_missing)}")


@pytest.fixture(scope='module')
def trace():
    """The step the widget records, recorded here independently of it."""
    from microgpt.recording import record_step
    from microgpt.train import fresh_model
    params, config, tok = fresh_model(42)
    return record_step(params, config, tok, 'emma')


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={'width': 1100, 'height': 900}, accept_downloads=True)
    pg = ctx.new_page()
    pg.errors, pg.requests = [], []
    pg.on('console', lambda m: pg.errors.append(m.text) if m.type == 'error' else None)
    pg.on('pageerror', lambda e: pg.errors.append(str(e)))
    pg.on('request', lambda r: pg.requests.append(r.url))
    yield pg
    ctx.close()


def shot(pg, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f'{name}.png'))


def wait_view(frame, before):
    frame.wait_for_function('u => window.explorer.view && window.explorer.view.url !== u '
                            '&& !document.querySelector("#busy:not([hidden])")', arg=before)


def click_node(frame, name):
    """Click a node as a user would after panning to it (a cell is smaller than a window)."""
    frame.evaluate('n => explorer.page.focusOn([n])', name)
    frame.locator(f'#graph g.node[data-name="{name}"]').first.click()


def click_scope(frame, path):
    name = frame.evaluate('p => Object.keys(explorer.view.nodes).find(k => explorer.view.nodes[k].path === p)', path)
    url = frame.evaluate('explorer.view.url')
    click_node(frame, name)
    wait_view(frame, url)


def test_the_widget_expands_a_block_selects_a_node_and_its_panel_reads_the_trace(page, trace):
    w = explorer_widget(doc='emma', seed=42)
    frame = open_widget(page, w)
    assert frame.evaluate('[explorer.view.kind, explorer.view.stats.level]') == ['token', 'block']
    assert frame.evaluate('window.MicrogptTransport.hosted') is True
    box = page.locator('#cell .microgpt-explorer').bounding_box()
    assert box['height'] == w.height and box['width'] == 1000          # sized to the cell
    frame.locator('#fit').click()
    click_scope(frame, 'pos4/layer0/attn')                               # block -> its roles
    assert frame.evaluate('explorer.view.stats.level') == 'vector'
    url = frame.evaluate('explorer.view.url')
    assert synced(page, w, lambda w: w.state == url) and url != ''     # the page's state, back in Python
    click_scope(frame, 'pos4/layer0/attn/head2/attn_weights')            # a role -> its scalars
    assert frame.evaluate('explorer.state.expand') == ['pos4/layer0/attn/head2/attn_weights']
    i = next(i for i in trace.nodes(pos=4, layer=0, head=2, role='attn_weights') if trace.op_name(i) == 'exp')
    click_node(frame, f'n{i}')
    frame.wait_for_selector('#panel #facts')
    assert frame.locator('#panel h3').inner_text() == f"{trace.name(i)} #{i}"
    assert frame.locator('#panel [data-k=data]').inner_text() == repr(trace.data[i])
    assert frame.locator('#panel [data-k=grad]').inner_text() == repr(trace.grad[i])
    assert [float(t) for t in frame.locator('#inputs [data-k=local]').all_inner_texts()] == trace.local_grads(i)
    assert [float(t) for t in frame.locator('#uses [data-k=contrib]').all_inner_texts()] == \
        [c for _, _, c in trace.uses(i)]
    assert synced(page, w, lambda w: w.selected == i) and f'sel={i}' in w.state
    shot(page, 'notebook-widget-selected')
    # every request went to the kernel's side (the harness), none over the network
    assert [u for u in page.requests if not u.startswith('blob:')] == []
    assert set(page.evaluate('harness.requests')) >= {'view', 'node'}
    assert page.errors == []


def test_the_first_view_is_drawn_from_the_answers_given_at_display_and_only_for_their_view(page):
    w = explorer_widget(doc='emma', seed=42)
    frame = open_widget(page, w)
    # no request for the view nor its info: drawn from what the kernel gave at display
    assert not {'view', 'info'} & set(page.evaluate('harness.requests'))
    _, (body,) = w._request({'endpoint': 'view', 'query': w.state}, [])
    want = json.loads(body)
    assert frame.evaluate('explorer.view.svg') == want['svg'] and frame.evaluate('explorer.view.url') == w.state
    assert frame.locator('#graph svg g.node').count() == want['svg'].count('class="node"') > 0
    assert frame.evaluate('explorer.page.info.doc') == 'emma' and page.errors == []
    # answers given for one view are not used for another: a state changed before the page opened is asked for
    other = context_page(page)
    w2 = explorer_widget(doc='emma', seed=42)
    w2._repr_mimebundle_()
    w2.show(token=1)
    frame = open_widget(other, w2, displayed=True)
    assert frame.evaluate('explorer.view.url') == 'token=1' == w2.state
    assert other.evaluate('harness.requests').count('view') == 1
    assert frame.evaluate('explorer.view.title') == json.loads(w2._request(
        {'endpoint': 'view', 'query': 'token=1'}, [])[1][0])['title']


def context_page(page):
    """A second page in the test page's browser context, its errors kept like the first's."""
    pg = page.context.new_page()
    pg.errors = page.errors
    pg.on('pageerror', lambda e: pg.errors.append(str(e)))
    return pg


def test_at_1024x768_the_explorer_fits_the_window_and_its_graph_most_of_a_narrow_cell(page):
    # JupyterLab at 1024x768 with its file browser open gives a cell 592 px wide
    page.set_viewport_size({'width': 1024, 'height': 768})
    w = explorer_widget(doc='emma', seed=42)
    frame = open_widget(page, w, width=592)
    box = page.locator('#cell .microgpt-explorer').bounding_box()
    assert w.height == 700 and abs(box['height'] - 0.8 * 768) < 1        # no taller than 80% of the window
    graph, side = frame.locator('#graph').bounding_box(), frame.locator('#side').bounding_box()
    assert side['width'] >= 200 and graph['width'] >= 0.55 * 592, (graph, side)
    assert graph['x'] + graph['width'] <= side['x']                      # side by side, not overlapping
    mini, canvas = frame.locator('#minimap'), frame.locator('#canvas').bounding_box()
    assert mini.is_visible() and mini.bounding_box()['width'] <= 0.3 * canvas['width'] + 1   # covers little of it
    shot(page, 'notebook-widget-narrow')


# rows a bar's visible children take: children whose vertical extents overlap share a row
ROWS = """sel => { const spans = [...document.querySelectorAll(sel + ' > *')]
  .filter((e) => e.offsetParent !== null && getComputedStyle(e).display !== 'none')
  .map((e) => e.getBoundingClientRect()).filter((r) => r.height > 0)
  .map((r) => [r.top, r.bottom]).sort((a, b) => a[0] - b[0]);
  let rows = 0, bottom = -Infinity;
  for (const [top, bot] of spans) { if (top >= bottom - 1) { rows += 1; bottom = bot; } else bottom = Math.max(bottom, bot); }
  return rows; }"""
SIZES = "sel => [...document.querySelectorAll(sel)].map((e) => parseFloat(getComputedStyle(e).fontSize))"


def test_in_a_592_px_cell_the_header_keeps_two_rows_of_readable_text(page):
    """JupyterLab at 1024x768 beside its file browser: the header wrapped to four rows (brand,
    recording, search, actions) and the view's controls left '/ 400' on a row of its own."""
    page.set_viewport_size({'width': 1024, 'height': 768})
    frame = open_widget(page, explorer_widget(doc='emma', seed=42), width=592)
    assert frame.evaluate(ROWS, '#top') == 2
    assert frame.evaluate(ROWS, '#viewctl') == 1
    assert frame.evaluate(ROWS, '#play') == 1
    texts = frame.evaluate(SIZES, '#top input, #top button, #top label, #top select, #viewctl label, #play button')
    assert texts and min(texts) >= 12, texts
    top, graph = frame.locator('#top').bounding_box(), frame.locator('#graph').bounding_box()
    assert top['height'] <= 70 and graph['height'] >= 340, (top, graph)
    shot(page, 'notebook-widget-header-592')


def test_the_saved_stepper_in_a_592_px_cell_gives_the_graph_the_room(page, tmp_path):
    """The static copy's stepper is the tour page in a 560 px frame: with the tour's own sizing its
    header (17 px title, 16 px caption in three lines) took a fifth of the frame."""
    from graphviz_export.web.notebook import explorer
    from graphviz_export.web.notebook.snapshot import HEIGHT, snapshot
    page.set_viewport_size({'width': 1024, 'height': 768})
    out = snapshot(explorer(None, doc='emma', seed=42), '')
    path = tmp_path / 'saved.html'
    path.write_text(f'<!doctype html><html><body style="margin: 8px; width: 592px">{out["text/html"]}</body></html>',
                    encoding='utf-8')
    page.goto(path.as_uri())
    frame = page.wait_for_selector('.microgpt-explorer-static iframe').content_frame()
    frame.wait_for_function('window.tour && window.tour.player()')
    header, stage = frame.locator('header').bounding_box(), frame.locator('#stage').bounding_box()
    assert header['height'] <= 0.15 * HEIGHT and stage['height'] >= 0.75 * HEIGHT, (header, stage)
    assert min(frame.evaluate(SIZES, 'header h1, #caption, footer button')) >= 12
    # stepping, the camera follows the lit node at a readable size (the median node text >= 10 px)
    frame.locator('#next').click()
    frame.locator('#next').click()
    frame.wait_for_function('''() => { const h = [...document.querySelectorAll("#stage svg g.node text")]
        .map((t) => t.getBoundingClientRect().height).filter((h) => h > 0).sort((a, b) => a - b);
        return tour.player().position() === 2 && h.length && h[h.length >> 1] >= 10; }''', timeout=10000)
    shot(page, 'notebook-saved-stepper-592')


def test_python_drives_the_widget_and_its_keys_and_wheel_stay_in_the_cell(page, trace):
    w = explorer_widget(doc='emma', seed=42, token=2)
    frame = open_widget(page, w)
    assert frame.evaluate('explorer.view.url') == 'token=2' == w.state
    url = frame.evaluate('explorer.view.url')
    w.show(layer=0, head=1, token=3)
    push(page, w)
    wait_view(frame, url)
    assert frame.evaluate('[explorer.view.kind, explorer.view.url]') == ['head', 'view=head&token=3&layer=0&head=1']
    i = trace.names().find('q[2]@pos3')[0]
    w.select(i)
    push(page, w)
    frame.wait_for_selector('#panel #facts')
    assert frame.locator('#panel [data-k=grad]').inner_text() == repr(trace.grad[i])
    # keys typed in another cell stay there; the wheel scrolls the notebook until the explorer has focus
    viewbox = frame.evaluate('explorer.svg.getAttribute("viewBox")')
    page.locator('#outside').click()
    page.keyboard.type('s+f')
    assert page.locator('#outside').input_value() == 's+f'
    assert frame.evaluate('window.stepthrough.open()') is False and 'frame' not in w.state
    frame.locator('#canvas').hover()
    page.mouse.wheel(0, -300)
    assert frame.evaluate('explorer.svg.getAttribute("viewBox")') == viewbox
    frame.locator('#status').click()                                     # the explorer has focus now
    frame.locator('#canvas').hover()
    page.mouse.wheel(0, -300)
    frame.wait_for_function('v => explorer.svg.getAttribute("viewBox") !== v', arg=viewbox)
    page.keyboard.press('s')                                             # its own key: the step-through
    frame.wait_for_function('window.stepthrough.open()')
    page.keyboard.press('ArrowRight')
    frame.wait_for_function('window.stepthrough.position() === 1')
    assert synced(page, w, lambda w: 'frame=1' in w.state)
    assert page.errors == []


def test_an_export_from_the_widget_is_the_kernels_bytes_saved_as_a_file(page):
    w = explorer_widget(doc='emma', seed=42, token=2)
    frame = open_widget(page, w)
    frame.locator('#exportbtn').click()
    with page.expect_download() as dl:
        frame.locator('#exportmenu a[data-fmt=svg]').click()
    assert dl.value.suggested_filename == 'emma-token_2.svg'
    data, _, _ = w._api.export('token=2&fmt=svg')
    assert Path(dl.value.path()).read_bytes() == data
    assert page.errors == []
