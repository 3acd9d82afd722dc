"""Commands import only what they use (issue 25): `import microgpt_graph.cli` and a whole
`microgpt-graph render` never load the explorer, the tour, the notebook or the download stack.
Each check runs in a fresh interpreter and reads its sys.modules, so what an earlier test
imported cannot hide a regression."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What a render must not load: the applications and the network stack behind `train`'s download.
ABSENT = ('graphviz_export.web', 'graphviz_export.web.explorer', 'graphviz_export.web.tour',
          'graphviz_export.web.notebook', 'microgpt.download', 'urllib.request', 'http.server',
          'http.client', 'anywidget', 'microgpt.checks.diagnose')


def loaded_after(code):
    """The ABSENT names present in sys.modules after `code` ran in a new interpreter."""
    probe = f"{code}\nimport sys, json\nprint(json.dumps([m for m in {ABSENT!r} if m in sys.modules]))"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, '-c', probe], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_importing_the_command_line_loads_no_application():
    assert loaded_after('import microgpt_graph.cli') == []


def test_a_whole_render_loads_no_application(tmp_path):
    out = tmp_path / 'v.svg'
    code = ("from microgpt_graph.cli import main\n"
            f"main(['render', '--token', '2', '--no-cache', '-q', '-o', {str(out)!r}], standalone_mode=False)")
    assert loaded_after(code) == []
    assert out.read_bytes().startswith(b'<?xml') or b'<svg' in out.read_bytes()[:400]


def test_the_probe_sees_an_application_when_one_is_loaded():
    """The check is not vacuous: a command that does load the explorer is seen."""
    assert loaded_after('import microgpt_graph.cli\nimport graphviz_export.web.explorer') == [
        'graphviz_export.web', 'graphviz_export.web.explorer', 'http.server', 'http.client']


def test_the_notebook_names_still_load_on_first_use():
    """graphviz_export's notebook names are lazy (PEP 562), not gone: `%load_ext graphviz_export`
    and `from graphviz_export import explorer_widget` still find them."""
    code = ("import graphviz_export, sys\n"
            "assert 'graphviz_export.web.notebook' not in sys.modules\n"
            "from graphviz_export import explorer_widget, load_ipython_extension\n"
            "assert explorer_widget.__module__.startswith('graphviz_export.web.notebook')\n"
            "assert callable(graphviz_export.load_ipython_extension)")
    assert 'graphviz_export.web.notebook' in loaded_after(code)
