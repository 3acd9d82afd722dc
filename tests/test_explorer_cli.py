"""`microgpt-graph explore`: prints the URL, serves, and Ctrl-C stops it cleanly (no traceback)."""

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

import cli
from tests.explorer_helpers import default_signals, opened, stopped_in_the_end

ROOT = Path(__file__).resolve().parent.parent


def _start(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED='1')
    return subprocess.Popen([sys.executable, str(ROOT / 'cli.py'), 'explore', '--no-browser', *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True, preexec_fn=default_signals)


def _printed(line, wait=False):
    """(origin, token) of the URL `explore` printed: http://127.0.0.1:PORT/#token=...; `wait`: once
    the step it records or loads in the background is open (explorer_helpers.opened)."""
    assert line.startswith('microgpt-graph explorer: http://127.0.0.1:'), line
    url = urlsplit(line.split()[2])
    assert url.path == '/' and url.fragment.startswith('token=') and len(url.fragment) > 30, line
    if wait:
        opened(line.split()[2])
    return f'{url.scheme}://{url.netloc}', url.fragment[len('token='):]


def _api(origin, token, path):
    req = urllib.request.Request(origin + path, headers={'X-Explorer-Token': token})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, json.loads(r.read())


def test_explore_serves_and_stops_on_ctrl_c():
    """It serves at once, recording the step (then drawing its first view) in the background:
    meanwhile a view, or a recording of that document asked by hand, is a one-line 503 naming it."""
    with stopped_in_the_end(_start('--doc', 'anna')) as p:
        line = p.stdout.readline()
        origin, token = _printed(line)
        for path in ('/api/view', '/api/record?doc=anna'):
            try:
                _api(origin, token, path)
                pytest.fail(f'{path} answered before the step was in')
            except urllib.error.HTTPError as e:
                body = json.loads(e.read())
                assert e.code == 503 and body['error'].startswith("recording 'anna': "), body
        opened(line.split()[2])
        status, v = _api(origin, token, '/api/view')
        assert status == 200 and v['title'].startswith("token 4 of 'anna'")
    assert p.returncode == 0
    assert 'Traceback' not in p.err and p.out.strip() == 'stopped'


def test_explore_stops_on_ctrl_c_even_when_pytest_started_with_it_ignored():
    """`nohup pytest ... &` starts pytest with SIGINT and SIGHUP ignored, and a child inherits an
    ignored signal: the test above then failed and its server kept serving. Run so, it passes
    (the server heard the Ctrl-C, said 'stopped' and exited 0)."""
    def ignored():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    r = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
                        'tests/test_explorer_cli.py::test_explore_serves_and_stops_on_ctrl_c'],
                       cwd=ROOT, capture_output=True, text=True, timeout=300, preexec_fn=ignored)
    assert r.returncode == 0 and '1 passed' in r.stdout, r.stdout[-2000:]


def _ended(*args):
    """The command run to its end (within 60 s), stopped in a `finally` whatever happens: .returncode, .err."""
    with stopped_in_the_end(_start(*args)) as p:
        p.wait(60)
    return p


def test_explore_bad_doc_is_a_one_line_error():
    p = _ended('--doc', 'Anna!')
    err = p.err
    assert p.returncode == 2 and p.out == ''     # refused before it serves (Recordings.check), no URL
    assert err.strip().splitlines() == [err.strip()] and "character 'A' at index 0" in err


def test_explore_on_another_host_warns():
    """Any host but 127.0.0.1/localhost warns; 127.0.0.2 is one that is still this machine only
    (a test never serves on every interface)."""
    try:
        with socket.socket() as s:
            s.bind(('127.0.0.2', 0))
    except OSError:
        pytest.skip('127.0.0.2 is not a loopback address here (macOS has only 127.0.0.1)')
    with stopped_in_the_end(_start('--host', '127.0.0.2')) as p:
        assert p.stdout.readline().startswith('microgpt-graph explorer: http://127.0.0.2:')
    assert 'warning: serving on 127.0.0.2' in p.err and p.returncode == 0


def test_explore_on_an_empty_host_is_refused_instead_of_binding_every_interface():
    p = _ended('--host', '')
    err = p.err
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
    p = _ended(str(notpy))
    assert p.returncode == 2 and 'is not a Python file (.py)' in p.err and len(p.err.strip().splitlines()) == 1
    p = _ended(str(ROOT / 'tests' / 'scripts' / 'no_backward.py'), '--timeout', '30')
    assert p.returncode == 1 and 'backward' in p.err


def test_explore_refuses_a_data_file_that_is_not_there_before_serving(monkeypatch, tmp_path):
    """A --data that does not exist is refused at start (exit 2, one line), not when the page
    first asks to compare after N training steps."""
    served = []
    monkeypatch.setattr('graphviz_export.web.explorer.serve', lambda **kw: served.append(kw))
    missing = tmp_path / 'names.txt'
    r = CliRunner().invoke(cli.main, ['explore', '--no-browser', '--data', str(missing)])
    assert (r.exit_code, served) == (2, [])
    assert r.output.strip() == f"Error: Invalid value for '--data': data file not found: {missing}"
    missing.write_text('emma\nava\n')
    assert CliRunner().invoke(cli.main, ['explore', '--no-browser', '--data', str(missing)]).exit_code == 0
    assert served[0]['data'] == str(missing)


def test_every_long_command_takes_quiet():
    """-q on every command that can take long (scripts pass it to all of them alike)."""
    for name in ('train', 'render', 'export', 'gradcheck', 'tour', 'diff', 'record', 'explore'):
        assert '-q' in [o for p in cli.main.commands[name].params for o in p.opts], name
