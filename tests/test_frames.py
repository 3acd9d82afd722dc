"""Frames of a folded view: order, ledgers and edge labels, checked against the Trace's own columns."""

import json
import math
import xml.etree.ElementTree as ET

import pytest

from graphviz_export.draw.escape import plain, record_field
from graphviz_export.draw.style import fmt
from graphviz_export.steps.edge_labels import path_points, place
from graphviz_export.steps.frame_texts import fitted, shown_at
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
            if e['count'] > 1:      # a folded edge: its norm over the source's members, its signs
                per = {}
                for p, k in scalar_edges:
                    if rank[p] >= 0:
                        per[trace.child[k]] = per.get(trace.child[k], 0.0) + trace.contrib[k]
                cs = [c for _, _, c in parts]
                assert e['norm'] == math.sqrt(math.fsum(v * v for v in per.values()))
                assert e['signs'] == ('0' if all(c == 0 for c in cs) else '+' if min(cs) >= 0 else
                                      '-' if max(cs) <= 0 else 'mixed')
                if 'local' not in e and e['signs'] in ('+', '-'):
                    rel = '\u2265' if e['signs'] == '+' else '\u2264'
                    assert e['text'] == f"\u03a3 of {e['count']} = {fmt(total)}, all {rel} 0"
                elif 'local' not in e and e['signs'] == 'mixed':
                    assert e['text'] == (f"\u2016{e['count']} contributions\u2016 = {fmt(e['norm'])}, "
                                         f"{e.get('note', 'signs mixed')}")
            if e['count'] == 1:
                (p, k), = scalar_edges
                assert e['local'] == trace.local[k] and e['upstream'] == trace.grad[p]
                if rank[p] >= 0:
                    assert e['contribution'] == trace.local[k] * trace.grad[p]
                labelled += 1
    if view.folded.level == 'scalar':
        assert labelled > 0


def test_a_softmax_edge_says_its_gradients_sum_to_0_and_gives_their_norm(recorded_christopher):
    """logits -> probs at vector level: 27 contributions whose signed sum cancels (~1e-17) would
    read as 'no gradient reaches the logits'; the label gives their norm, the logits' ‖grad‖."""
    trace = recorded_christopher
    view = build_view(trace, token=3, level='vector')
    fr = frames(view)
    nodes = {n.name: n for n in view.folded.nodes}
    [e] = [e for f in fr['frames'] for e in f['edges']
           if nodes[e['src']].scope.role == 'logits' and nodes[e['dst']].scope.role == 'probs']
    logits = [i for i in nodes[e['src']].ids if trace.scope_of(i).role == 'logits' and trace.op_name(i) != 'const'
              and any(trace.scope_of(p).role == 'probs' for p in trace.parents(i))]
    assert len(logits) == 27 and abs(e['contribution']) < 1e-12 and e['signs'] == 'mixed'
    norm = math.sqrt(math.fsum(trace.grad[i] ** 2 for i in logits))
    assert e["norm"] == pytest.approx(norm, rel=1e-12) and norm > 0.01
    assert e['text'] == f"\u2016{e['count']} contributions\u2016 = {fmt(e['norm'])}, softmax's gradients sum to 0"
    assert e['note'] == "softmax's gradients sum to 0"


def test_forward_order_is_topological(case):
    """Every computed node after what it reads; a source (a parameter, a cached key, a constant:
    nothing visible feeds it) is lit at the frame of its first reader, never on a frame of its own."""
    trace, view, _ = case
    fr = frames(view, 'forward')
    at = {name: d['frame'] for name, d in fr['nodes'].items()}
    edges = _logical_edges(view.folded)
    fed = {dst for _, dst in edges}
    for src, dst in edges:
        assert at[src] < at[dst] if src in fed else at[src] <= at[dst], (src, dst)
    for src in {s for s, _ in edges} - fed:
        assert at[src] == min(at[d] for s, d in edges if s == src), src
    assert [f['node'] for f in fr['frames']] == [n for n in fr['order'] if n in fed]
    assert {n for f in fr['frames'] for n in f.get('with', ())} == {s for s, _ in edges} - fed
    scalars = [f for f in fr['frames'] if 'data' in f]
    for f in scalars:
        assert f['data'] == trace.data[fr['nodes'][f['node']]['id']]


