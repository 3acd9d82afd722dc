"""Frames of a folded view: order, ledgers and edge labels, checked against the Trace's own columns."""

import json
import xml.etree.ElementTree as ET

import pytest

from graphviz_export.steps.frames import (
    FramesError,
    frames,
    ledger_sum,
    ledgers,
    order,
    visible_graph,
)
from graphviz_export.view import build_view, render_view
from tests.export_helpers import tiny_trace

VIEWS = [
    {'token': 3},                                   # vector (auto)
    {'token': 11, 'level': 'block'},
    {'token': 11, 'level': 'vector'},
    {'layer': 0},                                   # block (auto), referenced hubs
    {'layer': 0, 'head': 2, 'token': 5},
    {'layer': 0, 'head': 1, 'token': 4, 'level': 'scalar', 'budget': 2000, 'edge_budget': 4000},
    {'param': 'layer0.attn_wq[3][5]'},
    {'param': 'wte'},
    {'node': 'loss', 'depth': 4, 'level': 'scalar'},
    {'node': 6000, 'depth': 2, 'level': 'scalar'},
    {'token': 2, 'expand': ('attn/head0/attn_weights',)},
]
IDS = [','.join(f'{k}={v}' for k, v in kw.items()) for kw in VIEWS]


@pytest.fixture(scope='module', params=VIEWS, ids=IDS)
def case(request, recorded_christopher):
    view = build_view(recorded_christopher, **request.param)
    return recorded_christopher, view, frames(view)


def _logical_edges(folded):
    _, consumers, _ = visible_graph(folded)
    return [(s, d) for s, ds in consumers.items() for d in ds]


def test_backward_order_is_reverse_topological_and_each_node_final_once(case):
    _trace, view, fr = case
    names = [n.name for n in view.folded.nodes if n.kind != 'ref']
    seq = [f['node'] for f in fr['frames']]
    assert sorted(seq) == sorted(names) and len(seq) == len(set(seq))
    at = {name: k for k, name in enumerate(seq)}
    edges = _logical_edges(view.folded)
    assert edges
    for src, dst in edges:          # data flows src -> dst: dst's grad is final first
        assert at[dst] < at[src], (src, dst)
    assert all(fr['nodes'][n]['frame'] == at[n] for n in names)


def test_backward_starts_at_the_loss_with_grad_one(recorded_christopher):
    view = build_view(recorded_christopher, node='loss', depth=2, level='scalar')
    fr = frames(view)
    loss = recorded_christopher.meta['loss_id']
    assert fr['frames'][0]['node'] == f'n{loss}' and fr['frames'][0]['grad'] == 1.0
    assert fr['nodes'][f'n{loss}']['ledger'] == [[-1, 'seed', None, 1.0, 1.0]]


def test_every_ledger_completes_exactly_to_the_recorded_grad(case):
    trace, view, fr = case
    rank = trace.backward_rank
    books = ledgers(trace, view.folded)
    checked = 0
    for n in view.folded.nodes:
        if n.kind == 'ref':
            continue
        own = fr['nodes'][n.name]['frame']
        for i, rows in books[n.name].items():
            assert ledger_sum(rows) == trace.grad[i], (n.name, i)       # exactly, not approx
            if i == trace.meta['loss_id']:
                continue
            # the entries are the engine's additions, in the engine's order (trace.uses), reached parents only
            assert [r[3] for r in rows] == [c for p, _, c in trace.uses(i) if rank[p] >= 0]
            assert all(r[0] <= own for r in rows)       # nothing arrives after the node is final
            if n.kind == 'scalar' and len(rows) > 1:    # running sums: engine-order sums of what has arrived
                for r in rows:
                    if r[4] is not None:
                        s = 0.0
                        for q in rows:
                            if q[0] <= r[0]:
                                s += q[3]
                        assert r[4] == s
            checked += 1
        if n.kind == 'scalar':
            assert fr['nodes'][n.name]['ledger'] == books[n.name][n.ids[0]]
    assert checked > 0


def test_every_edge_label_is_the_traces_local_derivative_and_contribution(case):
    trace, view, fr = case
    nodes = {n.name: n for n in view.folded.nodes}
    rank = trace.backward_rank
    labelled = 0
    for f in fr['frames']:
        dst = nodes[f['node']]
        for e in f['edges']:
            src = nodes[e['src']]
            members = set(src.ids)
            scalar_edges = [(p, k) for p in dst.ids for k in range(trace.child_ptr[p], trace.child_ptr[p + 1])
                            if trace.child[k] in members]
            assert e['count'] == len(scalar_edges)
            parts = sorted((rank[p], p, trace.contrib[k]) for p, k in scalar_edges if rank[p] >= 0)
            total = 0.0
            for _, _, c in parts:
                total += c
            assert e['contribution'] == total
            if e['count'] == 1:
                (p, k), = scalar_edges
                assert e['local'] == trace.local[k] and e['upstream'] == trace.grad[p]
                if rank[p] >= 0:
                    assert e['contribution'] == trace.local[k] * trace.grad[p]
                labelled += 1
    if view.folded.level == 'scalar':
        assert labelled > 0


def test_forward_order_is_topological(case):
    trace, view, _ = case
    fr = frames(view, 'forward')
    at = {f['node']: f['frame'] for f in fr['frames']}
    for src, dst in _logical_edges(view.folded):
        assert at[src] < at[dst]
    scalars = [f for f in fr['frames'] if 'data' in f]
    for f in scalars:
        assert f['data'] == trace.data[fr['nodes'][f['node']]['id']]


def test_frames_are_json(recorded_christopher):
    fr = frames(build_view(recorded_christopher, token=3))
    assert json.loads(json.dumps(fr, allow_nan=False)) == fr


def test_bad_mode_is_one_line(recorded_christopher):
    view = build_view(recorded_christopher, node='loss', depth=1)
    with pytest.raises(FramesError, match="mode 'sideways' is not one of: backward, forward"):
        order(recorded_christopher, view.folded, 'sideways')


@pytest.mark.parametrize('renderer', ['wasm', 'native'])
def test_every_id_a_frame_lights_is_drawn_by_both_renderers(renderer):
    """The ids come from the DOT (draw/ids.py): nodes, edges, a matrix's cluster and the
    reference nodes a referenced hub's edges leave from, whichever renderer lays it out."""
    for kw in ({'param': 'layer0.attn_wk'}, {'layer': 0}, {'node': 'loss', 'depth': 2, 'level': 'scalar'}):
        view = build_view(tiny_trace(), **kw)
        root = ET.fromstring(render_view(view, 'svg', renderer=renderer))
        drawn = {g.get('id'): g.get('class') for g in root.iter('{http://www.w3.org/2000/svg}g')}
        fr = frames(view)
        lit = {f['svg']: 'node' for f in fr['frames']}
        for f in fr['frames']:
            lit.update({e['svg']: 'edge' for e in f['edges']})
            lit.update({e['via']: 'node' for e in f['edges'] if 'via' in e})
        matrices = {f'node-{n.name}' for n in view.folded.nodes if n.kind == 'matrix'}
        assert lit and {k: drawn.get(k) for k in lit} == {k: 'cluster' if k in matrices else v for k, v in lit.items()}
        assert any('via' in e for f in fr['frames'] for e in f['edges']) or kw != {'layer': 0}
