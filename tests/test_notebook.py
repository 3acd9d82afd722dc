"""examples/explore.ipynb runs top to bottom in a real Jupyter kernel, and every
View in it displays as an SVG picture with a short text repr: with the system
`dot` and without it (then the WebAssembly Graphviz draws it)."""

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip('nbformat')
nbclient = pytest.importorskip('nbclient')

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / 'examples' / 'explore.ipynb'


def test_the_committed_notebook_has_no_outputs():
    nb = json.loads(NOTEBOOK.read_text())
    code = [c for c in nb['cells'] if c['cell_type'] == 'code']
    assert code and all(c['outputs'] == [] and c['execution_count'] is None for c in code)


def execute(tmp_path, path_env):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    env = dict(os.environ, PATH=path_env, PYTHONPATH=str(REPO), MICROGPT_CACHE=str(tmp_path / 'cache'))
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name='python3',
                                     resources={'metadata': {'path': str(REPO)}})
    client.execute(env=env)
    return nb


def displays(nb):
    """(text/plain, svg) of every rich display, in order."""
    out = []
    for cell in nb.cells:
        for o in cell.get('outputs', []):
            if o['output_type'] in ('execute_result', 'display_data') and 'image/svg+xml' in o['data']:
                out.append((o['data']['text/plain'], o['data']['image/svg+xml']))
    return out


def stdout(nb):
    return ''.join(o.get('text', '') for c in nb.cells for o in c.get('outputs', []) if o['output_type'] == 'stream')


@pytest.mark.parametrize('graphviz', [
    'without',
    pytest.param('with', marks=pytest.mark.skipif(shutil.which('dot') is None, reason='no system `dot`')),
])
def test_the_notebook_runs_and_views_display_as_svg(tmp_path, graphviz):
    if graphviz == 'without':
        bare = tmp_path / 'bin'  # a PATH with python's folder only: no `dot`
        bare.mkdir()
        path_env = f"{bare}{os.pathsep}{Path(sys.executable).parent}"
    else:
        path_env = os.environ['PATH']
    nb = execute(tmp_path, path_env)
    errors = [o for c in nb.cells for o in c.get('outputs', []) if o['output_type'] == 'error']
    assert errors == []
    text = stdout(nb)
    expected = "['wasm']" if graphviz == 'without' else "['native', 'wasm']"
    assert f"43895 nodes, loss 3.225185; renderers here: {expected}" in text
    total, grad = text.split('sum of contributions ')[1].split('\n')[0].split(' = grad ')
    assert float(total) == pytest.approx(float(grad), rel=1e-12, abs=1e-15)
    shown = displays(nb)
    assert len(shown) == 3  # the token view, the parameter cell, the loss's neighbourhood
    for plain, svg in shown:
        assert plain.startswith('<View ') and len(plain) < 200
        assert svg.lstrip().startswith(('<?xml', '<!--', '<svg')) and '</svg>' in svg
    assert "<View \"token 2 of 'emma'" in shown[0][0] and 'level block' in shown[0][0]
    assert 'layer0.attn_wq[3][5]' in shown[1][1]
    html = [o['data']['text/html'] for c in nb.cells for o in c.get('outputs', [])
            if o['output_type'] == 'execute_result' and 'text/html' in o['data']]
    drawer = 'WebAssembly Graphviz' if graphviz == 'without' else 'native Graphviz (dot)'
    assert len(html) == 3 and all(f'drawn by {drawer}' in h for h in html)
