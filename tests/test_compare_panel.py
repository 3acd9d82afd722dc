"""Compare mode's numbers, each in its frame, over real HTTP and in a real Chromium.

"before" is the model the page shows (its loss is the page's loss); "after" is that same model
after N training steps of the reference run (or a second checkpoint); Δ = after − before. A sum of
contributions is set against a grad only within one frame (each recording's uses, summed in its own
backward order, are its grad bit for bit); the Δ column holds each edge's Δcontribution, the number
the picture draws, and its rounded differences are never summed against Δgrad. "≠ grad" appears
only where a sum really differs from its grad.

The expected numbers come from recordings made here with the port's own loop, never from the server.
"""

import html
import math
import random
import re

import pytest

from graphviz_export.draw.style import fmt
from graphviz_export.steps.diff import delta_trace
from graphviz_export.web.explorer.clicks import compare_details, node_details
from microgpt.engine import Value
from microgpt.recording import Trace, record, record_step
from microgpt.recording.sourcemap import SourceMap
from microgpt.tags import scope
from microgpt.train import Run, fresh_model, train_step
from tests.explorer_helpers import get_json, running_server
from tests.test_explorer_browser import click_node, open_page, shot, wait_view
from tests.test_explorer_server import NAMES

CELL = 'layer0.attn_wq[3][5]'
STEPS = 3


@pytest.fixture(scope='module')
def names_file(tmp_path_factory):
    path = tmp_path_factory.mktemp('names') / 'names.txt'
    path.write_text('\n'.join(NAMES) + '\n')
    return path


@pytest.fixture(scope='module')
def before():
    """The step the page shows: 'emma' on the fresh seed-42 model."""
    params, config, tok = fresh_model(42)
    return record_step(params, config, tok, 'emma')


@pytest.fixture(scope='module')
def after():
    """The page's model after STEPS steps of the reference run: its documents shuffled by
    Random(42) (the reference's first draw), one per step, Adam on its 1000-step schedule."""
    docs = list(NAMES)
    random.Random(42).shuffle(docs)
    params, config, tok = fresh_model(42)
    run = Run(config, tok, params, None, docs)
    for k in range(STEPS):
        train_step(run, k, 1000)
    return record_step(params, config, tok, 'emma')


@pytest.fixture(scope='module')
def server(names_file):
    with running_server(doc='emma', seed=42, data=str(names_file)) as s:
        yield s


def engine_sum(trace, i):
    total = 0.0
    for _, _, c in trace.uses(i):       # in that recording's backward order, from 0
        total += c
    return total


def edge_contrib(trace, parent, child):
    """The contribution backward sent along the one edge parent -> child of `trace`."""
    (k,) = [k for k in range(trace.child_ptr[parent], trace.child_ptr[parent + 1]) if trace.child[k] == child]
    return trace.local[k] * trace.grad[parent]


def test_before_is_the_model_the_page_shows(server, before, after):
    status, info = get_json(server, '/api/info')
    assert status == 200 and info['loss'] == before.loss
    status, v = get_json(server, f'/api/view?view=param&param={CELL}&level=auto&cmp=steps:{STEPS}')
    assert status == 200
    c = v['compare']
    assert c['loss_before'] == info['loss'] and c['loss_after'] == after.loss
    assert c['loss_delta'] == after.loss - before.loss
    assert c['labels'] == ['fresh seed 42', f'after {STEPS} training steps']
    assert c['models'][:2] == ['fresh seed 42, the model this page shows', f'fresh seed 42 after {STEPS} training steps']
    assert c['models'][2].startswith(f"the model this page shows, trained on the reference run's first {STEPS} names")
    cell = before.param_nodes(CELL)[0]
    status, d = get_json(server, f'/api/node?view=param&param={CELL}&level=auto&cmp=steps:{STEPS}&id={cell}')
    assert [float(x) for x in d['compare']['data']] == [before.data[cell], after.data[cell],
                                                        after.data[cell] - before.data[cell]]
    status, plain = get_json(server, f'/api/node?id={cell}')
    assert d['compare']['data'][0] == plain['data'] and d['compare']['grad'][0] == plain['grad']


