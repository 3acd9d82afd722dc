"""The Adam panel on a big step: Adam stepped once on every cell of the model and kept with the trace
(update.every_cell), each view reading its cells' columns and making rows for its page only. Its answer is
the per-row one it replaces (adam_update's rows of the view, matrix_summary, page_rows, first_step,
update_health), bit for bit, for every kind of view, paging, order and moments; search max:dw finds the
rows every row would; and a big step steps them in the background after its first view, a panel asked
meanwhile waiting for that job rather than stepping them a second time. Real HTTP for the last."""

import random
import threading
import time

import pytest

import graphviz_export.steps.update as update
from graphviz_export.draw.style import full
from graphviz_export.steps.update import (
    adam_update,
    delta_heatmap,
    every_cell,
    largest_changes_of,
    matrices_of,
    matrix_summary,
    page_rows,
    params_per_node,
)
from graphviz_export.steps.update_health import health_html, update_health
from graphviz_export.view import build_view
from graphviz_export.web.explorer.update_panel import paging, source_words, update_answer
from graphviz_export.web.update_table import update_html
from microgpt.recording import NUM_STEPS, Trace
from microgpt.recording.extremes import largest_changes
from tests.explorer_helpers import get_json, running_server


def plain_answer(trace, view, moments, state, pages):
    """update_answer as it was: adam_update's row of every cell of the matrices in view, then per row."""
    cmp, opt, num_steps, finished = moments
    per_node = params_per_node(view)
    ids = sorted({i for cells in per_node.values() for i in cells})
    touched = matrices_of(trace, ids)
    upd = adam_update(trace, [i for m in touched for i in trace.param_nodes(m)], state=opt, num_steps=num_steps)
    every = upd['rows']
    of = {r['id']: r for r in every}
    rows = upd['rows'] = [of[i] for i in ids]
    heat = delta_heatmap(trace, view, rows)
    largest = max(rows, key=lambda r: abs(r['delta']), default=None)
    matrices = matrix_summary(trace, rows)
    page, matched = page_rows(rows, **pages)
    recording = 'after' if cmp is not None else 'this recording'
    source_words(upd, cmp, opt, finished, state)
    html = update_html(upd, page, matrices, count=len(rows), matched=matched, paging=pages, recording=recording)
    html += health_html(update_health(trace, every))
    for m in matrices:
        for k in ('norm_delta', 'max_delta', 'largest_delta', 'norm_grad'):
            m[k] = full(m[k])
    page = [dict(r) for r in page]
    for r in page:
        for k in ('grad', 'm_prev', 'v_prev', 'm', 'v', 'm_hat', 'v_hat', 'data', 'new', 'delta', 'step_size'):
            r[k] = full(r[k])
    upd.update(rows=page, count=len(rows), matched=matched, matrices=matrices, lr_t=full(upd['lr_t']),
               **{k: pages[k] for k in ('matrix', 'sort', 'offset', 'limit')},
               largest=None if largest is None else largest['name'],
               nodes={k: len(v) for k, v in per_node.items() if v}, recording=recording, html=html, heat=heat)
    return upd


def moments_of(trace, step):
    """A saved optimizer's moments (random, some exactly 0) at `step`, or None (a fresh optimizer)."""
    if step is None:
        return None
    rng = random.Random(step)
    n = sum(r * c for r, c in trace.param_shapes.values())
    pick = lambda: rng.choice([0.0, rng.gauss(0, 1e-3)])     # noqa: E731
    return {'step': step, 'num_steps': NUM_STEPS, 'm': [pick() for _ in range(n)],
            'v': [abs(pick()) for _ in range(n)]}


VIEWS = [{'token': 11, 'level': 'vector'}, {'token': 3, 'level': 'block'}, {'param': 'wte'},
         {'param': 'layer0.mlp_fc1'}, {'param': 'layer0.attn_wq[3][5]'}, {'node': 'loss', 'depth': 2}]
PAGES = [{}, {'sort': 'delta'}, {'matrix': 'lm_head', 'sort': 'delta', 'offset': '7', 'limit': '30'},
         {'matrix': 'wpe', 'offset': '100'}, {'matrix': 'layer0.mlp_fc2'}]


