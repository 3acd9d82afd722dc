"""A step `explore` records now is stored in the user cache AFTER its first view, in the background
(Recordings.drawn -> stepcache.store: its use records, ~7 s of CPU at 5 M nodes, then the file): the
first view is answered before the store ends, a view asked meanwhile is answered, the store shows as a
job (/api/progress, the page's line, the terminal's), Cancel spares it, the entry then opens with its
use records, and the trace in memory has gained them (attached in one assignment: uses.with_uses). A
store that fails is told in one line and the server goes on.

Real `explore` processes on 127.0.0.1 (stopped in a `finally`), real HTTP, the page in Chromium. The
store is held open by tests/gated_store.py: the real use-record build, waiting after its first matrix
until the test creates a file, so "during the store" lasts as long as the test needs, on any machine."""

import os
import re
import subprocess
import sys
import time

import pytest

from microgpt.recording import Trace
from microgpt.recording.uses import USE_COLUMNS, held, use_records
from tests.explorer_helpers import default_signals, get_json, opened, running_server, stopped_in_the_end
from tests.test_explorer_browser import ARTIFACTS, _missing
from tests.test_explorer_cli import ROOT, _api, _printed

MATRIX = 'view=param&param=layer0.mlp_fc1'
STORING = "storing 'christopher' in the user cache"


