"""Expand clicks (issue 25): the explorer keeps the last view's Selection for the next view of the same query
(drawing.Selections: an expand click, a level, the fallback's tries select a token once), the fallback skips
node_floor where the opened ids alone are over the limit, and a folding over what lays out in time is not
drawn (build_view's ceiling). Each answer is the one the explorer gave selecting and drawing every time."""

import json

import pytest

import graphviz_export.view as view_mod
import graphviz_export.web.explorer.drawing as drawing
import graphviz_export.web.explorer.fallback as fallback
from graphviz_export.fold import expanded_ids, node_floor
from graphviz_export.fold.expand import expanded_scopes
from graphviz_export.select import select
from graphviz_export.view import Oversize, build_view
from graphviz_export.web.explorer import state as st
from graphviz_export.web.explorer.api import Api
from graphviz_export.web.explorer.recordings import Recordings
from microgpt.recording import Trace
from tests.explorer_helpers import get_json, running_server

TOKEN = 'view=token&token=11&level=vector'
FITS = f'{TOKEN}&expand=pos11/layer0/attn/rmsnorm'     # opened, drawn as asked
FALLS = f'{TOKEN}&expand=pos11/layer0/attn'            # too big: opened in part, then folded


def answer(api, query):
    a = api.answer('view', query)
    assert a.status == 200, a.body
    got = json.loads(a.body)
    got.pop('ms', None)         # timings, and whether the cache answered
    got.pop('cached', None)
    return got


def counted(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(module, name, spy)
    return calls


@pytest.mark.parametrize('click', [FITS, FALLS], ids=['fits', 'falls-back'])
def test_an_expand_click_selects_once_and_answers_as_when_selecting_anew(recorded_christopher, monkeypatch, click):
    with monkeypatch.context() as m:        # the explorer as it was: every view selects its ids
        m.setattr(drawing, 'KEEP_IDS', 0)
        plain = Api(Recordings(trace=recorded_christopher, cache=False))
        answer(plain, TOKEN)
        want = answer(plain, click)
    selects = counted(monkeypatch, drawing, 'select')
    api = Api(Recordings(trace=recorded_christopher, cache=False))
    answer(api, TOKEN)
    got = answer(api, click)
    assert got == want
    assert len(selects) == 1        # the token's, kept for the click (and the fallback's tries)
    assert (got['fallback'] is not None) == (click == FALLS)


def test_the_kept_selection_is_the_views_own_query_and_trace(recorded_christopher):
    """Another query or another trace selects anew; a selection over KEEP_IDS is not kept."""
    other = Trace.from_binary(recorded_christopher.to_binary())
    keep = drawing.Selections()
    token11 = keep.get(recorded_christopher, {'token': 11, 'level': 'vector'})
    assert keep.get(recorded_christopher, {'token': 11, 'expand': ('x',)}) is token11
    token3 = keep.get(recorded_christopher, {'token': 3})
    assert token3 is not token11 and token3.nodes == select(recorded_christopher, token=3).nodes
    assert keep.get(other, {'token': 3}) is not token3
    assert keep.get(recorded_christopher, {'token': 3}) is not token3     # the other trace's replaced it
    old, drawing.KEEP_IDS = drawing.KEEP_IDS, 10
    try:
        big = drawing.Selections()
        assert big.get(recorded_christopher, {'token': 3}) is not big.get(recorded_christopher, {'token': 3})
    finally:
        drawing.KEEP_IDS = old


@pytest.mark.parametrize('query', [FALLS, f'{TOKEN}&expand=pos11/layer0', f'{TOKEN}&expand=pos11/layer0/attn/head1'])
def test_the_fallback_opens_the_scopes_node_floor_would_open(recorded_christopher, monkeypatch, query):
    """The opened ids counted first (over the limit: not asked of node_floor) change no candidate: those
    of the walk asking node_floor of every scope."""
    trace = recorded_christopher
    state = st.parse(query)
    *kept, last = state['expand']
    sel = select(trace, token=11)
    limit = fallback.ceiling(state)[0]
    scopes, opened = expanded_scopes(trace, sel, last), []
    for path in scopes:      # the walk as it was
        if node_floor(trace, sel, 'vector', expanded_ids(trace, sel, tuple(kept) + tuple(opened) + (path,))) <= limit:
            opened.append(path)
    rest = [p for p in scopes if p not in opened]
    asked = counted(monkeypatch, fallback, 'node_floor')
    got = list(fallback.smaller(trace, state, st.build_kwargs(state), 10_000, drawing.Selections()))
    if opened and rest:
        assert got[0][0]['expand'] == tuple(kept) + tuple(opened)
        assert f"opened {', '.join(opened)}; {', '.join(rest)} stayed folded" in got[0][1]
        got = got[1:]
    assert got[0][0]['expand'] == tuple(kept) and 'it stayed folded' in got[0][1]
    assert [c['level'] for c, _ in got[1:]] == ['block']
    assert len(asked) < len(scopes) or query != FALLS      # q, k, v and the heads' outputs: over by their ids


def test_a_folding_over_the_ceiling_is_refused_before_it_is_drawn(recorded_christopher, monkeypatch):
    draws = counted(monkeypatch, view_mod, 'draw')
    kw = {'token': 11, 'level': 'vector', 'expand': ('pos11/layer0/attn/q',)}
    whole = build_view(recorded_christopher, **kw)
    assert len(draws) == 1 and whole.stats['nodes'] > 100
    with pytest.raises(Oversize) as e:
        build_view(recorded_christopher, **kw, ceiling=(100, 10_000))
    assert e.value.stats == whole.stats and len(draws) == 1
    assert build_view(recorded_christopher, **kw, ceiling=(whole.stats['nodes'], whole.stats['edges'])).stats == whole.stats


def test_over_http_an_expand_click_answers_as_a_server_that_selects_anew(monkeypatch):
    """The same clicks through the real server, one server keeping its selection, one not."""
    def clicks():
        with running_server(doc='christopher', seed=42) as s:
            out = []
            for q in (TOKEN, FITS, FALLS):
                status, body = get_json(s, '/api/view?' + q)
                assert status == 200, body
                body.pop('ms', None)
                body.pop('cached', None)
                out.append(body)
            return out
    with monkeypatch.context() as m:
        m.setattr(drawing, 'KEEP_IDS', 0)
        want = clicks()
    selects = counted(monkeypatch, drawing, 'select')
    assert clicks() == want
    assert len(selects) == 2        # the server's first view (no token named) and the token's, not the clicks'