def test_each_number_of_the_compare_panel_is_in_its_frame(server, before, after):
    q = f'view=param&param={CELL}&level=auto&cmp=steps:{STEPS}'
    status, v = get_json(server, f'/api/view?{q}&grads=1')
    assert status == 200
    cell = before.param_nodes(CELL)[0]
    status, d = get_json(server, f'/api/node?{q}&id={cell}')
    assert status == 200
    c = d['compare']
    parents = [u['id'] for u in d['uses']]
    assert parents == [p for p, _, _ in after.uses(cell)] and len(parents) == 5
    for u, row in zip(d['uses'], c['uses']):
        b, a = edge_contrib(before, u['id'], cell), edge_contrib(after, u['id'], cell)
        assert [float(x) for x in row] == [b, a, a - b]
        assert float(u['contrib']) == a - b         # the Δ frame's contribution: a difference of products
    # the picture's edge labels ('#k  Δcontribution', in backward's order) are the same numbers
    drawn = dict(re.findall(r'>#(\d) \xa0([^<]+)</text>', html.unescape(v['svg'])))
    assert drawn == {str(k): fmt(float(row[2])) for k, row in enumerate(c['uses'], 1)}
    # and the cell's record says its Δgrad is the difference of the two sums
    assert '= \u0394 of the \u03a3 of 5 contributions' in html.unescape(v['svg'])
    assert '= \u03a3 of 5 contributions' not in html.unescape(v['svg'])
    # each frame's sum against its own grad; the sums' Δ is the difference of the sums
    sb, sa = engine_sum(before, cell), engine_sum(after, cell)
    assert sb == before.grad[cell] and sa == after.grad[cell]
    assert [float(x) for x in c['sums']] == [sb, sa, sa - sb]
    assert [float(x) for x in c['grad']] == [before.grad[cell], after.grad[cell], after.grad[cell] - before.grad[cell]]
    assert c['sum_is_grad'] == [True, True]
    assert 'uses_sum' not in d and 'sum_is_grad' not in d     # no sum across frames


def tampered(trace, i):
    """A copy of `trace` whose grad of node i is one ulp off the sum of its contributions."""
    t = Trace.from_json(trace.to_json())
    t.grad[i] = math.nextafter(t.grad[i], math.inf)
    return t


def test_a_sum_that_is_not_the_grad_says_so_in_its_own_frame(before, after):
    cell = before.param_nodes(CELL)[0]
    delta = delta_trace(before, after)
    assert node_details(before, cell, SourceMap())['sum_is_grad'] is True
    assert node_details(tampered(before, cell), cell, SourceMap())['sum_is_grad'] is False
    n = len(before.uses(cell))
    assert compare_details(before, after, delta, cell, n)['sum_is_grad'] == [True, True]
    bad_before = tampered(before, cell)
    got = compare_details(bad_before, after, delta_trace(bad_before, after), cell, n)
    assert got['sum_is_grad'] == [False, True]
    bad_after = tampered(after, cell)
    got = compare_details(before, bad_after, delta_trace(before, bad_after), cell, n)
    assert got['sum_is_grad'] == [True, False]


def square(x0):
    """The trace of y = x * x at x = x0: one parent with two edges to x (node 1)."""
    x = Value(x0)
    with record() as tape:
        with scope(role='x'):
            y = x * x
        y.backward()
    return tape.to_trace()


def test_a_node_used_twice_by_one_parent_pairs_its_edges_in_order():
    """x*x: one parent, two edges to x; each frame's rows pair edge for edge."""
    before, after, x = square(2.0), square(3.5), 1
    delta = delta_trace(before, after)
    uses = before.uses(x)
    assert len(uses) == 2 and uses[0][0] == uses[1][0]
    got = compare_details(before, after, delta, x, 2)
    want_b = [c for _, _, c in before.uses(x)]
    want_a = [c for _, _, c in after.uses(x)]
    assert [[float(v) for v in row] for row in got['uses']] == [[b, a, a - b] for b, a in zip(want_b, want_a)]
    assert got['sum_is_grad'] == [True, True]


