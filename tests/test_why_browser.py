""""Why is this grad what it is?" in real headless chromium: `max:grad` lists the largest grads and a
row opens one; a click on a node lists its paths from the loss (products + remainder = grad, bit for
bit), outlines the top path's route in the drawing, and hovering another path moves the outline; a
cached key's grad is split by the positions that read it; its identity carries a badge; the node check
runs in the background and says ok. Expected figures come from a trace recorded here, not the page."""

import struct

import pytest

from microgpt.checks.diagnose import node_check_data
from microgpt.checks.faults import FAULTS, inject
from microgpt.recording import record_step
from microgpt.recording.paths import top_paths
from microgpt.train import fresh_model
from tests.explorer_helpers import running_server
from tests.test_explorer_browser import _missing, open_page, wait_view

if _missing:
    pytestmark = pytest.mark.skip(reason=f"browser tests need {' and '.join(_missing)}")


@pytest.fixture(scope='module')
def server():
    with running_server(doc='emma', seed=42, check=node_check_data) as s:     # as `explore` starts it
        yield s


@pytest.fixture(scope='module')
def trace():
    return record_step(*fresh_model(42), 'emma')


@pytest.fixture
def page(browser, server):
    ctx = browser.new_context(viewport={'width': 1600, 'height': 900}, bypass_csp=True)
    pg = ctx.new_page()
    pg.errors = []
    pg.on('console', lambda m: pg.errors.append(m.text) if m.type == 'error' else None)
    pg.on('pageerror', lambda e: pg.errors.append(str(e)))
    pg.server = server
    yield pg
    ctx.close()


def bits(x):
    return struct.pack('<d', x)


def test_max_grad_lists_the_largest_grads_and_a_row_opens_that_node(page, trace):
    open_page(page)
    url = page.evaluate('explorer.view.url')
    page.fill('#q', 'max:grad')
    page.press('#q', 'Enter')
    page.wait_for_selector('#results .row.match')
    wait_view(page, url)
    # the 20 largest |grad| over every node, constants too, ties by id: sorted here
    want = sorted(range(len(trace)), key=lambda i: (-abs(trace.grad[i]), i))[:20]
    labels = page.locator('#results .row.match .lbl').all_inner_texts()
    assert labels == [f'{trace.name(i)} · grad {trace.grad[i]:.6g}' for i in want]
    top = want[0]
    # for 'emma' the largest is the mean's 1/n, whose grad is the sum of the position losses (16.13)
    assert trace.op_name(top) == 'const' and trace.data[top] == 1 / len(trace.position_losses())
    total = 0.0
    for x in trace.position_losses():
        total += x
    assert trace.grad[top] == total and f'{total:.4g}' == '16.13'
    assert int(page.evaluate('explorer.state.sel')) == top        # Enter opened the first row
    # the second row: a probability, opened in its neighbourhood, selected, its panel the trace's
    url = page.evaluate('explorer.view.url')
    page.locator('#results .row.match').nth(1).click()
    wait_view(page, url)
    assert int(page.evaluate('explorer.state.sel')) == want[1]
    # the panel is the new node's once its details arrive (the first row's panel stays until then)
    page.wait_for_function("(id) => { const t = document.querySelector('#panel h3 small');"
                           " return t && t.textContent === '#' + id; }", arg=want[1], timeout=15000)
    assert page.locator('#panel [data-k=grad]').inner_text() == repr(trace.grad[want[1]])
    assert page.locator('#pathsum').inner_text().startswith('paths + remainder = grad, bit for bit')
    assert page.errors == []


def drawn_route(page, trace, nodes):
    """The drawn nodes and edge ids a path of node ids runs through, worked out here from the
    view's node table: a scalar drawn as itself, else the one group of its scope and position."""
    table = page.evaluate('explorer.view.nodes')
    edges = set(page.evaluate('[...document.querySelectorAll("#graph g.edge")].map(g => g.id)'))
    names = []
    for i in nodes:
        name = f'n{i}' if f'n{i}' in table else None
        if name is None:
            groups = [n for n, d in table.items() if d['k'] == 'g' and d['path'] == trace.scope_path(i)
                      and trace.scope_of(i).pos in d.get('positions', [])]
            name = groups[0] if len(groups) == 1 else None
        if name is not None and name not in names:
            names.append(name)
    route_edges = [f'edge-{b}-{a}' for a, b in zip(names, names[1:]) if f'edge-{b}-{a}' in edges]
    return set(names), set(route_edges)


def outlined(page):
    return (set(page.evaluate('[...document.querySelectorAll("#graph g.node.route")].map(g => g.dataset.name)')),
            set(page.evaluate('[...document.querySelectorAll("#graph g.edge.route")].map(g => g.id)')))


