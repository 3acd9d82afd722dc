"""Other web pages cannot drive the explorer, in a real Chromium: an attacker page on another port of
127.0.0.1 (same-site, not same-origin: a notebook server, `python -m http.server`) and one on
another site (http://evil.test, mapped to 127.0.0.1 by Chromium's host resolver) fire every request a
page can make without the explorer's token: no-cors fetch GET and POST (with a request hidden in the
body), a CORS fetch with a guessed token, sendBeacon, <img>, <script>, <link>, an <iframe> of the
explorer's page, a window.open of it, and a JavaScript-free <form enctype=text/plain method=POST>
clicked by the user. The test checks that the requests reached the server (the attack really ran),
that each was refused, that no API endpoint ran and that the server recorded, loaded, trained and
drew nothing; a hidden request is never even seen as a request."""

import http.server
import threading

import pytest

from graphviz_export.web.explorer.server import Handler
from tests.explorer_helpers import running_server
from tests.hostile_cases import done
from tests.test_explorer_browser import _missing

if _missing:
    pytestmark = pytest.mark.skip(reason=f"browser tests need {' and '.join(_missing)}")

ENDPOINTS = ('view', 'info', 'node', 'frames', 'update', 'suggest', 'search', 'export')

# Each vector asks for a document of its own, so the server's log tells which arrived. The hidden
# requests (inside a body) name documents that must never appear in that log at all.
ARRIVING = {'aaa': 'fetch no-cors GET', 'aab': 'fetch no-cors GET /api/info', 'aac': 'fetch no-cors POST',
            'aaf': 'sendBeacon', 'aah': '<img> (opens an offered checkpoint)', 'aai': '<script> (trains 2 steps)',
            'aaj': '<link rel=stylesheet>', 'aan': 'fetch with a wrong api_token', 'aal': '<form> POST, clicked'}
HIDDEN = ('aad', 'aag', 'aao')

ATTACK = """<!DOCTYPE html><html><body>
<iframe name="sink" src="about:blank"></iframe>
<form id="form" method="POST" enctype="text/plain" target="sink" action="__T__/api/view?doc=aal">
<input name="GET /api/view?doc=aao HTTP/1.1&#13;&#10;Host: __HOST__&#13;&#10;X-Pad: " value="&#13;&#10;&#13;&#10;">
<button id="go" type="submit">go</button></form>
<script>
const T = '__T__';
const hidden = (doc) => 'GET /api/view?doc=' + doc + ' HTTP/1.1\\r\\nHost: __HOST__\\r\\n\\r\\n';
const quiet = (p) => p.catch(() => null);
window.fired = Promise.all([
  quiet(fetch(T + '/api/view?doc=aaa', {mode: 'no-cors'})),
  quiet(fetch(T + '/api/info?doc=aab', {mode: 'no-cors', credentials: 'include'})),
  quiet(fetch(T + '/api/view?doc=aac', {mode: 'no-cors', method: 'POST', body: hidden('aad'),
                                        headers: {'Content-Type': 'text/plain'}})),
  quiet(fetch(T + '/api/view?doc=aae', {headers: {'X-Explorer-Token': 'guessed'}})),
  quiet(fetch(T + '/api/view?doc=aan&api_token=guessed', {mode: 'no-cors'})),
]);
navigator.sendBeacon(T + '/api/view?doc=aaf', hidden('aag'));
const img = document.createElement('img'); img.src = T + '/api/view?ckpt=seed7.json&doc=aah'; document.body.append(img);
const s = document.createElement('script'); s.src = T + '/api/view?cmp=steps:2&doc=aai'; document.body.append(s);
const l = document.createElement('link'); l.rel = 'stylesheet'; l.href = T + '/api/info?doc=aaj'; document.head.append(l);
const f = document.createElement('iframe'); f.src = T + '/?doc=aak&cmp=steps:3'; document.body.append(f);
window.open(T + '/?doc=aam&cmp=steps:4&view=doc');
</script></body></html>"""


@pytest.fixture(scope='module')
def explorer(tmp_path_factory):
    from microgpt.checkpoint import save_checkpoint
    from microgpt.train import fresh_model
    folder = tmp_path_factory.mktemp('attacks')
    save_checkpoint(folder / 'seed7.json', *fresh_model(7))
    names = folder / 'names.txt'
    names.write_text('emma\nolivia\nava\nabcdefghijklmnopqrstuvwxyz\n')
    with running_server(doc='emma', checkpoints=[str(folder / 'seed7.json')], data=str(names)) as server:
        yield server


class Watched:
    """The server's Api with every endpoint call noted (the attack must cause none)."""

    def __init__(self, api):
        self.api, self.calls = api, []

    def __getattr__(self, name):
        got = getattr(self.api, name)
        if name == 'answer':        # the door every request goes through (the server's handler, a notebook's)
            def answer(endpoint, query):
                self.calls.append((endpoint, query))
                return got(endpoint, query)
            return answer
        if name not in ENDPOINTS:
            return got

        def call(query):
            self.calls.append((name, query))
            return got(query)
        return call