def test_inputs_list_their_contributions_not_their_local_derivatives(server, before):
    # an op whose grad is not 1: its inputs' contributions are local x grad, not the local
    i = next(i for i in before.nodes(pos=2, layer=0, head=1, role='attn_weights')
             if before.op_name(i) == 'mul' and abs(before.grad[i]) not in (0.0, 1.0))
    status, d = get_json(server, f'/api/node?id={i}')
    assert status == 200
    locals_, contribs = before.local_grads(i), before.contributions(i)
    assert [float(x['local']) for x in d['inputs']] == locals_
    assert [float(x['contrib']) for x in d['inputs']] == contribs == [lg * before.grad[i] for lg in locals_]
    assert [float(x['contrib']) for x in d['inputs']] != locals_


# -- in a real Chromium -------------------------------------------------------------------------------
def new_page(browser, server):
    ctx = browser.new_context(viewport={'width': 1600, 'height': 900}, bypass_csp=True)
    pg = ctx.new_page()
    pg.errors = []
    pg.on('console', lambda m: pg.errors.append(m.text) if m.type == 'error' else None)
    pg.on('pageerror', lambda e: pg.errors.append(str(e)))
    pg.server = server
    return ctx, pg


def cells(pg, selector):
    return pg.evaluate('s => Object.fromEntries([...document.querySelectorAll(s)].map(td => '
                       '[td.dataset.k, td.textContent]))', selector)


def test_the_compare_page_names_both_models_and_states_each_frame(browser, server, before, after):
    ctx, page = new_page(browser, server)
    try:
        cell = before.param_nodes(CELL)[0]
        open_page(page, f'view=param&param={CELL}&level=auto')
        assert page.locator('#positions .lbl').inner_text().startswith(f'loss {before.loss:.4f}')
        url = page.evaluate('explorer.view.url')
        page.click('#comparebtn')
        page.fill('#cmpsteps', str(STEPS))
        page.click('#comparemenu button[data-how=steps]')
        wait_view(page, url)
        page.wait_for_selector('#comparebar:not([hidden])')
        bar = page.locator('#comparebar')
        # the main bar, not small print: which two models, each with its loss
        assert bar.locator('.hint').count() == 0
        assert page.locator('#cmpbefore').inner_text() == (
            f'before: fresh seed 42, the model this page shows, loss {before.loss:.6f}')
        assert page.locator('#cmpafter').inner_text() == (
            f'after: fresh seed 42 after {STEPS} training steps, loss {after.loss:.6f}')
        click_node(page, f'n{cell}')
        page.wait_for_selector('#panel #compare')
        facts = page.locator('#facts').inner_text()
        assert 'Δdata' in facts and 'Δgrad' in facts
        rows = page.evaluate('[...document.querySelectorAll("#uses tr")].slice(1, 6).map(r => '
                             '[...r.querySelectorAll("td[data-k]")].map(td => +td.textContent))')
        want = []
        for p, _, _ in after.uses(cell):
            b, a = edge_contrib(before, p, cell), edge_contrib(after, p, cell)
            want.append([b, a, a - b])
        assert rows == want
        sums = cells(page, '#uses tr.sum td[data-k]')
        sb, sa = engine_sum(before, cell), engine_sum(after, cell)
        assert [float(sums[k]) for k in ('sum0', 'sum1', 'sumd')] == [sb, sa, sa - sb]
        assert page.locator('#panel [data-k=check0]').inner_text() == 'before: Σ = grad, exactly'
        assert page.locator('#panel [data-k=check1]').inner_text() == 'after: Σ = grad, exactly'
        assert '≠' not in page.locator('#panel').inner_text()
        shot(page, '14-compare-panel')
        assert page.errors == []
    finally:
        ctx.close()


