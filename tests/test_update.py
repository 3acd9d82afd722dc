"""The Adam panel's numbers are those of the optimizer's own step, bit for bit."""

import pytest

from graphviz_export.steps.update import UpdateError, adam_update, params_in_view
from graphviz_export.view import build_view
from microgpt.model import flat_params
from microgpt.optim import Adam
from microgpt.recording import record_step
from tests.tiny_model import tiny_model


def _check(panel, params, opt, before):
    flat = flat_params(params)
    assert panel['rows']
    for r in panel['rows']:
        i = r['id']
        assert r['data'] == before[i]
        assert r['m'] == opt.m[i] and r['v'] == opt.v[i]
        assert r['new'] == flat[i].data                      # what Adam.step wrote
        assert r['delta'] == flat[i].data - before[i]


def test_fresh_optimizer_step_one_matches_adam():
    params, config, tok = tiny_model()
    trace = record_step(params, config, tok, 'emma')
    view = build_view(trace, param='layer0.attn_wq')
    ids = params_in_view(view)
    panel = adam_update(trace, ids)
    assert panel['step'] == 0 and panel['lr_t'] == 0.01 and 'fresh' in panel['source']
    before = [p.data for p in flat_params(params)]
    opt = Adam(flat_params(params))
    opt.step(0, 1000)
    _check(panel, params, opt, before)


def test_with_optimizer_state_matches_adam_on_a_later_step():
    params, config, tok = tiny_model()
    opt = Adam(flat_params(params))
    for step in range(3):
        record_step(params, config, tok, 'anna')
        opt.step(step, 1000)
    trace = record_step(params, config, tok, 'emma')
    state = {'step': 3, 'm': list(opt.m), 'v': list(opt.v)}
    ids = list(range(40))
    panel = adam_update(trace, ids, state=state)
    assert panel['lr_t'] == 0.01 * (1 - 3 / 1000)
    before = [p.data for p in flat_params(params)]
    opt.step(3, 1000)
    _check(panel, params, opt, before)
    assert any(r['m_prev'] != 0 for r in panel['rows'])


def test_bad_input_is_one_line(recorded_christopher):
    t = recorded_christopher
    with pytest.raises(UpdateError, match='is not a parameter'):
        adam_update(t, [t.meta['loss_id']])
    with pytest.raises(UpdateError, match=r"step must be an integer in 0\.\.999, got 1000"):
        adam_update(t, [0], step=1000)
    with pytest.raises(UpdateError, match="optimizer state 'm' has 3 entries"):
        adam_update(t, [0], state={'m': [0, 0, 0], 'v': [0, 0, 0]})


def test_the_update_table_is_one_for_every_page():
    """web/update_table.py (the explorer's panel and the tour's table): 4 digits shown, every
    digit in data-v and the title, text that is not ours escaped, a few cells as cards."""
    from graphviz_export.steps.update import matrix_summary
    from graphviz_export.web.update_table import update_html
    params, config, tok = tiny_model()
    trace = record_step(params, config, tok, 'emma')
    ids = params_in_view(build_view(trace, param='layer0.attn_wq'))
    upd = adam_update(trace, ids)
    rows = upd['rows']
    page = update_html(upd, rows[:10], matrix_summary(trace, rows), count=len(rows))
    assert page.count('<tr data-id=') == 10 and f'rows 1\u201310 of {len(rows)}' in page
    for r in rows[:10]:     # the bias-corrected moments shown; the moment behind each in its title
        for k in ('delta', 'grad'):
            assert f'<td data-k="{k}" data-v="{r[k]!r}" title="{r[k]!r}">{r[k]:.4g}</td>' in page
        for k, behind in (('m_hat', 'm'), ('v_hat', 'v')):
            assert (f'<td data-k="{k}" data-v="{r[k]!r}" title="{r[k]!r}; {behind} = {r[behind]!r}">'
                    f'{r[k]:.4g}</td>') in page
    one = update_html(dict(upd, source='a <checkpoint> & "more"'), rows[:1], [], count=1)
    assert 'a &lt;checkpoint&gt; &amp; &quot;more&quot;' in one and '<checkpoint>' not in one
    assert f'<tbody data-id="{rows[0]["id"]}">' in one and f'data-v="{rows[0]["new"]!r}">{rows[0]["new"]!r}<' in one
    assert update_html(None, [], [], count=0) == '<p>No parameters feed this view: Adam changes nothing here.</p>'


