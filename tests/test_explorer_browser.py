"""The explorer in a real headless browser: Debian's chromium driven by Playwright for Python.

Skipped only when chromium or Playwright is missing and the CI variable is unset;
under CI=true a missing browser fails the run instead. Screenshots of the main
states go to tests/artifacts/ (git-ignored).
"""

import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.explorer_helpers import running_server

CHROMIUM = '/usr/bin/chromium'
ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--no-first-run']
ARTIFACTS = Path(__file__).parent / 'artifacts'


def _playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    return sync_playwright


_sync_playwright = _playwright()
_missing = [what for what, ok in (('playwright', _sync_playwright is not None),
                                  ('chromium', os.path.exists(CHROMIUM) or shutil.which('chromium')))
            if not ok]
if _missing:
    if os.environ.get('CI'):
        raise RuntimeError(f"browser tests need {' and '.join(_missing)} (CI is set, so they may not skip)")
    pytestmark = pytest.mark.skip(reason=f"browser tests need {' and '.join(_missing)}")


@pytest.fixture(scope='module')
def server():
    with running_server(doc='emma', seed=42) as s:
        yield s


@pytest.fixture(scope='module')
def trace():
    """The same step, recorded here independently of the server."""
    from microgpt.recording import record_step
    from microgpt.train import fresh_model
    params, config, tok = fresh_model(42)
    return record_step(params, config, tok, 'emma')


@pytest.fixture(scope='module')
def browser():
    with _sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    # bypass_csp: Playwright's wait_for_function evaluates strings, which the page's CSP forbids
    ctx = browser.new_context(viewport={'width': 1600, 'height': 900}, bypass_csp=True, accept_downloads=True)
    pg = ctx.new_page()
    pg.errors = []
    pg.on('console', lambda m: pg.errors.append(m.text) if m.type == 'error' else None)
    pg.on('pageerror', lambda e: pg.errors.append(str(e)))
    pg.base = server.url
    yield pg
    ctx.close()


def shot(pg, name):
    ARTIFACTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f'{name}.png'))


def open_page(pg, query=''):
    pg.goto(pg.base + ('?' + query if query else ''))
    pg.wait_for_selector('#graph svg g.node')
    pg.wait_for_function('window.explorer && window.explorer.view')


def wait_view(pg, before):
    """Wait until a new view replaced `before` (an explorer.view.url)."""
    pg.wait_for_function('u => window.explorer.view && window.explorer.view.url !== u '
                         '&& !document.querySelector("#busy:not([hidden])")', arg=before)


def click_node(pg, name):
    pg.locator(f'#graph g.node[data-name="{name}"]').first.click()


def node_named(pg, path):
    return pg.evaluate('p => Object.keys(explorer.view.nodes).find(k => explorer.view.nodes[k].path === p)', path)


def titles(pg):
    return set(pg.evaluate('[...document.querySelectorAll("#graph g.node > title")].map(t => t.textContent)'))


def svg_node_count(pg):
    return pg.locator('#graph g.node').count()


def test_page_loads_the_block_view_of_the_last_token_with_no_console_errors(page):
    open_page(page)
    assert page.evaluate('explorer.view.stats.level') == 'block'
    assert page.evaluate('explorer.view.kind') == 'token'
    assert page.locator('#crumbs').inner_text().startswith("document 'emma' › position pos 4")
    assert page.locator('#positions .chip[data-pos]').count() == 5
    assert page.locator('#stepper').count() == 1
    assert page.evaluate('explorer.svg instanceof SVGSVGElement')
    shot(page, '01-start')
    assert page.errors == []


def test_clicking_folded_nodes_expands_in_place_and_the_crumb_folds_back(page, trace):
    open_page(page)
    n_block = svg_node_count(page)
    url = page.evaluate('explorer.view.url')
    click_node(page, node_named(page, 'pos4/layer0/attn'))           # block -> its roles
    wait_view(page, url)
    assert page.evaluate('explorer.view.stats.level') == 'vector'
    n_vector = svg_node_count(page)
    assert n_vector > n_block
    url = page.evaluate('explorer.view.url')
    scope = 'pos4/layer0/attn/head2/attn_weights'
    click_node(page, node_named(page, scope))                         # a role -> its scalars
    wait_view(page, url)
    assert page.evaluate('explorer.state.expand') == [scope]
    assert svg_node_count(page) > n_vector
    drawn = titles(page)
    ids = trace.nodes(pos=4, layer=0, head=2, role='attn_weights')
    assert {f'n{i}' for i in ids} <= drawn                          # every scalar of the scope is drawn
    assert page.locator('#graph g.frame').count() == 1
    crumbs = page.locator('#crumbs').inner_text()
    assert 'head 2' in crumbs and 'attn_weights' in crumbs
    shot(page, '02-expanded')
    url = page.evaluate('explorer.view.url')
    page.locator('#crumbs a', has_text='block').click()              # fold back
    wait_view(page, url)
    assert page.evaluate('explorer.state.expand') is None
    assert page.locator('#graph g.frame').count() == 0
    assert not ({f'n{i}' for i in ids} & titles(page))
    assert page.errors == []


def test_the_frame_of_an_expansion_folds_it_back(page):
    open_page(page, 'level=vector&expand=pos4/layer0/attn/head2/attn_weights')
    url = page.evaluate('explorer.view.url')
    page.locator('#graph g.frame text').click()
    wait_view(page, url)
    assert page.evaluate('explorer.state.expand') is None and page.evaluate('explorer.view.stats.level') == 'vector'


