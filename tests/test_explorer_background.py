"""A new document recorded in the background (issue 25): the page asks /api/record, shows the
recording's phase, percentage and time left (the terminal's figures: recording.phases), stays
usable meanwhile (the document on screen answers new views and search), opens the new document
by itself once recorded; a second document asked meanwhile is refused in one line naming what
runs; Cancel stops the recording. Real server on 127.0.0.1, real HTTP, the page in Chromium.

The recording is slowed honestly: record_step really records, and each of its progress reports
(one per position, then backward and building the trace) waits DELAY seconds first, so the step
takes seconds, as a 4 x 64 model's does (~10 s), while the engine is held the whole time."""

import re
import time

import pytest

from microgpt.recording import record_step, stepcache
from microgpt.train import fresh_model
from tests.explorer_helpers import get_json, running_server
from tests.test_explorer_browser import _missing, open_page, wait_view

DELAY = 0.5         # seconds before each progress report: 'christopher' (11 positions) records in ~8 s
pytestmark = pytest.mark.skipif(bool(_missing), reason=f"browser tests need {' and '.join(_missing)}")
STARTING = re.compile(r"recording 'christopher': starting: \d+ s")     # the model loaded, the engine taken
LINE = re.compile(r"recording 'christopher': recording: (\d+)% \((\d+ s left|time left unknown)\)")


@pytest.fixture
def server(monkeypatch):
    real = stepcache.record_step

    def slowed(*args, progress=None, **kwargs):
        def told(phase, done, total):
            time.sleep(DELAY)
            progress(phase, done, total)
        return real(*args, progress=told if progress is not None else None, **kwargs)
    monkeypatch.setattr(stepcache, 'record_step', slowed)
    with running_server(doc='emma', cache=False) as s:
        yield s
        s.api.work.cancel()


@pytest.fixture
def page(server, browser):
    ctx = browser.new_context(viewport={'width': 1366, 'height': 768}, bypass_csp=True)
    try:
        pg = ctx.new_page()
        pg.errors = []
        pg.on('pageerror', lambda e: pg.errors.append(str(e)))
        pg.server = server
        yield pg
    finally:
        ctx.close()


def bar(pg):
    """(text, percent) of the recording bar, or None while it is hidden."""
    return pg.evaluate('''() => { const b = document.querySelector('#recbar');
        return b.hidden ? null : [document.querySelector('#rectext').textContent, b.dataset.percent]; }''')


def ask_for(pg, doc):
    pg.fill('#doc', doc)
    pg.press('#doc', 'Enter')


@pytest.fixture(scope='module')
def emma_step():
    return record_step(*fresh_model(42), 'emma')


def test_the_page_shows_the_recordings_progress_stays_usable_and_opens_the_new_document(page, emma_step):
    open_page(page)
    emma = page.evaluate('explorer.view.url')
    ask_for(page, 'christopher')
    seen, end = [], time.monotonic() + 30
    while time.monotonic() < end and len({p for _, p in seen if p}) < 2:
        shown = bar(page)
        if shown is not None and not STARTING.fullmatch(shown[0]) and (not seen or seen[-1] != tuple(shown)):
            seen.append(tuple(shown))
        time.sleep(0.1)
    assert seen, 'no progress shown'
    for text, percent in seen:
        m = LINE.fullmatch(text)
        assert m and m.group(1) == percent, (text, percent)
    percents = [int(p) for _, p in seen]
    assert percents == sorted(percents) and percents[-1] > percents[0] and percents[-1] < 100, seen
    assert 's left' in seen[-1][0]
    # meanwhile the document on screen answers: a new view (position 0), then a search in it
    page.locator('#positions .chip[data-pos="0"]').click()
    wait_view(page, emma)
    assert page.evaluate('explorer.view.title').startswith("token 0 of 'emma'")
    at0 = page.evaluate('explorer.view.url')
    page.evaluate('explorer.setState({hl: "pos:0 layer:0 head:0 role:attn_weights"})')
    wait_view(page, at0)
    assert page.evaluate('explorer.view.hl_count') == sum(       # counted here, on a recording of our own
        1 for i in range(len(emma_step)) if (s := emma_step.scope_of(i)) and s.pos == 0 and s.layer == 0
        and s.head == 0 and s.role == 'attn_weights')
    still = bar(page)
    assert still is not None and LINE.fullmatch(still[0]), 'the recording ended before the page was used'
    # the new document opens by itself once recorded (its first view: the server's recording link)
    page.wait_for_function('explorer.view.url.includes("doc=christopher")', timeout=60000)
    assert page.evaluate('explorer.view.title').startswith("token 11 of 'christopher'")
    assert bar(page) is None and page.evaluate('document.querySelector("#doc").value') == 'christopher'
    assert page.errors == []


