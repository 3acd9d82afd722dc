"""examples/explore.ipynb, the learner's notebook, runs top to bottom in a real Jupyter kernel
(nbclient): the explorer widget is created in its cell with the expected state (in the notebook's
saved widget state, as a front end would load it), the selection is read back and computed with,
and the notebook's outputs carry a static copy that an exported HTML file plays offline."""

import html
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from microgpt.recording.step import record_step
from microgpt.train import NUM_STEPS, start_run, train
from tests import needs
from tests.conftest import names_path, needs_names

nbformat = needs.module('nbformat', "pip install -e '.[test]'")
nbclient = needs.module('nbclient', "pip install -e '.[test]'")
needs.module('anywidget', "pip install -e '.[test]'")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / 'examples' / 'explore.ipynb'
WIDGET_VIEW = 'application/vnd.jupyter.widget-view+json'
WIDGET_STATE = 'application/vnd.jupyter.widget-state+json'
CHROMIUM = '/usr/bin/chromium'


def test_the_committed_notebook_has_no_outputs():
    nb = json.loads(NOTEBOOK.read_text())
    code = [c for c in nb['cells'] if c['cell_type'] == 'code']
    assert code and all(c['outputs'] == [] and c['execution_count'] is None for c in code)
    assert 'widgets' not in nb['metadata']
    # nbformat 4.5 cells carry unique ids: without one nbformat warns (a hard error in later versions)
    ids = [c.get('id') for c in nb['cells']]
    assert all(ids) and len(set(ids)) == len(ids), ids


def execute(tmp_path, path_env):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    env = dict(os.environ, PATH=path_env, PYTHONPATH=str(REPO), MICROGPT_CACHE=str(tmp_path / 'cache'),
               MICROGPT_DATA=str(names_path()))      # the played steps' names
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name='python3',
                                     resources={'metadata': {'path': str(REPO)}})
    client.execute(env=env)
    return nb


def outputs(nb, kind=None):
    return [o for c in nb.cells for o in c.get('outputs', []) if kind is None or o['output_type'] == kind]


def stdout(nb):
    return ''.join(o.get('text', '') for o in outputs(nb, 'stream'))


@pytest.fixture(scope='module', params=[
    'without',
    pytest.param('with', marks=needs.unless(shutil.which('dot'), 'no system `dot`')),
])
def executed(request, tmp_path_factory):
    """The notebook run in a kernel, with the system `dot` and without it (the WebAssembly Graphviz draws)."""
    tmp = tmp_path_factory.mktemp(f'nb-{request.param}')
    if request.param == 'without':
        bare = tmp / 'bin'  # a PATH with python's folder only: no `dot`
        bare.mkdir()
        path_env = f"{bare}{os.pathsep}{Path(sys.executable).parent}"
    else:
        path_env = os.environ['PATH']
    return request.param, execute(tmp, path_env)


