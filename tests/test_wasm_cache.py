"""The compiled WebAssembly Graphviz is kept on disk between processes, a cache
folder that cannot be written changes nothing else, and Ctrl-C stops a layout."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.explorer_helpers import default_signals

REPO = Path(__file__).resolve().parents[1]
PROBE = '''
import sys
from graphviz_export.render import render, wasm
svg = render('digraph { a -> b }', 'svg', renderer='wasm')
assert b'<svg' in svg
print(wasm.module_origin)
'''


def run_probe(cache):
    env = dict(os.environ, MICROGPT_CACHE=str(cache), PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, '-c', PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ''
    return r.stdout.strip()


def test_a_second_process_loads_the_compiled_module_from_the_cache(tmp_path):
    cache = tmp_path / 'cache'
    assert run_probe(cache) == 'compiled'
    files = list((cache / 'wasm').iterdir())
    assert len(files) == 1 and files[0].name.startswith('graphviz-') and files[0].name.endswith('-epoch.cwasm')
    assert files[0].stat().st_size > 1_000_000  # machine code for all of Graphviz
    assert run_probe(cache) == 'cache'


def test_a_damaged_cache_file_is_compiled_again_and_replaced(tmp_path):
    cache = tmp_path / 'cache'
    run_probe(cache)
    (entry,) = (cache / 'wasm').iterdir()
    entry.write_bytes(b'not a compiled module')
    assert run_probe(cache) == 'compiled'
    assert entry.stat().st_size > 1_000_000
    assert run_probe(cache) == 'cache'


def test_an_unwritable_cache_folder_falls_back_to_compiling(tmp_path):
    blocker = tmp_path / 'a-file'
    blocker.write_text('the cache folder cannot be made here')
    assert run_probe(blocker) == 'compiled'
    assert run_probe(blocker) == 'compiled'
    assert blocker.read_text() == 'the cache folder cannot be made here'


@pytest.mark.skipif(sys.platform == 'win32', reason='SIGINT to a child process is POSIX')
def test_ctrl_c_stops_a_webassembly_layout_within_a_second(tmp_path):
    script = '''
import sys, time
from graphviz_export.render import render
render('digraph { a -> b }', 'svg', renderer='wasm')          # compile or load first
slow = 'digraph { ' + ' '.join(f'n{i} -> n{i * 7 % 300}; n{i} -> n{(i * 13 + 1) % 300};' for i in range(300)) + ' }'
print('start', flush=True)
try:
    render(slow, 'svg', renderer='wasm', timeout=120)
    print('finished')
except KeyboardInterrupt:
    print('interrupted', flush=True)
    sys.exit(130)
'''
    env = dict(os.environ, MICROGPT_CACHE=str(tmp_path / 'cache'), PYTHONPATH=str(REPO))
    p = subprocess.Popen([sys.executable, '-c', script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, preexec_fn=default_signals)
    try:
        assert p.stdout.readline().strip() == 'start'
        time.sleep(1.0)  # well inside the layout (it needs ~15 s or more)
        p.send_signal(signal.SIGINT)
        sent = time.monotonic()
        line = p.stdout.readline().strip()  # printed by the handler: the layout has stopped
        took = time.monotonic() - sent
        out, err = p.communicate(timeout=30)
    finally:
        p.kill()
    assert line == 'interrupted' and out == '', err
    assert p.returncode == 130, err
    assert took < 1.0, f'took {took:.2f} s to stop'