@pytest.fixture(scope='module')
def step(recorded_christopher):
    return Trace.from_binary(recorded_christopher.to_binary())      # its own cache


@pytest.mark.parametrize('saved', [None, 0, 17])
@pytest.mark.parametrize('kw', VIEWS, ids=[','.join(map(str, kw.values())) for kw in VIEWS])
def test_the_panel_from_columns_is_the_per_row_answer(step, kw, saved):
    opt = moments_of(step, saved)
    moments = (None, opt, NUM_STEPS, None)
    state = {'ckpt': 'x.json' if opt else None, 'train': None}
    view = build_view(step, **kw)
    for own in PAGES:
        pages = paging(own)
        assert update_answer(step, view, moments, state, pages) == plain_answer(step, view, moments, state, pages)


def test_every_cell_is_adam_update_of_every_cell_bit_for_bit(step):
    opt = moments_of(step, 5)
    ids = [i for m in step.param_names for i in step.param_nodes(m)]
    for state in (None, opt):
        every = every_cell(step, state)
        want = {r['id']: r for r in adam_update(step, ids, state=state)['rows']}
        got = [update.adam_row(step, every, k) for k in range(len(every['ids']))]
        assert every['ids'] == sorted(ids) and [repr(r) for r in got] == [repr(want[r['id']]) for r in got]
        # search max:dw: the largest |Δw| among every row, ties by id
        assert largest_changes_of(step, every, 100) == largest_changes(list(want.values()), 100)
    assert every_cell(step, opt) is every_cell(step, opt) and every_cell(step, None) is not every


def test_a_panel_during_the_background_stepping_waits_for_it(monkeypatch, recorded_christopher):
    trace = Trace.from_binary(recorded_christopher.to_binary())
    calls, gate, held, real = [], threading.Event(), threading.Event(), update.adam_columns

    def columns(*a, **kw):          # the first (the background job's) held until the gate opens
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            held.set()
            assert gate.wait(60)
        return real(*a, **kw)
    monkeypatch.setattr(update, 'adam_columns', columns)
    monkeypatch.setattr('microgpt.recording.paths.whole_walk', lambda t, pause=None: None)   # not this test's
    with running_server(trace=trace) as server:
        server.api.recordings.warm_routes = 0           # a big step, as 5 M nodes are by default
        status, _ = get_json(server, '/api/view?token=11&level=vector')
        assert status == 200 and held.wait(30)
        status, d = get_json(server, '/api/progress')
        (job,) = [j for j in d['work'] if j['kind'] == 'adam']
        assert job['what'] == "Adam's step on every parameter (for the update panel)"
        got = {}
        asking = threading.Thread(target=lambda: got.update(
            answer=get_json(server, '/api/update?token=11&level=vector&sort=delta', timeout=90)))
        asking.start()
        time.sleep(0.5)
        assert asking.is_alive() and len(calls) == 1        # waits for the job, no stepping of its own
        gate.set()
        asking.join(90)
        assert not asking.is_alive() and len(calls) == 1
        status, d = got['answer']
        assert status == 200
        status, dw = get_json(server, '/api/search?token=11&level=vector&q=max:dw')
        assert status == 200 and len(calls) == 1            # search max:dw reads the same columns
    fresh = Trace.from_binary(recorded_christopher.to_binary())
    view = build_view(fresh, token=11, level='vector')
    want = plain_answer(fresh, view, (None, None, NUM_STEPS, None), {'ckpt': None, 'train': None},
                        paging({'sort': 'delta'}))
    assert {k: d[k] for k in ('rows', 'matrices', 'html', 'count', 'largest', 'source')} == \
        {k: want[k] for k in ('rows', 'matrices', 'html', 'count', 'largest', 'source')}
    rows = largest_changes(adam_update(fresh, [i for m in fresh.param_names for i in fresh.param_nodes(m)])['rows'], 20)
    assert [m['hl'] for m in dw['matches']] == [str(r['id']) for r in rows]