def test_search_jumps_and_highlights(page):
    open_page(page)
    url = page.evaluate('explorer.view.url')
    page.fill('#q', 'pos:3 layer:0 head:2 role:attn_weights')
    page.press('#q', 'Enter')
    wait_view(page, url)
    assert page.evaluate('explorer.view.kind') == 'head'
    assert page.evaluate('explorer.state.hl') == 'pos:3 layer:0 head:2 role:attn_weights'
    assert page.locator('#results').inner_text().startswith('25 matches in 1 scope')
    hl = page.locator('#graph g.node.hl')
    assert hl.count() >= 1
    names = page.evaluate('[...document.querySelectorAll("#graph g.node.hl")].map(g => g.dataset.name)')
    assert all(page.evaluate('n => explorer.view.nodes[n].path', n).endswith('attn_weights') for n in names)
    shot(page, '03-search')
    # a parameter cell jumps to its view
    url = page.evaluate('explorer.view.url')
    page.fill('#q', 'layer0.attn_wq[3][5]')
    page.press('#q', 'Enter')
    wait_view(page, url)
    assert page.evaluate('explorer.view.kind') == 'param' and page.locator('#graph g.node.hl').count() == 1
    assert page.errors == []


def test_side_panel_numbers_equal_the_trace(page, trace):
    cell = trace.param_nodes('layer0.attn_wq[3][5]')[0]
    open_page(page, 'view=param&param=layer0.attn_wq[3][5]&level=auto')
    click_node(page, f'n{cell}')
    page.wait_for_selector('#panel #facts')
    assert page.locator('#panel [data-k=data]').inner_text() == repr(trace.data[cell])
    assert page.locator('#panel [data-k=grad]').inner_text() == repr(trace.grad[cell])
    uses = trace.uses(cell)
    got = [float(t) for t in page.locator('#uses [data-k=contrib]').all_inner_texts()]
    assert got == [c for _, _, c in uses]
    total = 0.0
    for _, _, c in uses:
        total += c
    assert float(page.locator('#panel [data-k=sum]').inner_text()) == total == trace.grad[cell]
    assert '= grad, exactly' in page.locator('#panel').inner_text()
    shot(page, '04-panel')
    # an interior op: local derivatives per input, and the model line
    i = next(i for i in trace.nodes(pos=4, layer=0, head=2, role='attn_weights') if trace.op_name(i) == 'exp')
    open_page(page, f'view=node&node={i}&depth=1&level=auto&sel={i}')
    page.wait_for_selector('#panel #inputs')
    assert [float(t) for t in page.locator('#inputs [data-k=local]').all_inner_texts()] == trace.local_grads(i)
    assert 'made by microgpt/model.py:' in page.locator('#panel').text_content()
    assert 'attn_weights = softmax(attn_logits)' in page.locator('#panel pre').inner_text()
    assert page.errors == []


def test_reload_and_back_restore_the_url_state(page):
    q = 'view=layer&layer=0&token=2&level=vector&expand=pos2/layer0/attn/head1/attn_logits'
    open_page(page, q)
    stats = page.evaluate('explorer.view.stats')
    page.reload()
    page.wait_for_function('window.explorer && window.explorer.view')
    assert page.evaluate('explorer.view.stats') == stats
    assert page.evaluate('explorer.state.expand') == ['pos2/layer0/attn/head1/attn_logits']
    url = page.evaluate('explorer.view.url')
    page.locator('#positions .chip[data-pos="1"]').click()
    wait_view(page, url)
    assert page.evaluate('explorer.state.token') == '1'
    page.go_back()
    page.wait_for_function('explorer.state.token === "2"')
    assert page.evaluate('explorer.view.stats') == stats


def test_export_downloads_a_valid_svg(page):
    open_page(page, 'token=2')
    page.click('#exportbtn')
    with page.expect_download() as dl:
        page.click('#exportmenu a[data-fmt=svg]')
    path = dl.value.path()
    root = ET.parse(path).getroot()
    assert root.tag == '{http://www.w3.org/2000/svg}svg'
    assert dl.value.suggested_filename == 'emma-token_2.svg'


def test_bad_requests_get_400_and_the_page_stays_up(page):
    open_page(page)
    status = page.evaluate('fetch("/api/view?level=bogus").then(r => r.status)')
    assert status == 400
    url = page.evaluate('explorer.view.url')
    page.evaluate('explorer.setState({token: "99"})')
    page.wait_for_selector('#msg:not([hidden])')
    assert 'position 99 is not in this trace' in page.locator('#msg').inner_text()
    assert page.evaluate('explorer.view.url') == url                   # the old view stays
    page.evaluate('explorer.setState({level: "vector", expand: ["pos4/layer0/attn/q"]})')
    page.wait_for_function('document.querySelector("#msg").textContent.includes("over the budget")')
    shot(page, '05-refused')
    page.locator('#positions .chip[data-pos="0"]').click()
    wait_view(page, url)
    assert page.evaluate('explorer.state.token') == '0'


def test_switching_the_document_from_the_page(page):
    open_page(page)
    url = page.evaluate('explorer.view.url')
    page.fill('#doc', 'christopher')
    page.press('#doc', 'Enter')
    wait_view(page, url)
    assert page.evaluate('explorer.view.title').startswith("token 11 of 'christopher'")
    assert page.locator('#positions .chip[data-pos]').count() == 12
    assert 'doc=christopher' in page.url
    assert page.errors == []
