"""The notebook widget's Python side, without a front end: it answers the page's requests with the
HTTP server's own handlers (byte for byte), Python drives its state, and its output carries a static
copy (the view's SVG and its backprop frames, packed) small enough for a notebook cell."""

import base64
import gzip
import html
import json
import re
import subprocess
import sys
import tomllib
import zlib
from pathlib import Path

import pytest

from microgpt.errors import InputError
from tests import needs
from tests.explorer_helpers import get, running_server

anywidget = needs.module('anywidget', "pip install -e '.[test]'")

from graphviz_export import explorer_widget, load_ipython_extension  # noqa: E402
from graphviz_export.web.notebook import NotebookExtraMissing, static_explorer  # noqa: E402
from graphviz_export.web.notebook.widget import widget_class  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def widget():
    return explorer_widget(doc='emma', seed=42)


def ask(w, endpoint, query):
    meta, (body,) = w._request({'endpoint': endpoint, 'query': query}, [])
    return meta['status'], meta['headers'], body


@pytest.fixture(scope='module')
def server():
    with running_server(doc='emma', seed=42) as s:
        yield s


@pytest.mark.parametrize('path', [
    '/api/info?', '/api/node?id=4711', '/api/node?token=2&id=27708&sel=27708', '/api/search?q=layer0.attn_wq[3][5]',
    '/api/suggest?q=pos:', '/api/frames?token=2&level=vector', '/api/update?token=2&sort=delta&limit=5',
    '/api/export?token=3&fmt=svg', '/api/export?token=3&fmt=json', '/api/node?id=99999999', '/api/view?token=99',
    '/api/view?depth=1000', '/api/view?view=bogus', '/api/nope?'])
def test_the_widget_answers_with_the_servers_handlers_byte_for_byte(widget, server, path):
    endpoint, query = path[len('/api/'):].split('?')
    status, headers, body = ask(widget, endpoint, query)
    want_status, want_headers, want_body = get(server, path)
    assert (status, body) == (want_status, want_body)
    assert {k: want_headers[k] for k in headers} == headers          # Content-Disposition of an export
    if status >= 400:
        # one line; a view's 400 also names the nearest view that draws (explorer/fallback.py)
        keys = {'error', 'fallback', 'note'} if endpoint == 'view' else {'error'}
        assert 'error' in json.loads(body) and set(json.loads(body)) <= keys and '\n' not in json.loads(body)['error']



def test_work_in_the_background_yields_to_the_widgets_requests_as_to_the_servers(monkeypatch):
    """A big step's store or walk waits between its pieces (Work.quiet) while the page in the cell is
    answered, as it does for the HTTP server's requests: Work.serving is around Api.answer, whichever
    door asked."""
    import threading
    w = explorer_widget(doc='emma', seed=42)
    held_open, real, inside = threading.Event(), w._api.info, threading.Event()

    def slow(query):
        inside.set()
        held_open.wait(30)
        return real(query)
    monkeypatch.setattr(w._api, 'info', slow)
    asked = threading.Thread(target=ask, args=(w, 'info', ''), daemon=True)
    asked.start()
    assert inside.wait(30)
    quiet = threading.Event()
    threading.Thread(target=lambda: (w._api.work.quiet(), quiet.set()), daemon=True).start()
    assert not quiet.wait(0.5)                  # the background piece waits for the cell's request
    held_open.set()
    asked.join(30)
    assert quiet.wait(5)

def test_a_view_answers_as_the_server_does_and_its_first_view_is_drawn_before_the_page_asks():
    w = explorer_widget(doc='emma', seed=42, token=2)
    assert w._api.layouts == 1      # the view asked for, alone: not the default view first, then it
    status, headers, body = ask(w, 'view', 'token=2')
    assert status == 200 and headers == {'X-View-Cache': 'hit'}         # drawn when the widget was made
    v = json.loads(body)
    assert v['url'] == 'token=2' and v['title'] == "token 2 of 'emma': 'm' -> 'm'" and v['svg'].count('<svg') == 1
    status, headers, _ = ask(w, 'view', 'token=1')
    assert status == 200 and headers == {'X-View-Cache': 'miss'}
    # a malformed message from the page: one line, no traceback
    meta, (body,) = w._request({'endpoint': 3}, [])
    assert meta['status'] == 400 and json.loads(body) == {'error': 'a request names an endpoint and a query string'}


def test_displayed_it_carries_the_shown_views_first_answers_byte_for_byte_as_the_server_gives_them(server):
    w = explorer_widget(doc='emma', seed=42)
    w.show(token=2)                  # changed after it was made: the answers are for the view it shows now
    w._repr_mimebundle_()
    first = w._first
    assert set(first) == {'view', 'info'} and first['view']['query'] == first['info']['query'] == 'token=2'
    view = json.loads(first['view']['body'])
    assert view['url'] == 'token=2' and view['title'] == "token 2 of 'emma': 'm' -> 'm'" and view['cached'] is True
    assert (first['view']['status'], first['view']['headers']) == (200, {'X-View-Cache': 'hit'})
    # the page's own request for it answers the same (but for how long that request took); the info is
    # the HTTP server's, byte for byte
    asked = json.loads(ask(w, 'view', 'token=2')[2])
    assert asked['ms'].pop('total') >= 0 and view['ms'].pop('total') >= 0 and asked == view
    assert get(server, '/api/info?token=2')[2] == first['info']['body'].encode()
    assert first['info']['status'] == 200 and first['info']['type'] == 'application/json; charset=utf-8'


