"""Long work in the explorer (training for compare, recording a document, drawing a view) blocks no
other request, is done once however many ask, can be cancelled (Cancel, or a request for another
view), says where it is (/api/progress, and the page's busy line); the view cache is bounded in
bytes. Real servers on 127.0.0.1, real HTTP, the page in Chromium."""

import threading
import time

import pytest

import graphviz_export.web.explorer.recordings as recordings_module
from graphviz_export.web.explorer.cache import ViewCache, deep_bytes
from microgpt.checkpoint import save_checkpoint
from microgpt.recording import record_step
from microgpt.recording.session import EngineLock
from microgpt.train import fresh_model
from tests.explorer_helpers import get_json, running_server
from tests.test_explorer_browser import _missing

NAMES = 'emma\nolivia\nava\nisabella\nsophia\nmia\ncharlotte\namelia\nabcdefghijklmnopqrstuvwxyz\n'
LONG = 400      # training steps: ~30 s here, far longer than any test waits for them


@pytest.fixture(scope='module')
def shared(tmp_path_factory):
    folder = tmp_path_factory.mktemp('long')
    (folder / 'names.txt').write_text(NAMES)
    save_checkpoint(folder / 'seed7.json', *fresh_model(7))
    with running_server(doc='emma', data=str(folder / 'names.txt'), checkpoints=[str(folder / 'seed7.json')]) as s:
        yield s


@pytest.fixture
def server(shared):
    """The module's server, idle again after each test (a failed test leaves no training to the next)."""
    yield shared
    shared.api.work.cancel()
    assert idle(shared, 120), shared.api.work.progress()


class Asked:
    """One API request in a thread of its own: (status, body) in .answer when it returns."""

    def __init__(self, server, path):
        self.answer = None
        # (its socket waits as long as the work may: only the test's own bounds fail it)
        self.thread = threading.Thread(target=lambda: setattr(self, 'answer', get_json(server, path, timeout=600)),
                                       daemon=True)
        self.thread.start()

    def wait(self, seconds=60):
        self.thread.join(seconds)
        assert self.answer is not None, 'no answer'
        return self.answer