PANEL_VIEWS = [{'token': 3, 'level': 'block'}, {'token': 11, 'level': 'vector'}, {'param': 'layer0.mlp_fc1'},
               {'param': 'wte'}, {'param': 'layer0.attn_wq[3][5]'}, {'layer': 0, 'head': 1, 'token': 4},
               {'node': 'loss', 'depth': 2}]


@pytest.mark.parametrize('kw', PANEL_VIEWS, ids=[','.join(map(str, kw.values())) for kw in PANEL_VIEWS])
def test_the_update_panel_is_the_views_cells_and_the_whole_matrices_health(kw, recorded_christopher, monkeypatch):
    """The update panel reads the view's cells per run of ids and steps Adam once on every cell of the model, kept
    for the next view (issue 25: a look-up per id of a 400,000-id token view, and a second Adam step of the same
    cells for the health table, took 1.7 s at 4 x 64; then 1.5 s a view): the same answer as the definitions here."""
    from graphviz_export.steps.update import matrix_summary, params_per_node
    from graphviz_export.steps.update_health import health_html, update_health
    from graphviz_export.web.explorer.update_panel import paging, update_answer
    from microgpt.recording import NUM_STEPS, Trace
    from microgpt.recording.adam import adam_cell
    trace = Trace.from_binary(recorded_christopher.to_binary())     # its own cache: Adam not stepped yet
    view = build_view(trace, **kw)
    per = {n.name: [i for i in n.ids if trace.param_cell(i) is not None] for n in view.folded.nodes if n.kind != 'ref'}
    assert params_per_node(view) == per
    ids = sorted({i for cells in per.values() for i in cells})
    assert params_in_view(view) == ids and (ids or 'head' in kw or 'node' in kw)   # no cell in a head's view
    import graphviz_export.steps.update as update
    cells = []
    monkeypatch.setattr(update, 'adam_cell', lambda *a: cells.append(a) or adam_cell(*a))
    got = update_answer(trace, view, (None, None, NUM_STEPS, None), {'ckpt': None, 'train': None}, paging({'sort': 'delta'}))
    monkeypatch.undo()
    want = adam_update(trace, ids)['rows']
    assert got['count'] == len(want)
    assert all(r['name'] == trace.name(r['id']) for r in want)      # one name: the trace's, everywhere
    assert [r['name'] for r in got['rows']] == [trace.name(r['id']) for r in got['rows']]
    assert [m['largest'] for m in got['matrices']] == [trace.name(t['id']) for t in (
        max((r for r in want if r['matrix'] == m['name']), key=lambda r: abs(r['delta'])) for m in got['matrices'])]
    assert [r['id'] for r in got['rows']] == [r['id'] for r in sorted(want, key=lambda r: -abs(r['delta']))][:400]
    assert [r['delta'] for r in got['rows']] == [repr(r['delta']) for r in sorted(want, key=lambda r: -abs(r['delta']))][:400]
    assert [m['name'] for m in got['matrices']] == [m['name'] for m in matrix_summary(trace, want)]
    assert [m['cells'] for m in got['matrices']] == [m['cells'] for m in matrix_summary(trace, want)]
    matrices = [m['name'] for m in matrix_summary(trace, want)]
    every = adam_update(trace, [i for m in matrices for i in trace.param_nodes(m)])['rows']
    assert got['html'].endswith(health_html(update_health(trace, every)))
    n_cells = sum(r * c for r, c in trace.param_shapes.values())
    assert len(cells) == n_cells        # Adam stepped once on every cell of the model (the health table's too)
    cells.clear()
    monkeypatch.setattr(update, 'adam_cell', lambda *a: cells.append(a) or adam_cell(*a))
    again = update_answer(trace, build_view(trace, token=2), (None, None, NUM_STEPS, None), {'ckpt': None, 'train': None},
                          paging({}))
    monkeypatch.undo()
    assert cells == [] and again['count']   # a figure of the step: kept (update.every_cell), never stepped again
    assert got['nodes'] == {k: len(v) for k, v in per.items() if v}