def test_a_second_document_while_one_records_is_refused_naming_it_and_cancel_stops_it(page, server):
    open_page(page)
    emma = page.evaluate('explorer.view.url')
    ask_for(page, 'christopher')
    page.wait_for_function('document.querySelector("#rectext").textContent.includes(": recording: ")')
    status, body = get_json(server, '/api/record?doc=anna')
    assert status == 409 and list(body) == ['error', 'running'] and body['running']['phase'] == 'recording'
    assert re.fullmatch(r"recording 'christopher' runs \(recording: \d+% \((\d+ s left|time left unknown)\)\); "
                        r"ask for another document once it is shown, or cancel it", body['error']), body
    ask_for(page, 'anna')           # the page says the same, and goes on with christopher
    page.wait_for_selector('#msg:not([hidden])')
    assert page.locator('#msg').inner_text().startswith("recording 'christopher' runs (recording: ")
    assert bar(page) is not None
    page.click('#reccancel')
    page.wait_for_function('document.querySelector("#recbar").hidden', timeout=30000)
    page.wait_for_function('document.querySelector("#msg").textContent.includes("was cancelled")')
    assert page.evaluate('explorer.view.url') == emma
    end = time.monotonic() + 30
    while get_json(server, '/api/progress')[1]['work'] and time.monotonic() < end:
        time.sleep(0.1)
    assert get_json(server, '/api/progress')[1]['work'] == []
    assert not server.api.recordings.has(('christopher', None, 42))
    # stopped mid-forward, the engine is left as it was: the next document records the reference's step
    ask_for(page, 'anna')
    page.wait_for_function('explorer.info && explorer.info.doc === "anna"', timeout=60000)
    assert page.evaluate('explorer.info.loss') == record_step(*fresh_model(42), 'anna').loss
    assert page.errors == []