def training(server, at_least=1, seconds=120):
    """The training job of /api/progress once it has taken `at_least` steps."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        _, body = get_json(server, '/api/progress')
        jobs = [w for w in body['work'] if w['phase'] == 'training' and w['step'] >= at_least]
        if jobs:
            return jobs[0]
        time.sleep(0.05)
    pytest.fail('the training never got going')


def idle(server, seconds=30):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if get_json(server, '/api/progress')[1]['work'] == []:
            return True
        time.sleep(0.05)
    return False


def test_a_compare_that_trains_blocks_no_other_request_and_cancel_stops_it(server):
    asked = Asked(server, f'/api/view?cmp=steps:{LONG}')
    job = training(server)
    assert job['what'] == f'training {LONG} steps for compare' and job['steps'] == LONG and job['kind'] == 'compare'
    # meanwhile every other kind of request on a recording made before is answered: info, a node,
    # search, suggestions, the step-through. (A view of another state is answered too, and cancels the
    # training: the next test. A new recording waits for one training step: the next but one.)
    for path in ('/api/info', '/api/node?id=5', '/api/search?q=pos:1', '/api/suggest?q=wte',
                 '/api/frames?view=token&token=1'):
        status, body = get_json(server, path)
        assert status == 200, (path, body)
    during = training(server)
    assert during['step'] < LONG                                      # all of that while it still trains
    assert asked.answer is None
    status, body = get_json(server, '/api/cancel')
    assert status == 200 and body['cancelled'] >= 1      # the training (and the view waiting for it)
    status, body = asked.wait(30)
    assert status == 409 and body['error'].startswith(f'training {LONG} steps for compare was cancelled (training at step ')
    assert idle(server) and server.api.recordings._compares == {}    # nothing half-made was kept


def test_a_view_of_another_state_cancels_the_training_it_does_not_need(server):
    asked = Asked(server, f'/api/view?doc=olivia&cmp=steps:{LONG}')
    training(server)
    same = Asked(server, f'/api/node?id=3&doc=olivia&cmp=steps:{LONG}')   # needs it: waits, cancels nothing
    time.sleep(0.3)
    assert training(server)['step'] >= 1 and same.answer is None
    status, _ = get_json(server, '/api/view?doc=olivia&view=doc')       # the user went elsewhere
    assert status == 200
    assert asked.wait(30)[0] == 409 and same.wait(30)[0] == 409
    assert idle(server)


def test_a_new_recording_asked_while_a_compare_trains_waits_one_step_not_the_run(server):
    baseline = set(threading.enumerate())
    asked = Asked(server, f'/api/view?doc=ava&cmp=steps:{LONG}')
    training(server)
    # documents never recorded on this server: each needs the one engine the training uses
    # (session.ENGINE); it is given to them between two training steps, not after the run
    for path in ('/api/info?doc=sophia', '/api/node?id=4&doc=charlotte', '/api/info?doc=amelia&seed=3'):
        started = time.monotonic()
        status, body = get_json(server, path)       # (its socket gives up after 30 s: the old wait was the run)
        assert status == 200, (path, body)
        assert asked.answer is None and training(server)['step'] < LONG, path    # it still trains
        assert time.monotonic() - started < 20, path
    assert body['doc'] == 'amelia' and server.api.recordings.key({'doc': 'amelia', 'seed': 3}) in server.api.recordings._traces
    status, body = get_json(server, '/api/cancel')
    assert status == 200 and body['cancelled'] >= 1     # the training (and the view waiting for it)
    assert asked.wait(30)[0] == 409 and idle(server)
    end = time.monotonic() + 10                 # every request's thread has ended: none left behind
    while set(threading.enumerate()) - baseline and time.monotonic() < end:
        time.sleep(0.05)
    assert set(threading.enumerate()) - baseline == set()
    assert not server.api.recordings.engine().locked()


def test_the_same_comparison_asked_for_twice_at_once_is_made_once(server, monkeypatch):
    calls = []
    real = recordings_module.train_and_record

    def counted(*a, **k):
        calls.append(a[2])
        return real(*a, **k)
    monkeypatch.setattr(recordings_module, 'train_and_record', counted)
    first, second = Asked(server, '/api/view?doc=mia&cmp=steps:3'), Asked(server, '/api/view?doc=mia&cmp=steps:3&view=doc')
    assert first.wait()[0] == 200 and second.wait()[0] == 200
    assert calls == [3]


def test_progress_names_the_work_and_answers_only_its_own_page(server):
    status, body = get_json(server, '/api/progress')
    assert status == 200 and body == {'work': []}
    status, body = get_json(server, '/api/cancel', token=False)
    assert status == 403 and 'no explorer token' in body['error']


# -- the view cache, in bytes --------------------------------------------------------------------
def test_a_big_set_of_node_ids_is_sized_whole_and_a_big_list_of_objects_is_still_walked():
    import sys
    ids = set(range(10**6, 10**6 + 5000))          # a selection's node ids (not the small ints Python shares)
    exact = sys.getsizeof(ids) + sum(sys.getsizeof(i) for i in ids)
    assert exact <= deep_bytes({'nodes': ids}) <= exact + 1000     # every id counted: never under
    for far in (2 ** 100, -2 ** 100):     # one wide int: all sized as wide as it (a bound, not a guess)
        wide = (*range(10**6, 10**6 + 5000), far)
        exact = sys.getsizeof(wide) + sum(sys.getsizeof(i) for i in wide)
        assert exact <= deep_bytes([wide]) - sys.getsizeof([wide]) <= exact + 5001 * (sys.getsizeof(far) - 28)
    floats = [0.5] * 300 + [float(i) for i in range(300)]
    assert deep_bytes((floats,)) - sys.getsizeof((floats,)) == sys.getsizeof(floats) + 600 * sys.getsizeof(0.5)
    rows = [{'name': 'x' * 200_000}] * 300 + [7] * 300      # more than _BULK items, not all numbers: walked
    assert deep_bytes(rows) >= 200_000 + sys.getsizeof(rows)    # the text inside the rows' dict counted


def test_a_big_list_of_runs_of_ids_is_sized_whole_and_tuples_of_objects_are_still_walked():
    # a VNode's runs (a, b) of a matrix's scattered uses: 16,384 pairs sized in C, every one counted
    import sys
    runs = [(10**6 + 2 * k, 10**6 + 2 * k + 1) for k in range(5000)]
    exact = sys.getsizeof(runs) + sum(map(sys.getsizeof, runs)) + sum(sys.getsizeof(i) for r in runs for i in r)
    assert deep_bytes({'runs': runs}) >= exact
    pairs = [('x' * 100_000, k) for k in range(300)]      # tuples holding text: walked, the text counted
    assert deep_bytes(pairs) >= 300 * 100_000


def test_the_view_cache_holds_at_most_its_bytes_and_counts_a_shared_trace_once():
    params, config, tok = fresh_model(42)
    trace = record_step(params, config, tok, 'ab')
    size = deep_bytes(trace)
    assert size > 1_000_000          # the columns and indexes of a 2-position step
    cache = ViewCache(limit=size + 3_500_000)
    for k in range(6):
        cache.put(k, {'svg': 'x' * 1_000_000 + str(k), 'trace': trace})      # six drawings of one recording
    assert list(cache) == [3, 4, 5]                          # the oldest went first
    assert size + 3_000_000 < cache.bytes <= cache.limit      # the trace once, not three times
    assert cache.get(3) is not None and list(cache) == [4, 5, 3]
    other = record_step(params, config, tok, 'ba')
    cache.put('big', {'svg': 'y' * 5_000_000, 'trace': other})   # larger than the limit alone: kept, alone
    assert list(cache) == ['big'] and cache.bytes > cache.limit
    cache.put('small', {'svg': 'z'})
    assert list(cache) == ['small'] and cache.bytes < 10_000    # and no trace is counted any more


def test_a_server_comparing_many_documents_stays_under_its_cache_bound(tmp_path):
    save_checkpoint(tmp_path / 'seed7.json', *fresh_model(7))
    with running_server(doc='emma', checkpoints=[str(tmp_path / 'seed7.json')]) as s:
        s.api.views.limit = 60_000_000     # two or three comparisons (three traces each, ~15-25 MB)
        s.api.recordings.keep = 1           # the older comparisons live on in the cache alone: counted
        for doc in ('emma', 'olivia', 'ava', 'isabella', 'sophia', 'mia'):
            status, _ = get_json(s, f'/api/view?doc={doc}&cmp=ckpt:seed7.json')
            assert status == 200
            # what it holds less the traces the recordings keep anyway (a bound of their own)
            assert s.api.views.counted <= s.api.views.limit
        assert 1 < len(s.api.views) < 7


# -- the page: what the server is doing, and Cancel -------------------------------------------------
@pytest.mark.skipif(bool(_missing), reason=f"browser tests need {' and '.join(_missing)}")
def test_the_page_shows_the_training_step_and_cancel_stops_it(server, browser):
    ctx = browser.new_context(viewport={'width': 1366, 'height': 768}, bypass_csp=True)
    try:
        page = ctx.new_page()
        page.goto(server.link('doc=ava'))
        page.wait_for_function('window.explorer && window.explorer.view')
        before = page.evaluate('explorer.view.url')
        # not awaited (evaluate would wait for the promise: the whole training)
        page.evaluate(f'() => {{ explorer.setState({{cmp: "steps:{LONG}"}}); }}')
        # the phase, percentage and time left as the terminal prints them, then step k of N
        page.wait_for_function(f'/training {LONG} steps for compare: training: \\d+% \\(\\d+ s left\\) '
                               f'· [1-9]\\d* \\/ {LONG}/.test(document.querySelector("#busytext").textContent)',
                               timeout=60000)
        assert page.locator('#busy').is_visible()
        page.click('#busycancel')
        page.wait_for_selector('#msg:not([hidden])')
        assert 'was cancelled' in page.locator('#msg').inner_text()
        page.wait_for_function('document.querySelector("#busy").hidden')
        assert page.evaluate('explorer.view.url') == before and 'cmp=' not in page.url
    finally:
        ctx.close()
    assert idle(server)


# -- the one engine, taken step by step -------------------------------------------------------------
def test_the_engine_lock_serves_a_waiter_before_a_run_that_takes_it_step_by_step():
    engine, steps, done = EngineLock(), [], threading.Event()

    def run():                          # what train_and_record does: the lock for each step
        while not done.is_set() and len(steps) < 2000:
            with engine:
                steps.append(1)
                end = time.perf_counter() + 0.002
                while time.perf_counter() < end:
                    pass
    trainer = threading.Thread(target=run, daemon=True)
    trainer.start()
    while len(steps) < 5:
        time.sleep(0.001)
    waits = []
    for _ in range(5):                  # a request that records: waits for at most the step under way
        asked = len(steps)
        with engine:
            waits.append(len(steps) - asked)
        time.sleep(0.01)
    done.set()
    trainer.join(10)
    assert max(waits) <= 1, waits


def test_the_engine_lock_hands_itself_to_its_waiters_in_the_order_they_came():
    engine, order = EngineLock(), []
    engine.acquire()
    threads = []
    for name in 'abcd':
        t = threading.Thread(target=lambda n=name: (engine.acquire(), order.append(n), engine.release()))
        t.start()
        threads.append(t)
        while len(engine._waiting) < len(threads):      # queued before the next one comes
            time.sleep(0.001)
    assert engine.locked() and order == []
    engine.release()
    for t in threads:
        t.join(5)
    assert order == list('abcd') and not engine.locked()
    with pytest.raises(RuntimeError, match='not held'):
        engine.release()


def test_the_engine_lock_acquires_as_a_threading_lock_does_without_blocking_and_with_a_timeout():
    engine = EngineLock()
    assert engine.acquire(blocking=False) and engine.locked()
    assert engine.acquire(blocking=False) is False
    t0 = time.monotonic()
    assert engine.acquire(timeout=0.2) is False and time.monotonic() - t0 >= 0.2
    assert list(engine._waiting) == []              # the timed-out waiter left the queue
    got = []
    waiter = threading.Thread(target=lambda: got.append(engine.acquire(timeout=30)))
    waiter.start()
    while not engine._waiting:
        time.sleep(0.001)
    engine.release()                                # handed to the waiter
    waiter.join(5)
    assert got == [True] and engine.locked()
    engine.release()
    assert not engine.locked()
