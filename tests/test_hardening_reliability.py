"""Issue 21's smaller failures, each as the user met it: the command run as a process (one line,
its exit status, no traceback) or the explorer over real HTTP."""

import html
import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from graphviz_export.web.explorer import make_server
from microgpt.errors import InputError
from microgpt.recording import Trace, record_step
from microgpt.train import fresh_model
from tests.explorer_helpers import default_signals, get_json, read_to_the_end, running_server, stopped_in_the_end
from tests.test_explorer_cli import _printed, _start

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, str(ROOT / 'cli.py')]


def run(*args, timeout=300, env=None, cwd=None):
    """(exit status, stdout, stderr, seconds) of one command."""
    t0 = time.monotonic()
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), **(env or {})))
    return done.returncode, done.stdout, done.stderr, time.monotonic() - t0


REUSED = 'reused the recorded step from '     # the note of a step read from the user cache (stepcache)


def one_line(err):
    """The one error line on stderr (beside it, at most the note that the step was reused)."""
    lines = [t for t in err.strip().splitlines() if not t.startswith(REUSED)]
    assert len(lines) == 1 and lines[0].startswith('Error: ') and 'Traceback' not in err, err
    return lines[0]


@pytest.fixture(scope='module')
def ab():
    params, config, tok = fresh_model(42)
    return record_step(params, config, tok, 'ab')


# -- tour node="loss", depth=9: the step-through met an edge fold does not draw ----------------------
def test_a_tour_of_the_loss_at_depth_9_is_built(tmp_path):
    tour = tmp_path / 'deep.toml'
    tour.write_text('title = "deep"\ndoc = "ab"\n[[stop]]\ncaption = "the loss, 9 hops out"\nnode = "loss"\ndepth = 9\n')
    code, out, err, _ = run('tour', str(tour), '-o', str(tmp_path / 'deep.html'))
    assert code == 0 and 'Traceback' not in err, err
    assert out.startswith(f"wrote {tmp_path / 'deep.html'}: 1 stops")


def test_the_explorers_step_through_of_that_view_lights_only_drawn_edges(ab):
    with running_server(trace=ab) as s:
        status, view = get_json(s, '/api/view?view=node&node=loss&depth=9')
        assert status == 200
        status, fr = get_json(s, '/api/frames?view=node&node=loss&depth=9')
    assert status == 200, fr
    lit = {e['svg'] for f in fr['frames'] for e in f['edges']}
    drawn = set(re.findall(r'<g id="([^"]*)" class="edge"', html.unescape(view['svg'])))
    assert lit and lit <= drawn       # every edge a frame lights is drawn (Graphviz writes '-' as &#45;)


# -- explore: its first view failing is a one-line error, never a traceback -----------------------------
def test_explore_with_a_renderer_that_is_not_installed_is_one_line():
    code, _, err, _ = run('explore', '--no-browser', '--renderer', 'native', env={'PATH': '/nonexistent'}, timeout=60)
    assert code == 2 and "renderer 'native' needs the Graphviz `dot` program" in one_line(err)


def test_explore_a_trace_whose_doc_is_a_million_characters_long(ab, tmp_path):
    d = json.loads(ab.to_json())
    d['meta']['doc'] = 'x' * 1_000_000
    path = tmp_path / 'long.json'
    path.write_text(json.dumps(d))
    trace = Trace.load(path)
    with running_server(trace=trace) as s:        # the first view is drawn in make_server
        status, view = get_json(s, '/api/view?view=doc')
        status_info, info = get_json(s, '/api/info')
    assert status == status_info == 200 and len(info['doc']) == 1_000_000
    assert "of 'xxxxxxxxxx" in view['title'] and len(view['title']) < 200     # the title names it, shortened
    code, out, err, _ = run('render', '--trace', str(path), '-o', str(tmp_path / 'long.svg'))
    assert code == 0 and len(out) < 400 and 'Traceback' not in err, err[-500:]


def test_a_failed_first_view_is_an_error_of_the_library_not_a_500(ab, monkeypatch):
    import graphviz_export.web.explorer.drawing as drawing  # where the explorer lays a view out
    from graphviz_export.render import RenderError

    def broken(*a, **k):
        raise RenderError('Graphviz could not render the DOT source: a test')
    monkeypatch.setattr(drawing, 'render_view', broken)
    with pytest.raises(RenderError, match="the explorer's first view could not be drawn: render failed: Graphviz"):
        make_server(trace=ab)