def test_forward_mode_follows_the_data_from_the_embedding(recorded_christopher):
    """The token view's first frame is its embedding, lit with wte and wpe (the rows it reads);
    no frame lights a parameter alone, and each matrix is lit when first read."""
    view = build_view(recorded_christopher, token=3, level='block')
    fr = frames(view, 'forward')
    names = {n.name: n for n in view.folded.nodes}
    first = fr['frames'][0]
    assert names[first['node']].scope.block == 'embed'
    assert sorted(names[w].scope.role for w in first['with']) == ['wpe', 'wte']
    assert not any(names[f['node']].scope.block == 'params' for f in fr['frames'])
    wq = next(n for n in names.values() if n.scope.role == 'layer0.attn_wq')
    reader = fr['frames'][fr['nodes'][wq.name]['frame']]['node']
    assert names[reader].scope.block == 'attn' and fr['nodes'][reader]['frame'] == 1


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


def test_each_grad_field_reads_the_engine_order_sum_of_what_has_arrived(case):
    """At every position before its frame a scalar's grad field reads 'grad ?' or the sum, in
    the engine's order (trace.uses), of the contributions from nodes already done (or from
    outside the view); from its own frame on, the field as drawn ('grad <4 digits>')."""
    trace, view, fr = case
    rank, loss = trace.backward_rank, trace.meta['loss_id']
    frame_of = {name: d['frame'] for name, d in fr['nodes'].items()}
    owner = {i: n.name for n in view.folded.nodes if n.kind != 'ref' for i in n.ids}
    checked = 0
    for d in fr['nodes'].values():
        if d['kind'] == 'matrix':                   # a heat-map: its grad column hidden, its largest |grad| '?'
            [line] = d['fields']
            assert line['shown'][0][1].endswith('(max |grad| ?)') and plain(line['drawn']) in view.source
            assert line['shown'][1] == [d['frame'] + 1, line['drawn']]
            rows = trace.param_shapes[view.selection.matrix][0]
            assert d['parts'] == [f'node-{name}_g{r}' for name in [k for k, v in fr['nodes'].items() if v is d]
                                  for r in range(rows)]
            continue
        if d['kind'] != 'scalar':
            field, norm = d['fields']               # a summary: unknown until its frame, then as drawn
            assert field['shown'] == [[0, 'grad ?'], [d['frame'] + 1, field['drawn']]]
            word = 'grad here' if field['drawn'].startswith('grad here') else 'grad'
            assert norm['shown'] == [[0, f'\u2016{word}\u2016 ?'], [d['frame'] + 1, norm['drawn']]]
            assert norm['drawn'].startswith(f'\u2016{word}\u2016 ')
            assert record_field(norm['drawn']) in view.source or plain(norm['drawn']) in view.source  # a record, a box
            checked += 1
            continue
        i = d['id']
        [field] = d['fields']
        assert field['drawn'] == f'grad {fmt(trace.grad[i])}'
        uses = [(1.0, -1)] if i == loss else [(c, frame_of.get(owner.get(p), -1)) for p, _, c in trace.uses(i)
                                              if rank[p] >= 0]
        for pos in range(d['frame'] + 3):
            got = shown_at(field, pos)
            if pos > d['frame']:
                assert got == [field['drawn']]
                continue
            arrived = [c for c, f in uses if f <= pos - 1]
            if not arrived:
                assert got == ['grad ?']
                continue
            s = 0.0
            for c in arrived:
                s += c
            k = f'({len(arrived)}/{len(uses)})'
            assert got[0] in (f'grad += {fmt(s)} {k}', f'+= {fmt(s)} {k}', f'+= {fmt(s)}'), (pos, got)
            checked += 1
    assert checked > 0