def test_a_click_on_a_node_lists_its_paths_and_outlines_the_top_route_and_hover_moves_it(page, trace):
    sid = next(s for s, sc in enumerate(trace.scopes) if sc.role == 'k' and sc.block == 'attn' and sc.pos == 0
               and sc.layer == 0)
    k0 = trace.names().scope_values(sid)[0]           # k[0]@pos0: read by every position
    open_page(page, f'view=node&node={k0}&depth=2&level=auto')
    page.locator(f'#graph g.node[data-name="n{k0}"]').first.click()            # the one click
    page.wait_for_selector('#panel #paths')
    api = top_paths(trace, k0)
    # the products: each the locals along its route multiplied as backward does, from 1.0 at the loss
    for p in api:
        c = 1.0
        for e in p['edges']:
            c = trace.local[e] * c
        assert bits(c) == bits(p['product'])
    shown = page.locator('#paths [data-k=product]').all_inner_texts()
    assert shown == [repr(p['product']) for p in api]
    s = 0.0
    for t in shown:
        s += float(t)
    for t in page.locator('#paths [data-k=remainder]').inner_text().replace('+', ' ').split():
        s += float(t)
    assert bits(s) == bits(trace.grad[k0]) and page.locator('#paths [data-k=pathgrad]').inner_text() == repr(trace.grad[k0])
    # the top path's route is outlined in the drawing, and only it
    page.wait_for_function('document.querySelector("#graph g.node.route")')
    first = drawn_route(page, trace, api[0]['nodes'])
    assert len(first[0]) >= 3 and first[1] and outlined(page) == first
    # hovering the second path moves the outline to its route (a different position reads the key)
    second = drawn_route(page, trace, api[1]['nodes'])
    assert second != first
    page.locator('#paths tr.path').nth(1).hover()
    assert outlined(page) == second
    page.mouse.move(5, 5)
    page.locator('#status').hover()
    assert outlined(page) == first
    # a cached key's grad, position by position: every position from its own on reads it
    by = {}
    for user, _local, c in trace.uses(k0):
        pos = trace.scope_of(user).pos
        by[pos] = by.get(pos, 0.0) + c
    rows = page.locator('#kv tr').all_inner_texts()
    assert [r.split('\t') for r in rows[:len(by)]] == [[f'pos {p}', repr(by[p])] for p in sorted(by)]
    assert sorted(by) == list(trace.positions())
    # its identity, checked on the tape: a badge on its drawn node, and the line in the panel
    assert page.locator(f'#graph g.badge[data-node="n{k0}"]').get_attribute('data-kinds') == 'cached-kv'
    assert page.locator('#identities li.ok[data-kind=cached-kv]').count() == 1
    # the node check ran in the background and found nothing wrong with the correct engine
    page.wait_for_function('document.querySelector("#checkline").className === "ok"', timeout=60000)
    assert page.locator('#checkline').inner_text().startswith('node check: ok')
    assert page.errors == []


# each port op's right derivative, as engine.py writes it (inputs' data, output's data, exponent, which input)
RIGHT = {'add': lambda xs, out, n, k: 1.0, 'mul': lambda xs, out, n, k: xs[1 - k],
         'pow': lambda xs, out, n, k: n * xs[0] ** (n - 1), 'log': lambda xs, out, n, k: 1 / xs[0],
         'exp': lambda xs, out, n, k: out, 'relu': lambda xs, out, n, k: float(xs[0] > 0)}


def wrong_locals(trace, op):
    """{node: [input k whose stored local derivative is not the right one]} of the nodes of `op`."""
    out = {}
    for i in range(len(trace)):
        if trace.op_name(i) != op:
            continue
        xs = [trace.data[c] for c in trace.children(i)]
        bad = [k for k in range(len(xs)) if trace.local[trace.child_ptr[i] + k]
               != RIGHT[op](xs, trace.data[i], trace.pow_exponent.get(i), k)]
        if bad:
            out[i] = bad
    return out


@pytest.mark.parametrize('fault', sorted(FAULTS))
def test_the_page_marks_what_each_injected_fault_bends(browser, fault):
    """`explore --inject FAULT`: the line above the status bar says the check fails and names the
    first failure; one click shows it, marked red, with found and expected in the panel."""
    with inject(fault):
        trace = record_step(*fresh_model(42), 'emma')
        with running_server(doc='emma', seed=42, check=node_check_data) as s:
            ctx = browser.new_context(viewport={'width': 1600, 'height': 900}, bypass_csp=True)
            try:
                pg = ctx.new_page()
                pg.server = s
                open_page(pg)
                pg.wait_for_function('document.querySelector("#checkline").className === "bad"', timeout=60000)
                line = pg.locator('#checkline').inner_text()
                first = pg.evaluate('explorer.page.check.first')
                url = pg.evaluate('explorer.view.url')
                pg.click('#firstfail')
                wait_view(pg, url)
                pg.wait_for_selector('#panel #checkfail')
                panel = pg.locator('#checkfail').inner_text()
                # the marks come with the view's /api/check answer, which may arrive after the panel's
                pg.wait_for_function('explorer.page.check && explorer.page.check.status === "done" && '
                                     'document.querySelectorAll("#graph g.node.failing").length > 0', timeout=30000)
                marked = pg.evaluate('[...document.querySelectorAll("#graph g.node.failing")].map(g => g.dataset.name)')
                sel = int(pg.evaluate('explorer.state.sel'))
            finally:
                ctx.close()
    assert line.startswith('node check: FAILS') and f'fault injected: {fault}' in line
    node = first['node']
    assert sel == node and f'n{node}' in marked
    op = FAULTS[fault].op
    if fault == 'accumulate-overwrite':         # every local is right; the sums are not
        assert all(not wrong_locals(trace, o) for o in RIGHT)
        s = 0.0
        for _, _, c in trace.uses(node):
            s += c
        assert first['kind'] == 'sum' and first['found'] == trace.grad[node] != s
        assert first['expected'] == pytest.approx(s, rel=1e-12)
        return
    wrong = wrong_locals(trace, op)
    assert first['kind'] == 'local' and node in wrong and first['op'] == op
    k = wrong[node][0]
    xs = [trace.data[c] for c in trace.children(node)]
    assert first['found'] == trace.local[trace.child_ptr[node] + k]
    # the check's expected value is measured (a central difference of the op): the rule, to ~1e-9
    assert first['expected'] == pytest.approx(RIGHT[op](xs, trace.data[node], trace.pow_exponent.get(node), k), rel=1e-6)
    assert f"{len(wrong)} failing node" in line
    assert f"found {first['found']:.6g}, expected {first['expected']:.6g}" in panel