# -- tour FILE reads at most 1 MiB and never a device ----------------------------------------------------
def test_tour_refuses_dev_zero_and_a_file_over_the_cap(tmp_path):
    code, _, err, seconds = run('tour', '/dev/zero', '-o', str(tmp_path / 'z.html'), timeout=60)
    assert code == 2 and 'tour file /dev/zero is a character device, not a file' in one_line(err)
    big = tmp_path / 'big.toml'
    big.write_text('# ' + 'x' * (1024 * 1024) + '\n')
    code, _, err, _ = run('tour', str(big), '-o', str(tmp_path / 'b.html'), timeout=60)
    assert code == 2 and 'is larger than 1 MiB' in one_line(err)


# -- explore --max-nodes is the limit of the first recording and of the page's ------------------------
def test_explore_refuses_a_step_above_max_nodes_before_serving():
    code, _, err, _ = run('explore', '--no-browser', '--doc', 'emma', '--max-nodes', '1000', timeout=60)
    assert code == 2 and 'the limit is 1,000 nodes' in one_line(err)


def test_the_pages_recordings_keep_the_max_nodes_limit():
    with running_server(doc='ab', max_nodes=30_000) as s:
        status, body = get_json(s, '/api/view?doc=abcdefgh')
    assert status == 400 and 'the limit is 30,000 nodes' in body['error']


# -- seeds: 0 .. 2**31 - 1, as documented ------------------------------------------------------------------
def test_the_api_takes_every_seed_up_to_2_31_minus_1():
    with running_server(doc='ab') as s:
        for seed in (10 ** 9, 2 ** 31 - 1):
            status, info = get_json(s, f'/api/info?seed={seed}')
            assert status == 200 and info['seed'] == seed
        status, body = get_json(s, f'/api/info?seed={2 ** 31}')
        assert status == 400 and body['error'] == 'seed must be in 0..2147483647, got 2147483648'
        status, body = get_json(s, '/api/info?seed=' + '9' * 3000)
        assert status == 400 and body['error'] == 'seed must be in 0..2147483647, got a number of 3000 digits'


# -- explore --data names a file that exists --------------------------------------------------------------
def test_explore_with_data_that_does_not_exist_does_not_start(tmp_path):
    missing = tmp_path / 'nothing.txt'
    code, _, err, _ = run('explore', '--no-browser', '--data', str(missing), timeout=60)
    # one check of --data at start (read_docs, as diff --data), in its words: not click's exists=True
    assert (code, one_line(err)) == (2, f"Error: Invalid value for '--data': data file not found: {missing}")


def test_make_server_reads_the_data_at_start(tmp_path):
    empty = tmp_path / 'empty.txt'
    empty.write_text('\n')
    with pytest.raises(InputError, match='^data: '):
        make_server(doc='ab', data=str(empty))


# -- tour --frames makes the last folder only ----------------------------------------------------------------
def test_tour_frames_in_a_missing_folder_is_refused_and_nothing_is_made(tmp_path):
    tour = tmp_path / 't.toml'
    # three slides (frames 0..2): what is under test is the folder, not the slides (a PNG a slide is ~0.5 s)
    tour.write_text('doc = "ab"\n[[stop]]\ncaption = "c"\ntoken = 1\nlevel = "block"\nframes = [0, 2]\n')
    code, _, err, _ = run('tour', str(tour), '-o', str(tmp_path / 't.html'), '--frames', str(tmp_path / 'no' / 'a' / 'b'))
    assert code == 2 and "Invalid value for '--frames'" in one_line(err)
    assert not (tmp_path / 'no').exists() and not (tmp_path / 't.html').exists()
    code, out, err, _ = run('tour', str(tour), '-o', str(tmp_path / 't.html'), '--frames', str(tmp_path / 'slides'))
    assert code == 0 and sorted(p.name for p in (tmp_path / 'slides').glob('*.svg')) == [
        'stop01-frame000.svg', 'stop01-frame001.svg', 'stop01-frame002.svg']


# -- --timeout covers the drawing: building the view and its layout ---------------------------------------
def test_render_stops_at_its_timeout_while_building_a_huge_view(tmp_path):
    # 128,000 scalar nodes: about 90 s to build here before this fix, whatever --timeout said
    code, _, err, seconds = run('render', '--doc', 'christopher', '--layer', '0', '--level', 'scalar',
                                '--budget', '5000', '--edge-budget', '20000', '--timeout', '3',
                                '-o', str(tmp_path / 'huge.svg'), timeout=200)
    line = one_line(err)
    assert code == 1 and 'did not finish within --timeout 3 s: building the view' in line
    assert seconds < 45 and not (tmp_path / 'huge.svg').exists()


def test_render_help_says_what_the_timeout_covers():
    _, out, _, _ = run('render', '--help')
    assert 'building the view and its Graphviz' in ' '.join(out.split())