@needs_names
def test_the_notebook_runs_and_creates_the_explorer_with_the_expected_state(executed):
    graphviz, nb = executed
    assert outputs(nb, 'error') == []
    text = stdout(nb)
    assert "43895 nodes, loss 3.225185" in text
    # the selection read back (selected from Python: no one clicks here) and computed with
    lines = text.splitlines()
    assert lines[1].startswith('q[2]@pos2: data ')
    uses, sums = lines[2].split(' uses, sum of contributions ')
    total, grad = sums.split(' = grad ')
    assert int(uses) == 3 and float(total) == pytest.approx(float(grad), rel=1e-12, abs=1e-15)
    widgets = [o for o in outputs(nb) if WIDGET_VIEW in o.get('data', {})]
    assert len(widgets) == 2
    data = widgets[0]['data']
    assert data['text/plain'] == "<ExplorerWidget 'token=2'>"            # the first view asked for
    # the widget's model, as the notebook saved it for a front end: created with the page and the state
    # that the cells left it in (the selection, then w.show(token=2, level='vector', frame=0))
    saved = nb.metadata['widgets'][WIDGET_STATE]['state'][data[WIDGET_VIEW]['model_id']]
    assert saved['model_name'] == 'AnyModel'
    state = saved['state']
    assert state['_anywidget_id'] == 'graphviz_export.web.notebook.widget.ExplorerWidget'
    assert state['state'] == 'token=2&level=vector&frame=0'
    assert state['height'] == 700 and '<script>' in state['_page'] and 'MicrogptTransport' in state['_page']
    states = [o['data']['text/plain'] for o in outputs(nb, 'execute_result') if o['data']['text/plain'].startswith("'")]
    assert states[0].startswith("'view=node&node=") and 'sel=' in states[0]     # q[2]@pos2: in its neighbourhood
    assert states[1] == "'token=2&level=vector&frame=0'"
    # the static copy beside the widget: the view's picture, as this kernel's renderer drew it
    svg = data['image/svg+xml']
    assert svg.startswith('<svg') and "token 2 of 'emma'" in html.unescape(svg)
    assert svg in data['text/html'] and 'application/x-microgpt-tour' in data['text/html']
    # a few training steps played through the widget's Python side: 'emma' after 5 steps of the
    # reference run is what the port's own loop and record_step give (made here, not by the widget)
    run = start_run(names_path().read_text().split())
    zero = record_step(run.params, run.config, run.tokenizer, 'emma').loss
    train(run, 5, schedule=NUM_STEPS)
    five = record_step(run.params, run.config, run.tokenizer, 'emma').loss
    assert f"loss of 'emma': {zero:.6f} at step 0, {five:.6f} after 5 steps" in lines
    played = widgets[1]['data']
    assert played['text/plain'] == "<ExplorerWidget 'token=2&train=5'>"
    assert nb.metadata['widgets'][WIDGET_STATE]['state'][played[WIDGET_VIEW]['model_id']]['state']['state'] == \
        'token=2&train=5'
    assert "token 2 of 'emma'" in html.unescape(played['image/svg+xml'])
    # the still picture of the last cell
    views = [o['data'] for o in outputs(nb, 'execute_result') if o['data']['text/plain'].startswith('<View ')]
    assert len(views) == 1 and 'layer0.attn_wq[3][5]' in views[0]['image/svg+xml']
    drawer = 'WebAssembly Graphviz' if graphviz == 'without' else 'native Graphviz (dot)'
    assert f'drawn by {drawer}' in views[0]['text/html']


@needs_names
@needs.unless(os.path.exists(CHROMIUM), 'needs chromium')
def test_the_exported_notebook_plays_its_backprop_frames_offline(executed, tmp_path, browser):
    """Saved as JupyterLab saves it (no widget state) and exported with nbconvert, the explorer's output
    is its static copy: opened from disk with no network, its stepper steps through the frames."""
    from nbconvert import HTMLExporter
    _, nb = executed
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    nb.metadata.pop('widgets', None)
    body, _ = HTMLExporter().from_notebook_node(nb)
    page_file = tmp_path / 'explore.html'
    page_file.write_text(body, encoding='utf-8')
    pg = browser.new_page(viewport={'width': 1200, 'height': 900})
    requests, errors = [], []
    pg.on('request', lambda r: requests.append(r.url))
    pg.on('pageerror', lambda e: errors.append(str(e)))
    pg.route(lambda url: not url.startswith('file:'), lambda route: route.abort())   # offline
    pg.goto(page_file.as_uri())
    still = pg.locator('.microgpt-explorer-static .mg-still')
    assert still.count() == 2                   # the explorer's, and the played one's
    still = still.first
    frame = pg.wait_for_selector('.microgpt-explorer-static iframe').content_frame()
    frame.wait_for_function('window.tour && window.tour.player()')
    assert still.is_hidden()                                          # the stepper took its place
    loaded = list(requests)
    count = frame.evaluate('tour.player().count')
    assert count > 10 and frame.evaluate('tour.player().position()') == 0

    def lit():
        return frame.evaluate('[tour.player().position(), document.querySelectorAll("g.node.mg-done").length,'
                              ' [...document.querySelectorAll("g.node.mg-current")].map(g => g.id)]')
    before = lit()
    frame.locator('#next').click()
    first = lit()
    frame.locator('header h1').click()      # the frame takes the keys (a click on a node would jump to its frame)
    pg.keyboard.press('ArrowRight')
    second = lit()
    assert (before[0], first[0], second[0]) == (0, 1, 2)
    assert before[2] == [] and first[2] and second[2] and first[2] != second[2]   # another node lit
    assert first[1] <= second[1]
    # no request but the page itself and the nbconvert template's own CDN scripts (aborted);
    # none at all from the stepper
    assert [u for u in loaded if u != page_file.as_uri() and 'cdnjs.cloudflare.com' not in u] == []
    assert requests == loaded and errors == []
