"""search max:contrib on a big step: the largest contributions found once per trace, piece by piece
(extremes.largest_contribs), are those of a plain walk over every edge, bit for bit and in the same
order (ties by edge index, NaN first), whatever the pieces; the explorer ranks them in the background
after a big step's first view (Recordings.drawn), and a search asked meanwhile waits for that job
instead of ranking them a second time, then answers what a fresh trace answers. Real HTTP."""

import math
import random
import threading
import time
from array import array

import pytest

from graphviz_export.web.explorer.extremes import extreme_rows
from microgpt.recording import Trace, extremes
from tests.explorer_helpers import get_json, held_at_quiet, running_server


def _plain(trace, k):
    """The definition: every edge's local x grad(user), its user by a walk over the nodes, sorted."""
    ptr, child, local, grad = trace.child_ptr, trace.child, trace.local, trace.grad
    col = trace._cache.get('contrib')
    rows = []
    for u in range(len(trace)):
        for e in range(ptr[u], ptr[u + 1]):
            x = local[e] * grad[u] if col is None else col[e]
            rows.append((math.inf if x != x else abs(x), e, u, child[e], x))
    rows.sort(key=lambda r: (-r[0], r[1]))
    return [(u, c, e, x) for _, e, u, c, x in rows[:k]]


def _same(got, want):
    """Equal tuples, the floats bit for bit (repr: NaN equals NaN, -0.0 is not 0.0)."""
    return [tuple(map(repr, g)) for g in got] == [tuple(map(repr, w)) for w in want]


@pytest.mark.parametrize('piece', [1, 97, 4096, 1 << 18])
def test_the_pieces_rank_as_a_plain_walk_of_every_edge(monkeypatch, recorded_christopher, piece):
    monkeypatch.setattr(extremes, 'PIECE', piece)
    t = Trace.from_binary(recorded_christopher.to_binary())     # its own cache: nothing ranked yet
    want = _plain(t, extremes.MAX_K)
    assert 'contrib' not in t._cache and not extremes.ranked(t)
    got = extremes.largest_contribs(t, extremes.MAX_K)
    assert _same(got, want) and extremes.ranked(t)
    assert 'contrib' not in t._cache            # the whole column is never made (80 MB at 5 M nodes)
    assert _same(extremes.largest_contribs(t, 20), want[:20])      # kept: a later k is a prefix


@pytest.mark.parametrize('nan', [False, True])
def test_ties_across_pieces_go_to_the_smaller_edge(monkeypatch, recorded_christopher, nan):
    """A contribution column set on the trace (a before/after's differences are) full of equal values,
    so the k-th place falls among ties spread over every piece; with a NaN, NaN ranks first."""
    monkeypatch.setattr(extremes, 'PIECE', 500)
    t = Trace.from_binary(recorded_christopher.to_binary())
    rng = random.Random(3)
    n_edges = t.child_ptr[len(t)]
    col = array('d', (rng.choice([0.0, -0.0, 1.5, -1.5, 2.0, -2.0, 0.25]) for _ in range(n_edges)))
    if nan:
        col[n_edges // 2] = math.nan
    t._cache['contrib'] = col
    want = _plain(t, extremes.MAX_K)
    assert sum(1 for r in want if abs(r[3]) == 2.0) == min(extremes.MAX_K - nan, sum(1 for x in col if abs(x) == 2.0))
    assert _same(extremes.largest_contribs(t, extremes.MAX_K), want)
    assert (want[0][3] != want[0][3]) == nan


def test_a_search_during_the_background_ranking_waits_for_it_and_answers_as_a_fresh_trace(
        monkeypatch, recorded_christopher):
    trace = Trace.from_binary(recorded_christopher.to_binary())
    monkeypatch.setattr(extremes, 'PIECE', 4096)
    ranks, real = [], extremes._top_contribs

    def counted(t, pause):
        ranks.append('background' if pause is not None else 'request')
        return real(t, pause)
    monkeypatch.setattr(extremes, '_top_contribs', counted)
    with running_server(trace=trace) as server:
        work = server.api.work
        server.api.recordings.warm_routes = 0               # a big step, as 5 M nodes are by default
        monkeypatch.setattr('microgpt.recording.paths.whole_walk', lambda t, pause=None: None)  # not this test's
        held, gate = held_at_quiet(monkeypatch, work, 'extremes')     # the ranking held at its first pause
        status, _ = get_json(server, '/api/view?token=3&level=vector')
        assert status == 200 and held.wait(30)
        status, d = get_json(server, '/api/progress')      # what the page's line under the bars reads
        (job,) = [j for j in d['work'] if j['kind'] == 'extremes']
        assert job['what'] == 'ranking the contributions (for search max:contrib)' and job['phase'] == 'nodes ranked'
        assert not extremes.ranked(trace) and ranks == ['background']
        got = {}
        asking = threading.Thread(target=lambda: got.update(
            answer=get_json(server, '/api/search?token=3&level=vector&q=max:contrib', timeout=90)))
        asking.start()
        time.sleep(0.5)
        assert asking.is_alive() and ranks == ['background']    # waits for the ranking, none of its own
        gate.set()
        asking.join(90)
        assert not asking.is_alive()
        status, d = got['answer']
        assert status == 200 and ranks == ['background'] and extremes.ranked(trace)
        status, view = get_json(server, '/api/view?token=3&level=vector&hl=max:contrib')   # a highlight: kept ranks
        assert status == 200 and view['hl_count'] >= 1 and ranks == ['background']
    fresh = Trace.from_binary(recorded_christopher.to_binary())
    _, rows = extreme_rows(fresh, 'max:contrib')
    assert [(r['label'], r['value'], r['hl']) for r in d['matches']] == [(r['label'], r['value'], r['hl']) for r in rows]
