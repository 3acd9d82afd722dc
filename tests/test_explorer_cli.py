"""`microgpt-graph explore`: prints the URL, serves, and Ctrl-C stops it cleanly (no traceback)."""

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from tests.explorer_helpers import default_sigint, stopped_in_the_end

ROOT = Path(__file__).resolve().parent.parent


def _start(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED='1')
    return subprocess.Popen([sys.executable, str(ROOT / 'cli.py'), 'explore', '--no-browser', *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True, preexec_fn=default_sigint)


def _printed(line):
    """(origin, token) of the URL `explore` printed: http://127.0.0.1:PORT/#token=..."""
    assert line.startswith('microgpt-graph explorer: http://127.0.0.1:'), line
    url = urlsplit(line.split()[2])
    assert url.path == '/' and url.fragment.startswith('token=') and len(url.fragment) > 30, line
    return f'{url.scheme}://{url.netloc}', url.fragment[len('token='):]


def _api(origin, token, path):
    req = urllib.request.Request(origin + path, headers={'X-Explorer-Token': token})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, json.loads(r.read())


def test_explore_serves_and_stops_on_ctrl_c():
    with stopped_in_the_end(_start('--doc', 'anna')) as p:
        origin, token = _printed(p.stdout.readline())
        status, v = _api(origin, token, '/api/view')
        assert status == 200 and v['title'].startswith("token 4 of 'anna'")
    assert p.returncode == 0
    assert 'Traceback' not in p.err and p.out.strip() == 'stopped'


def test_explore_bad_doc_is_a_one_line_error():
    p = _start('--doc', 'Anna!')
    _out, err = p.communicate(timeout=60)
    assert p.returncode == 2
    assert err.strip().splitlines() == [err.strip()] and "character 'A' at index 0" in err


def test_explore_on_another_host_warns():
    with stopped_in_the_end(_start('--host', '0.0.0.0')) as p:
        _printed(p.stdout.readline())
    assert 'warning: serving on 0.0.0.0' in p.err and p.returncode == 0


def test_explore_on_an_empty_host_is_refused_instead_of_binding_every_interface():
    p = _start('--host', '')
    _out, err = p.communicate(timeout=60)
    assert p.returncode == 2 and err.strip().splitlines() == [err.strip()]
    assert "host '' would bind every network interface" in err


def test_explore_a_script_records_it_and_serves_its_function_views():
    script = ROOT / 'tests' / 'scripts' / 'micrograd_style.py'
    with stopped_in_the_end(_start(str(script), '--timeout', '60', '--params', 'model.parameters')) as p:
        origin, token = _printed(p.stdout.readline())
        _, info = _api(origin, token, '/api/info')
        assert info['script']['file'] == 'micrograd_style.py' and 'Neuron.__call__' in info['script']['functions']
    assert p.returncode == 0 and 'recorded' in p.err and 'micrograd convention' in p.err
    assert 'parameters: the 41 values of --params model.parameters\n' in p.err      # MLP(3, [4, 4, 1])


def test_explore_help_says_it_runs_the_script_and_bad_scripts_are_one_line_errors(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, str(ROOT / 'cli.py'), 'explore', '--help'], capture_output=True, text=True,
                         env=env).stdout
    assert 'RUNS SCRIPT' in out and '--timeout' in out and '--step' in out and '--tag' in out
    notpy = tmp_path / 'trace.json'
    notpy.write_text('{}')
    p = _start(str(notpy))
    _out, err = p.communicate(timeout=60)
    assert p.returncode == 2 and 'is not a Python file (.py)' in err and len(err.strip().splitlines()) == 1
    p = _start(str(ROOT / 'tests' / 'scripts' / 'no_backward.py'), '--timeout', '30')
    _out, err = p.communicate(timeout=60)
    assert p.returncode == 1 and 'backward' in err