@pytest.fixture
def watched(explorer):
    """The explorer with its answers logged (method, path, status) and its endpoint calls noted."""
    seen = []

    class Logged(Handler):
        def log_request(self, code='-', size='-'):
            seen.append((self.command, self.path, int(code)))

    api, cls = explorer.api, explorer.RequestHandlerClass
    explorer.api, explorer.RequestHandlerClass = Watched(api), Logged
    try:
        yield explorer, seen, explorer.api.calls
    finally:
        explorer.api, explorer.RequestHandlerClass = api, cls


@pytest.fixture(scope='module')
def attacker():
    """A tiny http.server on 127.0.0.1 (another port) serving the attack page for a target it is told."""
    pages = {}

    class Pages(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = pages.get(self.path.split('?')[0], '').encode()
            self.send_response(200 if body else 404)
            self.send_header('Content-Type', 'text/html; charset=utf-8')
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Pages)
    thread = threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], pages
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize('where', ['another port of 127.0.0.1', 'another site'])
def test_another_page_cannot_make_the_explorer_do_anything(browser, watched, attacker, where):
    server, seen, calls = watched
    port, pages = attacker
    host = f'127.0.0.1:{server.server_address[1]}'
    pages['/attack.html'] = ATTACK.replace('__T__', f'http://{host}').replace('__HOST__', host)
    origin = f'http://127.0.0.1:{port}' if where.startswith('another port') else f'http://evil.test:{port}'
    before = done(server)
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        page.goto(origin + '/attack.html')
        page.evaluate('window.fired')
        page.click('#go')                                   # the user clicks the attacker's button
        arrived = lambda: {d for d in ARRIVING if any(f'doc={d}' in p for _, p, _ in seen)}   # noqa: E731
        for _ in range(100):
            if arrived() == set(ARRIVING):
                break
            page.wait_for_timeout(100)
        page.wait_for_timeout(1500)                         # the framed and opened pages' own requests
    finally:
        ctx.close()
    assert arrived() == set(ARRIVING), f"these never reached the server: {set(ARRIVING) - arrived()}"
    api_answers = [(m, p, s) for m, p, s in seen if p.startswith('/api/')]
    assert api_answers and all(s in (403, 405) for _, _, s in api_answers), api_answers
    # no endpoint ran for the attack (the other parametrization's control page, doc=ctrl*, may still
    # have a request in flight when this test starts: its node check, answered after its context closed)
    assert [c for c in calls if not c[1].startswith('doc=ctrl')] == []
    assert done(server) == before                           # nothing recorded, loaded, trained or drawn
    assert not [p for _, p, _ in seen for d in HIDDEN if f'doc={d}' in p]     # never parsed as requests
    # the control: the explorer's own page (its URL with the token) does what the attacks asked for
    # (bypass_csp: Playwright's wait_for_function evaluates a string, which the page's CSP forbids)
    doc = 'ctrl' + 'ab'[where.startswith('another site')]
    own = browser.new_context(bypass_csp=True)
    try:
        page = own.new_page()
        page.goto(server.link(f'doc={doc}'))
        page.wait_for_function('window.explorer && window.explorer.view')
    finally:
        own.close()
    assert ('view', f'doc={doc}') in calls and done(server) != before


def test_the_pages_token_survives_navigation_reload_and_a_copied_link_and_without_it_the_page_says_so(browser, watched):
    server, seen, calls = watched
    ctx = browser.new_context(bypass_csp=True, accept_downloads=True)
    try:
        page = ctx.new_page()
        page.goto(server.link('view=doc'))
        page.wait_for_function('window.explorer && window.explorer.view && window.explorer.view.kind === "document"')
        page.evaluate('explorer.setState({view: "token", token: 2})')       # pushState: a new URL
        page.wait_for_function('window.explorer.view.title.startsWith("token 2")')
        assert page.url.endswith('#token=' + server.token) and 'token=2' in page.url
        page.go_back()
        page.wait_for_function('window.explorer.view.kind === "document"')
        page.reload()
        page.wait_for_function('window.explorer && window.explorer.view && window.explorer.view.kind === "document"')
        with page.expect_download() as dl:                                  # an export link carries it too
            page.click('#exportbtn')
            page.click('#exportmenu a[data-fmt=svg]')
        assert dl.value.suggested_filename.endswith('.svg')
        copied = page.url
        other = browser.new_context(bypass_csp=True)                        # the link, pasted elsewhere
        try:
            p2 = other.new_page()
            p2.goto(copied)
            p2.wait_for_function('window.explorer && window.explorer.view && window.explorer.view.kind === "document"')
            bare = other.new_page()                                         # without the token
            bare.goto(copied.split('#')[0])
            bare.wait_for_selector('#msg:not([hidden])')
            assert 'has no explorer token' in bare.locator('#msg').inner_text()
            assert bare.evaluate('window.explorer.view') is None
        finally:
            other.close()
    finally:
        ctx.close()
    refused = [p for m, p, s in seen if s == 403]
    assert refused and all(p.startswith('/api/') for p in refused)
    assert any(name == 'export' for name, _ in calls)
