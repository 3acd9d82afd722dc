"""A big step walks its routes from the loss in the background after its first view (Recordings.drawn,
paths.whole_walk: 5.5 s at 5.1 M nodes, the why panel's first answer on a node under most of the trace),
yielding to requests between its pieces; a why on such a node meanwhile waits for that walk instead of
making a second one beside it, and a node near the loss is answered at once. Real HTTP, in-process server."""

import threading
import time

import pytest

from graphviz_export.web.explorer.why import node_why
from microgpt.recording import Trace, paths
from tests.explorer_helpers import get_json, held_at_quiet, running_server
from tests.test_explorer_browser import _missing


def test_a_big_steps_routes_are_walked_after_a_view_and_a_why_on_a_deep_node_waits_for_that_walk(
        monkeypatch, recorded_christopher):
    trace = Trace.from_binary(recorded_christopher.to_binary())
    walks, real_walk = [], paths.whole_walk

    def counted(t, pause=None):
        walks.append('background' if pause is not None else 'request')
        return real_walk(t, pause)
    monkeypatch.setattr(paths, 'whole_walk', counted)
    monkeypatch.setattr(paths, 'WHOLE_PIECE', 4096)
    with running_server(trace=trace) as server:
        recordings, work = server.api.recordings, server.api.work
        assert walks == [] and not paths.walked(trace)      # 44,000 nodes: not a big step by default
        recordings.warm_routes = 0
        held, gate = held_at_quiet(monkeypatch, work)       # the walk held at its first pause
        status, _ = get_json(server, '/api/view?token=3&level=vector')
        assert status == 200 and held.wait(30)
        assert work.running('routes') and not paths.walked(trace) and walks == ['background']
        status, d = get_json(server, '/api/progress')      # what the page's line under the bars reads
        (job,) = [j for j in d['work'] if j['kind'] == 'routes']
        assert job['what'] == 'finding the routes from the loss (for why)' and job['phase'] == 'nodes walked'
        assert job['steps'] == len(trace.backward_order) and job['line'].startswith('nodes walked: 0%')

        near = trace.meta['loss_id'] - 2                    # a few nodes above it: its own small walk, at once
        status, d = get_json(server, f'/api/node?id={near}')
        assert status == 200 and d['why']['paths']['count'] == '1' and walks == ['background']

        deep = trace.param_nodes('wpe[0][0]')[0]
        got = {}
        asking = threading.Thread(target=lambda: got.update(answer=get_json(server, f'/api/node?id={deep}', timeout=90)))
        asking.start()
        time.sleep(0.5)
        assert asking.is_alive() and walks == ['background']    # waits for the walk, none of its own
        gate.set()          # the walk goes on while the request waits (it is not counted as answering)
        asking.join(90)
        assert not asking.is_alive()
        status, d = got['answer']
        assert status == 200 and walks == ['background'] and paths.walked(trace)
        fresh = Trace.from_binary(recorded_christopher.to_binary())
        want = node_why(fresh, deep, sources=None)['paths']     # (walks it: one more 'request' below)
        assert d['why']['paths']['count'] == want['count'] and d['why']['paths']['paths'] and \
            [p['product'] for p in d['why']['paths']['paths']] == [p['product'] for p in want['paths']]
        assert [repr(x) for x in trace._cache['paths_walk']] == [repr(x) for x in real_walk(fresh)]
        deadline = time.monotonic() + 10
        while work.running('routes') and time.monotonic() < deadline:
            time.sleep(0.05)
        status, _ = get_json(server, '/api/view?token=4&level=vector')    # walked: no second walk
        assert status == 200 and walks == ['background', 'request']


@pytest.mark.skipif(bool(_missing), reason=f"browser tests need {' and '.join(_missing)}")
def test_the_page_shows_the_routes_walk_under_the_bars_until_it_ends(monkeypatch, browser, recorded_christopher):
    """The page's line for the work after the first view (#storeline) lists the routes walk too, with no
    Cancel, and hides it once the walk has ended (a 1024x768 screen, as a projector shows it)."""
    trace = Trace.from_binary(recorded_christopher.to_binary())
    monkeypatch.setattr(paths, 'WHOLE_PIECE', 2000)
    with running_server(trace=trace) as server:
        server.api.recordings.warm_routes = 0
        gate, real_quiet, calls = threading.Event(), server.api.work.quiet, []

        def quiet():                                        # held after a few pieces, until the line is read
            calls.append(1)
            if len(calls) >= 4:
                assert gate.wait(60)
            real_quiet()
        monkeypatch.setattr(server.api.work, 'quiet', quiet)
        pg = browser.new_page(viewport={'width': 1024, 'height': 768})
        try:
            pg.goto(server.link('token=2'))
            pg.wait_for_selector('#storeline:not([hidden])', timeout=30_000)
            line = pg.text_content('#storeline')
            assert line.startswith('finding the routes from the loss (for why): nodes walked: ') and '%' in line
            assert pg.evaluate("document.querySelector('#storeline button')") is None
            gate.set()
            pg.wait_for_selector('#storeline', state='hidden', timeout=60_000)
            assert paths.walked(trace)
        finally:
            gate.set()
            pg.close()