def test_a_jobs_line_is_the_line_the_terminal_prints_for_the_same_figures():
    """The page's bar shows Job.describe()'s line; `render` and `explore` print Phases' line: the same
    text for the same phase, counts and elapsed time (one implementation: recording.phases)."""
    from graphviz_export.web.explorer.work import Job
    from microgpt_graph.progress import Phases
    term = Phases(tty=True)
    for phase, done, total, elapsed, want in (('recording', 5, 12, 4.0, 'recording: 41% (6 s left)'),
                                             ('recording', 0, 12, 1.0, 'recording: 0% (time left unknown)'),
                                             ('backward', 1, 1, 2.2, 'backward: 100% (2.2 s)'),
                                             ('loading the recorded step', 0, 0, 3.0, 'loading the recorded step: 3 s')):
        job = Job(('record', ('x', None, 42)), "recording 'x'")
        job.at(phase, done, total)
        job.phase_started = time.monotonic() - elapsed
        term.phase_start = 0.0
        shown = job.describe()
        assert shown['line'] == term.line(phase, done, total, elapsed) == want
        assert shown['percent'] == (None if not total else 100 * done // total)


def bar_geometry(pg, bar, text):
    """Where a status bar (`bar`) and its text (`text`) stand in the graph pane, and how many lines it takes."""
    return pg.evaluate('''([bar, text]) => {
        const b = document.querySelector(bar).getBoundingClientRect();
        const pane = document.querySelector('#canvas').getBoundingClientRect();
        const el = document.querySelector(text);
        const t = el.getBoundingClientRect();
        return {inside: [b, t].every((r) => r.left >= pane.left && r.right <= pane.right),
                whole: el.scrollWidth <= el.clientWidth, text: el.textContent,
                lines: t.height / (1.25 * parseFloat(getComputedStyle(el).fontSize))}; }''', [bar, text])


def test_the_bars_longest_line_wraps_inside_the_graph_pane_on_a_projector(server, browser):
    """At 1024x768 the bar's longest line (a file written without made-by lines, whose phase says why it
    replays the forward pass) is read whole: wrapped in two lines inside the graph's pane, nothing cut at
    either side (on one line, centred, it ran past both edges of the pane; allowed to wrap while centred
    by a shift of half its width, it wrapped into a column of eight lines)."""
    ctx = browser.new_context(viewport={'width': 1024, 'height': 768}, bypass_csp=True)
    try:
        pg = ctx.new_page()
        pg.server = server
        open_page(pg)
        line = 'replaying the forward pass (the file stores no made-by lines): 0% (time left unknown)'
        pg.evaluate("line => { explorer.page.opening({opening: {what: 'opening christopher44.mgtrace', line, "
                    "percent: 0}}, () => new Promise(() => {})); }", line)
        got = bar_geometry(pg, '#recbar', '#rectext')
        assert got['text'] == f'opening christopher44.mgtrace: {line}'
        assert got['inside'] and got['whole'] and got['lines'] < 2.5, got     # not a narrow column either
    finally:
        ctx.close()


def test_the_busy_line_of_two_jobs_wraps_inside_the_graph_pane_on_a_projector(server, browser):
    """The busy line names every job the server runs for the view (progress.js: what, the terminal's
    line, training step k of N), joined on one line: two of them at 1024x768 are read whole inside the
    graph's pane (centred by a shift of half its width, the line ran past both edges)."""
    ctx = browser.new_context(viewport={'width': 1024, 'height': 768}, bypass_csp=True)
    try:
        pg = ctx.new_page()
        pg.server = server
        open_page(pg)
        jobs = [{'what': "comparing 'emma' before and after 50 steps", 'phase': 'training', 'step': 12, 'steps': 50,
                 'line': 'training: 24% (38 s left)'},
                {'what': "recording 'christopher'", 'phase': 'recording', 'line': 'recording: 41% (6 s left)'}]
        pg.evaluate("""jobs => { document.querySelector('#busytext').textContent =
                                     jobs.map(explorer.page.jobWords).join(' · ');
                                 document.querySelector('#busy').hidden = false; }""", jobs)
        got = bar_geometry(pg, '#busy', '#busytext')
        assert got['text'] == ("comparing 'emma' before and after 50 steps: training: 24% (38 s left) · 12 / 50 · "
                               "recording 'christopher': recording: 41% (6 s left)")
        assert got['inside'] and got['whole'] and got['lines'] < 2.5, got
        # with a document recorded in the background, its bar too: the three boxes apart, none over another
        pg.evaluate("() => { explorer.page.opening({opening: {what: 'recording christopher', line: 'recording: 41% "
                    "(6 s left)', percent: 41}}, () => new Promise(() => {})); }")
        boxes = pg.evaluate("""() => ['#camera', '#busy', '#recbar'].map((s) => {
            const r = document.querySelector(s).getBoundingClientRect();
            return [r.left, r.top, r.right, r.bottom]; })""")
        assert all(b[2] > b[0] and b[3] > b[1] for b in boxes), boxes
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    finally:
        ctx.close()