def _explore(tmp_path, *args, cache=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED='1', GATE=str(tmp_path / 'gate'),
               MICROGPT_CACHE=str(cache or tmp_path / 'cache'))
    env.pop('MICROGPT_NO_STEP_CACHE', None)
    return subprocess.Popen([sys.executable, str(ROOT / 'tests' / 'gated_store.py'), 'explore', '--no-browser',
                             '--no-check', '--doc', 'christopher', *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True, preexec_fn=default_signals)


def _stores(origin, token):
    return [j for j in _api(origin, token, '/api/progress')[1]['work'] if j['kind'] == 'store']


def _held(origin, token, seconds=60):
    """The store jobs once the store is held at its gate (its first matrix built: step 1)."""
    deadline = time.monotonic() + seconds
    while not any(j['step'] == 1 for j in _stores(origin, token)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _stores(origin, token)


def _entries(tmp_path):
    return sorted((tmp_path / 'cache' / 'steps').glob('*.mgtrace'))


def _same_records(got, want):
    assert {n: got.index(n).tobytes() for n, _ in USE_COLUMNS} == {n: want[n].tobytes() for n, _ in USE_COLUMNS}


@pytest.mark.skipif(bool(_missing), reason=f"browser tests need {' and '.join(_missing)}")
def test_the_first_view_comes_before_the_store_which_runs_in_the_background_and_then_opens(
        tmp_path, browser, recorded_christopher):
    with stopped_in_the_end(_explore(tmp_path)) as p:
        line = p.stdout.readline()
        origin, token = _printed(line)
        opened(line.split()[2], timeout=120)        # the first view is drawn (not after the store: held)
        # the store runs (held after its first matrix): nothing in the cache folder yet
        [job] = _held(origin, token)
        held_at = time.monotonic()      # the terminal's line counts from before the recording, so from before this
        n = len(recorded_christopher.param_names)
        assert (job['what'], job['phase'], job['step'], job['steps']) == (STORING, 'building the use records', 1, n)
        assert re.fullmatch(rf"building the use records: {100 // n}% \(\d+ s left\)", job['line']), job
        assert _entries(tmp_path) == []
        # views answered meanwhile: the first one, and a matrix's uses drawn now (no use records yet: the edges)
        status, first = _api(origin, token, '/api/view')
        assert status == 200 and first['title'] == "token 11 of 'christopher': 'r' -> '<BOS>'"
        status, matrix = _api(origin, token, f'/api/view?{MATRIX}')
        assert status == 200 and matrix['kind'] == 'matrix' and not matrix['cached']
        assert _api(origin, token, '/api/cancel')[1] == {'cancelled': 0}         # the store goes on
        assert _stores(origin, token)[0]['what'] == STORING and _entries(tmp_path) == []
        # the page: its first view drawn, the store's line under the bars (the job's words), no Cancel in it
        pg = browser.new_page(viewport={'width': 1024, 'height': 768})
        try:
            pg.goto(f'{origin}/#token={token}')
            pg.wait_for_selector('#graph svg g.node')
            pg.wait_for_selector('#storeline:not([hidden])')
            shown = pg.text_content('#storeline')       # the time left grows while the gate holds it
            assert re.fullmatch(rf"{STORING}: building the use records: {100 // n}% \(\d+ s left\)", shown), shown
            assert pg.evaluate("document.querySelector('#storeline button')") is None
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            pg.screenshot(path=str(ARTIFACTS / 'store-line-1024x768.png'))
            time.sleep(max(0.0, 6.0 - (time.monotonic() - held_at)))     # a plain line (not a tty) after 5 s
            (tmp_path / 'gate').touch()
            pg.wait_for_selector('#storeline', state='hidden', timeout=60_000)      # gone once stored
        finally:
            pg.close()
        assert _stores(origin, token) == []
        [entry] = _entries(tmp_path)
        # a view asked after the store: the same answer as before it (the records give the same view)
        status, again = _api(origin, token, f'/api/view?{MATRIX}')
        assert status == 200 and again['svg'] == matrix['svg'] and again['nodes'] == matrix['nodes']
    assert 'Traceback' not in p.err
    lines = p.err.splitlines()
    assert any(re.fullmatch(r'building the use records: \d+% \(\d+ s left\)', t) for t in lines), p.err
    assert any(t.startswith('building the use records: 100% (') for t in lines), p.err
    # the entry: the step, with its use records (as a plain build from the edges makes them), reused next time
    stored = Trace.load(entry)
    assert stored == recorded_christopher and held(stored)
    _same_records(stored, use_records(recorded_christopher))
    with stopped_in_the_end(_explore(tmp_path)) as p:
        origin, token = _printed(p.stdout.readline(), wait=True)
        assert _stores(origin, token) == []         # read from the cache: nothing to store
    assert f"reused the recorded step from {entry}" in p.err


def test_a_store_that_fails_is_told_in_one_line_and_the_server_goes_on(tmp_path):
    blocked = tmp_path / 'not-a-folder'
    blocked.write_text('a file where the cache folder would be')
    (tmp_path / 'gate').touch()
    with stopped_in_the_end(_explore(tmp_path, cache=blocked)) as p:
        origin, token = _printed(p.stdout.readline(), wait=True)
        deadline = time.monotonic() + 60
        while _stores(origin, token) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _stores(origin, token) == []
        status, view = _api(origin, token, f'/api/view?{MATRIX}')
        assert status == 200 and view['kind'] == 'matrix'
    told = [t for t in p.err.splitlines() if 'user cache' in t]
    assert len(told) == 1 and told[0].startswith("could not store the step of 'christopher' in the user cache ("), p.err
    assert told[0].endswith('); it is shown, not kept') and 'Error' in told[0] and 'Traceback' not in p.err
    assert p.returncode == 0


def test_the_trace_in_memory_gains_its_use_records_in_one_assignment(tmp_path, monkeypatch, recorded_christopher):
    """The server's own trace object: no use records while its first view is drawn, then all of them at once
    (a reader sees the index dict before or after, never a part), equal to a plain build; the view the same."""
    import microgpt.recording.uses as uses
    monkeypatch.setenv('MICROGPT_CACHE', str(tmp_path / 'cache'))
    monkeypatch.delenv('MICROGPT_NO_STEP_CACHE', raising=False)
    seen, real = [], uses.use_records

    def watched(trace, progress=None):
        seen.append(('building', held(trace), trace._index))
        return real(trace, progress)
    monkeypatch.setattr(uses, 'use_records', watched)
    with running_server(doc='christopher') as server:
        recordings = server.api.recordings
        trace = recordings.get(recordings.key({}))
        deadline = time.monotonic() + 120
        while server.api.work.running('store') and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [(what, had) for what, had, _ in seen] == [('building', False)]
        before = seen[0][2]
        assert held(trace) and trace._index is not before and 'use_ptr' not in before      # a new dict, attached
        assert all(trace._index[name] is column for name, column in before.items())   # the others as they were
        _same_records(trace, use_records(recorded_christopher))
        assert recordings.get(recordings.key({})) is trace
        assert [entry.name for entry in (tmp_path / 'cache' / 'steps').glob('*.mgtrace')] != []
        status, _ = get_json(server, f'/api/view?{MATRIX}')
        assert status == 200


def test_a_document_recorded_from_the_page_is_stored_once_its_view_is_drawn(tmp_path, monkeypatch):
    """The page's Record (/api/record, recordings.start): the step is ready, not stored, until the page asks
    for its view; then stored in the background, the trace the server keeps gaining its use records."""
    monkeypatch.setenv('MICROGPT_CACHE', str(tmp_path / 'cache'))
    monkeypatch.delenv('MICROGPT_NO_STEP_CACHE', raising=False)

    def settled(server):
        deadline = time.monotonic() + 120
        while server.api.work.running('store') and time.monotonic() < deadline:
            time.sleep(0.05)
        return len(_entries(tmp_path))
    with running_server(doc='emma') as server:
        assert settled(server) == 1         # emma's, stored after the first view
        deadline = time.monotonic() + 120
        while not get_json(server, '/api/record?doc=anna')[1]['ready'] and time.monotonic() < deadline:
            time.sleep(0.05)
        anna = server.api.recordings.get(('anna', None, 42))
        assert not held(anna) and settled(server) == 1 and server.api.work.running('store') == []
        status, view = get_json(server, '/api/view?doc=anna')
        assert status == 200 and view['title'] == "token 4 of 'anna': 'a' -> '<BOS>'"
        assert settled(server) == 2 and held(anna)
        assert server.api.recordings.get(('anna', None, 42)) is anna


def test_the_store_yields_to_every_request_being_answered(tmp_path, monkeypatch):
    """Between its pieces the store waits while a request is answered over HTTP (Work.serving around
    Api.answer, Work.quiet in the store's progress): two Python threads share one core, so a view asked
    during the store would otherwise take several times as long."""
    import threading
    monkeypatch.setenv('MICROGPT_CACHE', str(tmp_path / 'cache'))
    with running_server(doc='emma') as server:
        held_open, real = threading.Event(), server.api.info

        def slow(query):                        # the endpoint answering, inside Api.answer
            held_open.wait(30)
            return real(query)
        server.api.info = slow
        asked = threading.Thread(target=get_json, args=(server, '/api/info'), daemon=True)
        asked.start()
        stored = threading.Event()
        waiting = threading.Thread(target=lambda: (server.api.work.quiet(), stored.set()), daemon=True)
        time.sleep(0.3)                         # the request is in Api.answer now
        waiting.start()
        assert not stored.wait(0.5)             # the store's next piece waits for it
        held_open.set()
        asked.join(30)
        assert stored.wait(5)                   # and goes on once it is answered


def test_stopped_during_the_store_it_says_the_step_was_not_kept(tmp_path):
    with stopped_in_the_end(_explore(tmp_path)) as p:
        origin, token = _printed(p.stdout.readline(), wait=True)
        assert [j['what'] for j in _held(origin, token)] == [STORING]
    assert p.returncode == 0 and _entries(tmp_path) == [] and 'Traceback' not in p.err
    assert p.out.splitlines()[-1] == 'stopped'
    assert p.err.splitlines()[-1] == ("the step being stored in the user cache was not kept (stopped before the store "
                                      "ended); the next start records it again"), p.err