def test_the_panel_says_not_equal_when_a_sum_is_not_its_grad(browser, before):
    cell = before.param_nodes(CELL)[0]
    with running_server(trace=tampered(before, cell)) as bad, running_server(trace=before) as good:
        for srv, verdict in ((good, '= grad, exactly'), (bad, '≠ grad')):
            ctx, page = new_page(browser, srv)
            try:
                open_page(page, f'view=param&param={CELL}&level=auto')
                click_node(page, f'n{cell}')
                page.wait_for_selector('#panel #uses')
                text = page.locator('#panel').inner_text()
                assert verdict in text
                assert ('= grad, exactly' in text) == (srv is good)
                # an input's contribution column holds contributions (local x grad), not locals
                i = next(i for i in before.nodes(pos=2, layer=0, head=1, role='attn_weights')
                         if before.op_name(i) == 'mul' and abs(before.grad[i]) not in (0.0, 1.0))
                page.evaluate('j => explorer.setState({sel: j}, {replace: true})', i)
                page.wait_for_function('j => document.querySelector("#panel h3") && '
                                       'document.querySelector("#panel h3").textContent.includes("#" + j)', arg=i)
                page.wait_for_selector('#panel #inputs')
                got = [float(x) for x in page.locator('#inputs [data-k=contrib]').all_inner_texts()]
                assert got == before.contributions(i) != before.local_grads(i)
                assert page.errors == []
            finally:
                ctx.close()


def test_overlay_magnitudes_of_groups_are_over_what_their_labels_state():
    """The overlay's (largest |grad|, largest |grad x data|) of every node of a token view, against
    a plain loop here: a group over its values, a boundary parameter group over this view's share
    of each cell's grad (the uses from inside the view, summed); a NaN grad wins (it is what the
    overlay must show), in whichever member it sits."""
    from graphviz_export.fold.summary import Interior
    from graphviz_export.view import build_view
    from graphviz_export.web.explorer.clicks import magnitudes

    def largest(xs):
        xs = list(xs)
        return math.nan if any(map(math.isnan, xs)) else max(xs, default=0.0)

    def expected(trace, n, inside):
        if n.kind == 'group' and n.side != 'interior' and n.scope.block == 'params':
            pairs = [(math.fsum(c for p, _, c in trace.uses(i) if p in inside), trace.data[i])
                     for i in n.ids if any(p in inside for p, _, _ in trace.uses(i))]
        else:
            pairs = [(trace.grad[i], trace.data[i]) for i in (n.values if n.kind == 'group' and n.values else n.ids)]
        return largest(abs(g) for g, _ in pairs), largest(abs(g * d) for g, d in pairs)

    trace = record_step(*fresh_model(42), 'emma')
    view = build_view(trace, token=3)
    inside = set(view.selection.nodes)
    nodes = [n for n in view.folded.nodes if n.kind != 'ref']
    kinds = {(n.kind, n.side, n.scope.block == 'params') for n in nodes if n.kind == 'group'}
    assert ('group', 'interior', False) in kinds and any(k[2] for k in kinds), kinds
    for n in nodes:
        assert magnitudes(trace, n, Interior(trace, view.selection.nodes)) == expected(trace, n, inside), n.name
    group = next(n for n in nodes if n.kind == 'group' and n.side == 'interior' and len(n.values or n.ids) > 2)
    members = group.values or group.ids
    trace.grad[members[len(members) // 2]] = math.nan
    # a view's nodes keep what they read of their trace (summary.once; a trace is not changed once
    # recorded): the changed trace's figures are those of a view drawn on it
    view = build_view(trace, token=3)
    group = next(n for n in view.folded.nodes if n.name == group.name)
    got = magnitudes(trace, group, Interior(trace, view.selection.nodes))
    assert math.isnan(got[0]) and math.isnan(got[1])