def test_made_by_is_replayed_when_first_asked_and_equals_the_servers_captured_while_recording(server, monkeypatch):
    from microgpt.recording.madeby import made_by
    # recorded here, not reused from the user cache: an entry the server stored holds its chains (stepcache)
    monkeypatch.setenv('MICROGPT_NO_STEP_CACHE', '1')
    w = explorer_widget(doc='emma', seed=42)
    trace = w.trace
    assert 'made_by' not in trace._cache               # the cell's first view did not record the chains
    served = server.api.recordings.get(('emma', None, 42))
    assert served._cache['made_by']                    # the HTTP server's: captured while recording
    rmsnorm = next(i for i in range(len(trace)) if trace.pow_exponent.get(i) == -0.5)
    exp = next(i for i in trace.nodes(pos=2, layer=0, head=1, role='attn_weights') if trace.op_name(i) == 'exp')
    for i in (rmsnorm, exp, 4711, trace.meta['loss_id']):
        body = json.loads(ask(w, 'node', f'id={i}')[2])
        assert body['source'] == json.loads(get(server, f'/api/node?id={i}')[2])['source'] == made_by(served, i)
        assert body['source']['chain'][-1] == [body['source']['function'], body['source']['line']]
    # one replay, the same chain per node (the server's may be an array: its step reused from the user cache)
    assert list(trace._cache['made_by'][0]) == list(served._cache['made_by'][0])
    assert [tuple(map(tuple, c)) for c in trace._cache['made_by'][1]] == \
        [tuple(map(tuple, c)) for c in served._cache['made_by'][1]]


