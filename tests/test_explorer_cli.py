"""`microgpt-graph explore`: prints the URL, serves, and Ctrl-C stops it cleanly (no traceback)."""

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _start(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED='1')
    return subprocess.Popen([sys.executable, str(ROOT / 'cli.py'), 'explore', '--no-browser', *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_explore_serves_and_stops_on_ctrl_c():
    p = _start('--doc', 'anna')
    try:
        line = p.stdout.readline()
        assert line.startswith('microgpt-graph explorer: http://127.0.0.1:'), line
        url = line.split()[2]
        with urllib.request.urlopen(url + 'api/view', timeout=30) as r:
            assert r.status == 200 and json.loads(r.read())['title'].startswith("token 4 of 'anna'")
    finally:
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
    assert p.returncode == 0
    assert 'Traceback' not in err and out.strip() == 'stopped'


def test_explore_bad_doc_is_a_one_line_error():
    p = _start('--doc', 'Anna!')
    _out, err = p.communicate(timeout=60)
    assert p.returncode == 2
    assert err.strip().splitlines() == [err.strip()] and "character 'A' at index 0" in err


def test_explore_on_another_host_warns():
    p = _start('--host', '0.0.0.0')
    try:
        line = p.stdout.readline()
        assert line.startswith('microgpt-graph explorer: http://127.0.0.1:')
    finally:
        p.send_signal(signal.SIGINT)
        _out, err = p.communicate(timeout=20)
    assert 'warning: serving on 0.0.0.0' in err and p.returncode == 0


def test_explore_a_script_records_it_and_serves_its_function_views():
    script = ROOT / 'tests' / 'scripts' / 'micrograd_style.py'
    p = _start(str(script), '--timeout', '60', '--params', 'model.parameters')
    try:
        line = p.stdout.readline()
        assert line.startswith('microgpt-graph explorer: http://127.0.0.1:'), line
        url = line.split()[2]
        with urllib.request.urlopen(url + 'api/info', timeout=30) as r:
            info = json.loads(r.read())
        assert info['script']['file'] == 'micrograd_style.py' and 'Neuron.__call__' in info['script']['functions']
    finally:
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
    assert p.returncode == 0 and 'recorded' in err and 'micrograd convention' in err
    assert 'parameters: the 41 values of --params model.parameters\n' in err      # MLP(3, [4, 4, 1])


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