def test_a_scripts_bent_log_is_marked_with_its_line_and_the_rule_it_breaks(browser, tmp_path):
    """The issue's case: a micrograd-style script whose log derivative is bent (out.grad * self.data for
    out.grad / self.data). The page's check names the log node, the engine line where its derivative
    is written, found and expected; the panel shows d log(x)/dx = 1/x and that the stored one breaks it."""
    from microgpt.recording.script import record_script
    from tests.test_gradcheck_script import install, line_of
    new = 'self.grad += out.grad * self.data'
    trace = record_script(install(tmp_path, 'closures.py', 'every_op.py',
                                  edit=('self.grad += out.grad / self.data', new)))
    line = line_of(tmp_path / 'engine.py', new)
    (log,) = [i for i in range(len(trace)) if trace.op_name(i) == 'log']
    x = trace.data[trace.children(log)[0]]
    with running_server(trace=trace, check=node_check_data) as s:
        ctx = browser.new_context(viewport={'width': 1600, 'height': 900}, bypass_csp=True)
        try:
            pg = ctx.new_page()
            pg.server = s
            open_page(pg)
            pg.wait_for_function('document.querySelector("#checkline").className === "bad"', timeout=60000)
            text = pg.locator('#checkline').inner_text()
            url = pg.evaluate('explorer.view.url')
            pg.click('#firstfail')
            wait_view(pg, url)
            pg.wait_for_selector('#panel #checkfail')
            panel = pg.locator('#checkfail').inner_text()
            rule = pg.locator('#inputs tr.rule.bad [data-k=rule]').all_inner_texts()
            marked = pg.evaluate('[...document.querySelectorAll("#graph g.node.failing")].map(g => g.dataset.name)')
            sel = int(pg.evaluate('explorer.state.sel'))
        finally:
            ctx.close()
    assert text.startswith('node check: FAILS — 1 failing node') and f'its derivative is written at engine.py:{line}' in text
    assert sel == log and f'n{log}' in marked
    assert f'engine.py line {line}: your derivative of log is wrong' in panel
    assert f'found {x:.6g}, expected {1 / x:.6g}' in panel
    assert rule == [f'd log(x)/dx = 1/x = 1/{x:.4g} = {1 / x:.4g}; stored {x:.4g} does not follow this rule']


def test_why_a_grad_is_zero_names_the_dead_relus_in_the_panel(page, trace):
    """A cell of mlp_fc1 whose unit's ReLU is dead at every position: its grad is 0, and the panel says
    so: every route crosses a local derivative of 0, at that unit's ReLU of each position."""
    relus = [trace.names().scope_values(s) for s, sc in enumerate(trace.scopes) if sc.role == 'relu']
    dead = next(j for j in range(len(relus[0])) if all(trace.data[r[j]] == 0 for r in relus))
    name = f'layer0.mlp_fc1[{dead}][3]'
    cell = trace.param_nodes(name)[0]
    assert trace.grad[cell] == 0
    open_page(page, f'view=param&param={name}&level=auto')
    page.locator(f'#graph g.node[data-name="n{cell}"]').first.click()
    page.wait_for_selector('#panel #whyzero')
    assert page.locator('#whyzero').get_attribute('data-kind') == 'zero-local'
    assert f'dead ReLU (input <= 0) x{len(relus)}' in page.locator('#whyzero').inner_text()
    rows = [r.split('\t') for r in page.locator('#zeroedges tr').all_inner_texts()]
    assert [(label, float(x)) for label, _, x in rows] == [(trace.name(r[dead]), trace.data[trace.children(r[dead])[0]])
                                                           for r in sorted(relus, key=lambda r: r[dead])]
    assert all(float(x) <= 0 for *_, x in rows)
    assert page.errors == []