def test_in_a_cell_made_by_is_replayed_once_the_cell_is_done_not_while_it_runs(monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell
    monkeypatch.setenv('MICROGPT_NO_STEP_CACHE', '1')      # recorded here, without chains (as above)
    shell = InteractiveShell.instance()
    try:
        shell.user_ns['explorer_widget'] = explorer_widget
        shell.run_cell("w = explorer_widget(doc='emma', seed=42)\ndisplay(w)\nduring = 'made_by' in w.trace._cache")
        shell.run_cell("after = 'made_by' in w.trace._cache")
        shell.run_cell("x = 1")
    finally:
        InteractiveShell.clear_instance()
    ns = shell.user_ns
    assert ns['during'] is False and ns['after'] is True       # the cell's output did not wait for it
    chains = ns['w'].trace._cache['made_by']
    assert chains and chains[0][ns['w'].trace.meta['loss_id']] >= 0
    assert shell.events.callbacks['post_run_cell'] == []      # once: forgotten after the cell


def test_python_drives_the_state_as_the_pages_url(widget):
    w = widget
    trace = w.trace
    assert w.show(token=3, level='vector').state == 'token=3&level=vector'
    assert w.show(layer=0, head=1).state == 'view=head&layer=0&head=1'           # select's precedence: a head view
    assert w.show(param='wte').state == 'view=param&param=wte'                   # a matrix: the parameter tab
    assert w.show(node='loss', depth=3, dir='ancestors').state == 'view=node&node=loss&depth=3&dir=ancestors'
    assert w.show(view='layer', layer=0, budget=200).state == 'view=layer&layer=0&budget=200'
    assert w.show(token=2, frame=0, ov='grad').state == 'token=2&budget=200&ov=grad&frame=0'   # budget, ov stay
    assert w.selected is None
    # a scalar the view draws is selected in place; another one opens its neighbourhood, selected
    w.show(token=2, level='vector', expand=['pos2/layer0/attn/head1/attn_weights'], frame=None, ov=None, budget=None)
    drawn = next(i for i in trace.nodes(pos=2, layer=0, head=1, role='attn_weights'))
    assert w.select(drawn).selected == drawn and w.state.endswith(f'&sel={drawn}')
    assert 'expand=pos2/layer0/attn/head1/attn_weights' in w.state
    q = trace.names().find('q[2]@pos2')[0]
    assert w.select('q[2]@pos2').selected == q
    assert w.state == f'view=node&node={q}&depth=2&level=auto&sel={q}'
    assert w.select('loss').selected == trace.meta['loss_id']
    assert w.trace is trace


@pytest.mark.parametrize('call, message', [
    (lambda w: w.show(token=99), 'position 99 is not in this trace; positions: 0..4'),
    (lambda w: w.show(depth=999), 'depth must be in 0..64, got 999'),
    (lambda w: w.show(level='huge'), "level 'huge' is not one of: auto, scalar, vector, block"),
    (lambda w: w.show(frame=-1), 'frame must be in 0..1000000000, got -1'),
    (lambda w: w.show(colour='red'), "show() has no option 'colour'"),
    # the page would open it smaller (fallback.py); asked from Python, it is an error naming why
    (lambda w: w.show(token=2, level='scalar', budget=5), 'more than the 600 the explorer lays out in time'),
    (lambda w: w.select(10**8), 'node 100000000 is not in this trace; node ids are 0..43894'),
    (lambda w: w.select('q[99]@pos2'), "node 'q[99]@pos2' is not a node id, 'loss' or a node's name"),
    (lambda w: w.select(True), "node True is not a node id"),
])
def test_bad_input_from_python_is_one_line_naming_it_and_the_state_stays(widget, call, message):
    before = widget.state
    with pytest.raises(InputError) as e:
        call(widget)
    assert message in str(e.value) and '\n' not in str(e.value)
    assert widget.state == before


def test_the_output_holds_the_widget_and_a_static_copy_under_50_kB_compressed():
    w = explorer_widget(doc='emma', seed=42)
    data, _ = w._repr_mimebundle_()
    assert set(data) == {'text/plain', 'application/vnd.jupyter.widget-view+json', 'image/svg+xml', 'text/html'}
    assert data['application/vnd.jupyter.widget-view+json']['model_id'] == w.model_id
    view = w._api.view('')
    svg = view['svg'][view['svg'].index('<svg'):]
    assert data['image/svg+xml'] == svg                                  # the explorer's own drawing
    page = data['text/html']
    assert page.index(svg) < page.index('application/x-microgpt-tour')   # the picture first: seen without scripts
    packed = re.search(r'<script type="application/x-microgpt-tour">([^<]+)</script>', page)[1]
    before, after = json.loads(zlib.decompress(base64.b64decode(packed), -15))
    tour = before + svg + after                                           # what snapshot.js rebuilds
    frames = json.loads(re.search(r'<script type="application/json" id="tour-data">(.+?)</script>', tour, re.S)[1]
                        .replace('<\\/', '</'))['stops'][0]['frames']
    assert frames == json.loads(json.dumps(w._api.frames('')))           # the explorer's own frames, all of them
    assert 'MicrogptStepper' in tour and 'window.tour' in tour           # the tours' player and page
    saved = json.dumps({'output_type': 'display_data', 'data': data, 'metadata': {}}).encode()
    assert len(gzip.compress(saved, 9)) <= 50_000


def test_a_comparison_has_its_picture_and_no_stepper(tmp_path):
    from microgpt.checkpoint import save_checkpoint
    from microgpt.train import fresh_model
    params, config, tok = fresh_model(7)
    save_checkpoint(tmp_path / 'other.json', params, config, tok)
    w = explorer_widget(doc='emma', seed=42, state=f"cmp=ckpt:{tmp_path / 'other.json'}")
    data, _ = w._repr_mimebundle_()
    assert 'Δ = other.json − fresh seed 42' in html.unescape(data['image/svg+xml'])    # the differences, drawn
    assert data['image/svg+xml'] in data['text/html'] and 'x-microgpt-tour' not in data['text/html']


def test_without_the_extra_the_widget_says_in_one_line_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, 'anywidget', None)                   # import anywidget -> ImportError
    widget_class.cache_clear()                                             # as if never made in this process
    with pytest.raises(NotebookExtraMissing) as e:
        explorer_widget(doc='emma')
    assert "pip install 'microgpt-graph[notebook]'" in str(e.value)
    assert e.value._render_traceback_() == [f"NotebookExtraMissing: {e.value}"]   # IPython shows one line
    # the static copy needs nothing more
    data = static_explorer(doc='emma')._repr_mimebundle_()
    assert data['image/svg+xml'].startswith('<svg') and 'x-microgpt-tour' in data['text/html']
    monkeypatch.undo()
    widget_class.cache_clear()


def test_the_core_install_does_not_grow_and_the_test_extra_brings_the_notebook_one():
    project = tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']
    assert not any('anywidget' in d or 'ipywidgets' in d for d in project['dependencies'])
    assert any(d.startswith('anywidget') for d in project['optional-dependencies']['notebook'])
    assert 'microgpt-graph[notebook]' in project['optional-dependencies']['test']
    out = subprocess.run([sys.executable, '-c', 'import sys, graphviz_export; '
                          'print(sorted(m for m in ("anywidget", "ipywidgets", "IPython") if m in sys.modules))'],
                         capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == '[]'                                     # importing the exporter loads none


def test_load_ext_shows_a_trace_as_the_explorer(widget):
    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    try:
        load_ipython_extension(shell)
        data, _ = shell.display_formatter.format(widget.trace)
    finally:
        InteractiveShell.clear_instance()
    assert 'application/vnd.jupyter.widget-view+json' in data and data['text/plain'] == "<ExplorerWidget '(the first view)'>"
    assert data['image/svg+xml'].startswith('<svg') and 'x-microgpt-tour' in data['text/html']
