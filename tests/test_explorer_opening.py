"""`explore --trace FILE` serves at once and opens the file in the background (issue 25): the URL is
printed before the load, the page opened meanwhile shows the load's bar (phase, percentage, time
left: the terminal's line, recording.phases) and draws the first view once it is in, without a
reload; the API answers 503 with one line naming what loads and how far; a file that fails to load
says its one line in the page and in the terminal, and the command exits 2. (The step `explore`
records at start is the same job: test_explorer_cli.test_explore_serves_and_stops_on_ctrl_c.)

Real `explore` processes on 127.0.0.1 (stopped in a `finally`), real HTTP, the page in Chromium.
The load is not slowed: the file is 'christopher' on the default model (104 k nodes) saved without
its indexes and made-by chains (as a version 1 file or a JSON trace is), so opening it reads, inflates and checks the
columns, replays the forward pass for "made by" and builds the indexes: a second or more, while the
page asks within a few hundred milliseconds of the URL."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from graphviz_export.web.explorer.recordings import REPLAYING_OLD
from tests.explorer_helpers import default_signals, stopped_in_the_end
from tests.test_explorer_browser import ARTIFACTS, _missing
from tests.test_explorer_cli import ROOT, _printed, _start

pytestmark = pytest.mark.skipif(bool(_missing), reason=f"browser tests need {' and '.join(_missing)}")
# the opening's line as the page shows it (recording.js: what, then the terminal's line)
PHASES = ('reading', 'inflating', 'checking', REPLAYING_OLD, 'building indexes', 'drawing the first view')
BAR = re.compile(rf"opening slow\.mgtrace: ({'|'.join(map(re.escape, PHASES))}): "
                 r"(\d+)% \((\d+ s left|time left unknown|\d+\.\d s)\)")


@pytest.fixture(scope='module')
def slow(recorded_christopher, tmp_path_factory):
    path = tmp_path_factory.mktemp('opening') / 'slow.mgtrace'
    recorded_christopher.to_binary(path, indexes=False, chains=False)
    return path


def _ask(origin, token, path):
    """(status, JSON body) of one API request, an error status included."""
    req = urllib.request.Request(origin + path, headers={'X-Explorer-Token': token})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _bar(pg):
    return pg.evaluate('''() => { const b = document.querySelector('#recbar');
        return b.hidden ? null : [document.querySelector('#rectext').textContent, b.dataset.percent,
                                  !document.querySelector('#reccancel').hidden]; }''')


def test_the_page_shows_the_loads_bar_then_draws_the_first_view_and_the_api_says_503(slow, browser):
    with stopped_in_the_end(_start('--trace', str(slow), '--no-check')) as p:
        origin, token = _printed(p.stdout.readline())
        # the URL comes first: asked now, a view is a one-line 503 naming what loads and how far
        status, body = _ask(origin, token, '/api/view?view=doc')
        assert status == 503, body
        job = body['opening']
        assert body['error'] == f"opening slow.mgtrace: {job['line']}; this answers once it is open"
        assert job['what'] == 'opening slow.mgtrace' and 0 <= job['percent'] <= 100
        assert _ask(origin, token, '/api/cancel') == (200, {'cancelled': 0})    # the opening is not cancelled
        pg = browser.new_page(viewport={'width': 1024, 'height': 768})
        try:
            pg.goto(f'{origin}/#token={token}')
            pg.evaluate('window.sameDocument = true')
            pg.wait_for_function("document.querySelector('#recbar:not([hidden])') || "
                                 "document.querySelector('#graph svg g.node')")
            shown = _bar(pg)
            assert shown is not None, 'the first view drew before the page saw the load'
            text, percent, cancel = shown
            m = BAR.fullmatch(text)
            assert m and percent == m[2] and not cancel, shown     # the bar's width is the line's percentage
            assert m[2] == '100' or 'left' in m[3], shown      # a phase's time taken only once it is done
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            pg.screenshot(path=str(ARTIFACTS / 'opening-1024x768.png'))
            pg.wait_for_selector('#graph svg g.node', timeout=120_000)
            assert pg.evaluate('window.sameDocument') is True        # drawn without a reload
            assert pg.evaluate('explorer.view.title') == "token 11 of 'christopher': 'r' -> '<BOS>'"
            assert _bar(pg) is None and pg.evaluate("document.querySelector('#msg').hidden")
        finally:
            pg.close()
        assert _ask(origin, token, '/api/info')[1]['n_nodes'] == 103_675
    assert p.returncode == 0 and 'Traceback' not in p.err


def test_a_damaged_trace_says_its_one_line_in_the_page_and_the_terminal_and_exits_2(slow, browser, tmp_path):
    cut = tmp_path / 'slow.mgtrace'
    cut.write_bytes(slow.read_bytes()[:-1000])          # the end of the compressed columns lost
    # a browser opened on the URL (as without --no-browser): `true` here, then the test's own page
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED='1', BROWSER=shutil.which('true'))
    proc = subprocess.Popen([sys.executable, str(ROOT / 'cli.py'), 'explore', '--no-check', '--trace', str(cut)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True, preexec_fn=default_signals)
    with stopped_in_the_end(proc) as p:
        origin, token = _printed(p.stdout.readline())
        pg = browser.new_page(viewport={'width': 1024, 'height': 768})
        try:
            pg.goto(f'{origin}/#token={token}')
            pg.wait_for_selector('#msg:not([hidden])')
            shown = pg.text_content('#msg span')
        finally:
            pg.close()
        t0 = time.monotonic()
        p.wait(30)
    why = "binary trace is cut short: its frames declare"
    assert shown.startswith(f"opening slow.mgtrace failed: Invalid value for '--trace': {cut}: {why}"), shown
    assert p.returncode == 2 and time.monotonic() - t0 < 5
    lines = p.err.strip().splitlines()
    assert shown.endswith('; the explorer stopped')
    assert lines == [f"Error: {shown[len('opening slow.mgtrace failed: '):-len('; the explorer stopped')]}"], p.err