# -- Ctrl-C during a WebAssembly layout stops the explorer at once -------------------------------------------
SLOW = ('/api/view?doc=christopher&view=token&token=11&level=vector&budget=5000&ebudget=20000'
        + ''.join(f'&expand=pos11/layer0/attn/head{h}/*' for h in range(4)))    # ~50 s of wasm layout here


def _api(origin, token, path, timeout=100):
    req = urllib.request.Request(origin + path, headers={'X-Explorer-Token': token})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def test_ctrl_c_during_a_webassembly_layout_stops_explore_at_once():
    with stopped_in_the_end(_start('--renderer', 'wasm', '--doc', 'emma')) as p:
        origin, token = _printed(p.stdout.readline(), wait=True)
        threading.Thread(target=lambda: _quietly(_api, origin, token, SLOW), daemon=True).start()
        for _ in range(600):                    # until the layout runs (/api/progress says so)
            work = _api(origin, token, '/api/progress')['work']
            if any(w['phase'].startswith('layout of') for w in work):
                break
            time.sleep(0.1)
        else:
            pytest.fail('the layout never started')
        time.sleep(1)
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        p.wait(60)
        stopped_after = time.monotonic() - t0
    assert p.returncode == 0 and 'Traceback' not in p.err
    assert stopped_after < 5        # before: it waited for the layout (up to the explorer's 20 s)


def _quietly(fn, *args):
    try:
        fn(*args)
    except OSError:
        pass


def test_ctrl_c_during_a_webassembly_render_exits_130(tmp_path):
    """At a terminal (stderr a pty) the render draws its layout bar when the layout begins: the
    signal goes a second after that (not after a fixed 12 s that may or may not reach it)."""
    import pty
    master, slave = pty.openpty()
    proc = subprocess.Popen([*CLI, 'render', '--doc', 'emma', '--token', '3', '--level', 'scalar', '--budget', '5000',
                             '--edge-budget', '20000', '--renderer', 'wasm', '--timeout', '300', '-o',
                             str(tmp_path / 'w.svg')], stdout=subprocess.PIPE, stderr=slave,
                            env=dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS='100'), preexec_fn=default_signals)
    os.close(slave)
    seen = b''
    try:
        deadline = time.monotonic() + 120
        while b'layout' not in seen:        # start-up, recording, building: then the layout (about a minute)
            if not select.select([master], [], [], max(0.0, deadline - time.monotonic()))[0]:
                pytest.fail(f'the layout never started: {seen[-300:]!r}')
            seen += os.read(master, 65536)
        time.sleep(1)                       # inside the layout
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        stopped_after = time.monotonic() - t0
        seen += read_to_the_end(master)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
        os.close(master)
    err = seen.decode('utf-8', 'replace')
    # what follows the bar (redrawn in place with \r) is the one error line
    after_bar = re.sub(r'\x1b\[[0-9;?]*[A-Za-z]', '', err.replace('\r', '\n')).strip().splitlines()[-1]
    assert proc.returncode == 130 and after_bar == 'Error: interrupted' and 'Traceback' not in err, err
    assert stopped_after < 5


# -- one way a child dies with its parent ----------------------------------------------------------------
def test_one_helper_makes_our_children_die_with_their_parent():
    users = [p for p in (ROOT / 'graphviz_export').rglob('*.py') if 'PR_SET_PDEATHSIG' in p.read_text()
             and 'prctl(' in p.read_text()]
    users += [p for p in (ROOT / 'microgpt').rglob('*.py') if 'prctl(' in p.read_text()]
    assert [p.relative_to(ROOT).as_posix() for p in users] == ['microgpt/recording/script/lifetime.py']
    from graphviz_export.render import native
    from microgpt.recording.script import lifetime
    assert native.dies_with_parent is lifetime.dies_with_parent


# -- expand=* at level auto: refused before folding, not after 20-30 s of drawing -------------------------
def test_expanding_everything_is_refused_before_it_is_folded_or_drawn(monkeypatch):
    import graphviz_export.web.explorer.drawing as drawing
    built = []
    real = drawing.build_view
    monkeypatch.setattr(drawing, 'build_view', lambda *a, **k: built.append(k) or real(*a, **k))
    with running_server(doc='emma') as server:
        assert get_json(server, '/api/view')[0] == 200      # the first view (drawn at level block)
        built.clear()
        for endpoint in ('frames', 'update', 'export?fmt=svg&', 'frames?level=block&'):
            path = f"/api/{endpoint}{'' if endpoint.endswith('&') else '?'}expand=*"
            status, body = get_json(server, path)
            assert status == 422 and 'refused before drawing it' in body['error'], (path, body)
            assert body['nodes'] > 10_000, path                 # every scalar of the token's flow
        assert built == []
        status, body = get_json(server, '/api/frames?expand=pos4/layer0/attn/head0/*')    # one head: drawn
        assert status == 200 and len(built) == 1