def test_forward_fields_hide_every_grad_and_each_value_until_its_frame(recorded_christopher):
    view = build_view(recorded_christopher, node='loss', depth=2, level='scalar')
    fr = frames(view, 'forward')
    for d in fr['nodes'].values():
        grad, data = d['fields']
        assert [shown_at(grad, p) for p in (0, d['frame'] + 1, len(fr['frames']))] == [['grad ?']] * 3
        assert shown_at(data, d['frame']) == ['data ?']
        assert shown_at(data, d['frame'] + 1) == [data['drawn']] == [f"data {fmt(recorded_christopher.data[d['id']])}"]


def test_a_running_sum_wider_than_its_field_drops_words_then_shrinks():
    drawn = 'grad 0.0001146'                        # 14 characters: room for 15.2
    # 17 characters: 80% of them fit a room of 15.2, not one of 13.2 (there the count is kept, the word goes)
    assert fitted(['grad += 0.5 (1/2)', '+= 0.5 (1/2)'], drawn) == ['grad += 0.5 (1/2)', round(15.2 / 17, 3)]
    assert fitted(['grad += 0.5 (1/2)', '+= 0.5 (1/2)'], 'grad -0.1234') == ['+= 0.5 (1/2)']
    assert fitted(['grad += 0.0001146 (1/1)', '+= 0.0001146 (1/1)', '+= 0.0001146'], drawn) == \
        ['+= 0.0001146 (1/1)', round(15.2 / 18, 3)]          # 23 * 0.8 > 15.2 >= 18 * 0.8
    assert fitted(['grad += 1.234e-05 (12/40)', '+= 1.234e-05 (12/40)', '+= 1.234e-05'], 'grad 1') == \
        ['+= 1.234e-05', round(7.2 / 12, 3)]                 # nothing fits: the last, shrunk


def test_label_places_are_on_the_edge_path():
    # a straight path from (0, 0) to (100, 0) as Graphviz writes one (a cubic segment)
    points = path_points('M0,0C33.33,0 66.67,0 100,0')
    assert [round(x, 1) for x, _ in points] == [50.0, 35.0, 65.0, 20.0, 80.0, 10.0, 90.0]
    at, _ = place('1 \u00d7 2 = 2', points, boxes=[], placed=[])
    assert at == [50.0, -3.0]                     # the middle, just above the line
    # a node on the middle (the label is ~47 wide): the first point along the path clear of it,
    # then a line above when no point on the path is clear
    at, box = place('1 \u00d7 2 = 2', points, boxes=[(40, -20, 60, 20)], placed=[])
    assert at == [10.0, -3.0]
    at, _ = place('1 \u00d7 2 = 2', points, boxes=[(30, -20, 70, 20)], placed=[])
    assert at[0] == 50.0 and at[1] < -20
    at, _ = place('1 \u00d7 2 = 2', points, boxes=[(40, -20, 60, 20)], placed=[box])    # another label there
    assert at == [90.0, -3.0]


@pytest.mark.parametrize('kw', [{'token': 11, 'level': 'block'}, {'layer': 0, 'head': 1, 'token': 4, 'level': 'scalar',
                                                                    'budget': 2000, 'edge_budget': 4000},
                                {'param': 'wte'}], ids=['token11', 'head-scalar', 'wte'])
def test_frames_read_their_edges_contributions_not_the_whole_column(kw, recorded_christopher, monkeypatch):
    """Frames read the contributions of the view's own edges (issue 25: building Trace.contrib for them took
    1.9 s of a 5 M-node step's first step-through): the same frames as when read from the whole column, and
    the column never asked for."""
    from microgpt.recording import Trace

    with_column = Trace.from_binary(recorded_christopher.to_binary())
    assert len(with_column.contrib) == len(with_column.child)     # the column built: the old reading
    want = frames(build_view(with_column, **kw))
    fresh = Trace.from_binary(recorded_christopher.to_binary())
    monkeypatch.setattr(Trace, 'contrib', property(lambda self: pytest.fail('the whole contributions column built')))
    got = frames(build_view(fresh, **kw))
    assert json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True)
    # the ledgers of every value too (groups=True), as the frames' ledgers read them
    assert ledgers(fresh, build_view(fresh, **kw).folded) == ledgers(with_column, build_view(with_column, **kw).folded)
