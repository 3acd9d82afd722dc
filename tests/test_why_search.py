"""Searching the extremes over HTTP: `max:grad`, `max:contrib` and `max:dw` list the largest first,
each row a view that selects it; the figures recomputed here from the trace (and Adam's step as the
update panel takes it); another max: word is a 400 with one line naming the three."""

import html
import re
from urllib.parse import quote

import pytest

from graphviz_export.steps.update import adam_update
from microgpt.recording import record_step
from microgpt.train import fresh_model
from tests.explorer_helpers import get_json, running_server


@pytest.fixture(scope='module')
def server():
    with running_server(doc='emma', seed=42) as s:
        yield s


@pytest.fixture(scope='module')
def trace():
    return record_step(*fresh_model(42), 'emma')


def search(server, q):
    return get_json(server, f'/api/search?q={quote(q)}')


def test_max_contrib_lists_the_largest_use_of_one_edge(server, trace):
    status, d = search(server, 'max:contrib')
    assert status == 200 and d['unit'] == 'extreme' and d['count'] == 20
    edges = []
    for user in range(len(trace)):
        for e in range(trace.child_ptr[user], trace.child_ptr[user + 1]):
            edges.append((-abs(trace.local[e] * trace.grad[user]), e, user, trace.child[e], trace.local[e] * trace.grad[user]))
    edges.sort()
    for m, (_, _e, user, child, c) in zip(d['matches'], edges[:20]):
        assert m['value'] == c and m['hl'] == str(child)
        assert m['label'].startswith(f'{trace.name(user)} → {trace.name(child)}: contribution {c:.6g}')
    first = d['matches'][0]
    assert f"sel={first['hl']}" in first['url']


def test_max_grad_and_max_dw_are_the_largest_first(server, trace):
    _, d = search(server, 'max:grad')
    want = sorted(range(len(trace)), key=lambda i: (-abs(trace.grad[i]), i))[:20]
    assert [int(m['hl']) for m in d['matches']] == want and [m['value'] for m in d['matches']] == [trace.grad[i] for i in want]
    assert d['matches'][0]['url'] == f'view=node&node={want[0]}&depth=2&level=auto&hl={want[0]}&sel={want[0]}'
    status, d = search(server, 'max:dw')
    assert status == 200
    ids = [i for n in trace.param_names for i in trace.param_nodes(n)]
    rows = adam_update(trace, ids)['rows']
    top = sorted(rows, key=lambda r: (-abs(r['delta']), r['id']))[:20]
    assert [(int(m['hl']), m['value']) for m in d['matches']] == [(r['id'], r['delta']) for r in top]
    assert all('view=param' in m['url'] for m in d['matches'])     # a parameter opens at its cell


def test_another_max_word_is_one_line_400(server):
    status, d = search(server, 'max:loss')
    assert status == 400 and list(d) == ['error'] and '\n' not in d['error']
    assert d['error'] == "cannot read 'max:loss': the extremes are max:grad, max:contrib, max:dw"


def tooltip_grads(svg, name):
    """(a, b) of the grad range a folded node's tooltip states: a boundary parameter group's share
    of this view, else its values' grads; None when it states none."""
    m = re.search(r'<g id="a_node&#45;' + re.escape(name) + r'"><a xlink:title="([^"]*)"', svg)
    lines = html.unescape(m.group(1)).split('\n')
    for prefix in ("this view's share", 'grad '):
        for ln in lines:
            if ln.startswith(prefix) and ' .. ' in ln:
                a, b = ln.split(': ')[-1].removeprefix('grad ').split(', L2')[0].split(' .. ')
                return float(a), float(b)
    return None


@pytest.mark.parametrize('query', ['', 'level=vector&token=4', 'view=param&param=layer0.attn_wq[3][5]&level=auto',
                                   'view=head&token=2&layer=0&head=1&level=auto'])
def test_a_folded_nodes_colour_states_the_largest_grad_its_label_states(server, query):
    """The overlay colours a group by mag[0]; it is the largest |grad| of the range its label and
    tooltip state (not of constants or partial sums hidden inside it: for 'emma' the 1/n constant's 16.13)."""
    status, v = get_json(server, f'/api/view?{query}')
    assert status == 200
    checked = 0
    for name, n in v['nodes'].items():
        if n['k'] != 'g':
            continue
        rng = tooltip_grads(v['svg'], name)
        if rng is None:
            continue
        assert n['mag'][0] == max(abs(rng[0]), abs(rng[1])), (name, n, rng)
        checked += 1
    assert checked >= 1
