"""graphviz_export.select: each view holds what it promises, and its boundary is exact."""

import math

import pytest

from graphviz_export import build_view
from graphviz_export.fold import fold
from graphviz_export.select import (
    SCATTERED,
    _boundary,
    _scopes_boundary,
    head_view,
    layer_view,
    matrix_view,
    node_view,
    param_view,
    select,
    token_view,
)
from microgpt.recording import TraceQueryError
from microgpt.recording.runs import id_runs
from microgpt.recording.shares import whole_scopes


def boundary_of(t, interior):
    inside = set(interior)
    kids = {c for i in inside for c in t.children(i)} - inside
    users = {p for i in inside for p in t.parents(i)} - inside - kids
    return kids, users


@pytest.mark.parametrize('pos', [0, 5, 11])
def test_token_view_holds_one_position_and_marks_the_rest_as_boundary(recorded_christopher, pos):
    t = recorded_christopher
    sel = token_view(t, pos)
    assert sel.nodes == tuple(t.nodes(pos=pos))
    assert {t.scope_of(i)[0] for i in sel.nodes} == {pos}
    kids, users = boundary_of(t, sel.nodes)
    assert (set(sel.inputs), set(sel.outputs)) == (kids, users)
    assert all(t.scope_of(i)[0] != pos for i in sel.inputs + sel.outputs)
    # inputs: parameters and (after position 0) keys and values cached from earlier positions
    roles = {t.scope_of(i)[4] for i in sel.inputs if t.scope_of(i)[2] != 'params'}
    assert roles == (set() if pos == 0 else {'k', 'v'})
    assert all(t.scope_of(i)[0] < pos for i in sel.inputs if t.scope_of(i)[0] is not None)
    # outputs: later positions reading this one's keys and values, and the mean loss
    assert all(t.scope_of(i)[0] is None or t.scope_of(i)[0] > pos for i in sel.outputs)
    assert t.meta['position_loss_ids'][pos] in sel.nodes

    # folded and drawn: every visible node holding an op of another position is a boundary node
    view = build_view(t, token=pos)
    for n in view.folded.nodes:
        if n.kind != 'ref' and any(t.scope_of(i)[0] != pos for i in n.ids):
            assert n.side in ('input', 'output'), n.name
            assert 'dashed' in _node_attrs(view, n.name)['style']


def _node_attrs(view, name):
    """The attributes of node `name` as written in the DOT source."""
    import re
    for line in view.source.splitlines():
        if line.startswith(f'\t{name} [') or re.match(rf'\t+{name} \[', line):
            return dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|[^ \]]+)', line))
    raise AssertionError(f'node {name} not in the DOT source')


def test_layer_and_head_views(recorded_christopher):
    t = recorded_christopher
    sel = layer_view(t, 0)
    assert set(sel.nodes) == set(t.nodes(layer=0)) and sel.positions == tuple(range(12))
    assert {t.scope_of(i)[2] for i in sel.nodes} == {'attn', 'mlp'}
    sel = layer_view(t, 0, pos=4)
    assert {t.scope_of(i)[0] for i in sel.nodes} == {4}
    sel = head_view(t, 0, 2, pos=7)
    assert {t.scope_of(i)[3] for i in sel.nodes} == {2}
    assert {t.scope_of(i)[4] for i in sel.nodes} == {'attn_logits', 'attn_weights', 'head_out'}
    # a head reads this position's q, and k and v of every position up to it
    assert {(t.scope_of(i)[0], t.scope_of(i)[4]) for i in sel.inputs} == \
        {(7, 'q')} | {(p, r) for p in range(8) for r in ('k', 'v')}
    assert {t.scope_of(i)[4] for i in sel.outputs} == {'attn_out'}


@pytest.mark.parametrize('spec', ['layer0.attn_wq[3][5]', 'wte[2][3]', 'lm_head[0][0]', 'layer0.mlp_fc1[10][4]',
                                  'wpe[11][15]'])
def test_param_cell_view_contributions_sum_to_its_grad(recorded_christopher, spec):
    t = recorded_christopher
    sel = param_view(t, spec)
    (cell,) = sel.focus
    uses = t.parents(cell)
    assert set(sel.nodes) == {cell, *uses}
    folded = fold(t, sel)
    assert folded.level == 'scalar'
    edges = {int(e.dst[1:]): e for e in folded.edges if e.src == f'n{cell}'}
    assert set(edges) == set(uses) and all(e.kind == 'focus' for e in edges.values())
    total = 0
    for p, local, contrib in t.uses(cell):      # the order backward added them
        assert edges[p].local == local and edges[p].contrib == contrib == local * t.grad[p]
        total += edges[p].contrib
    assert total == t.grad[cell]                # exactly
    assert len(uses) > 0 and t.grad[cell] != 0


def test_param_cell_depth_reaches_downstream(recorded_christopher):
    t = recorded_christopher
    (cell,) = t.param_nodes('layer0.attn_wq[3][5]')
    sel = param_view(t, 'layer0.attn_wq[3][5]', depth=3)
    assert set(sel.nodes) == set(t.descendants([cell], 3))
    assert max(t.descendants([cell], 3).values()) == 3


def test_matrix_view_folds_uses_per_position_and_they_add_up_to_the_grads(recorded_christopher):
    t = recorded_christopher
    cells = t.param_nodes('layer0.attn_wq')
    sel = matrix_view(t, 'layer0.attn_wq')
    assert sel.focus == tuple(cells) and sel.matrix == 'layer0.attn_wq'
    folded = fold(t, sel)
    (m,) = [n for n in folded.nodes if n.kind == 'matrix']
    assert m.ids == tuple(cells)
    out = [e for e in folded.edges if e.src == m.name]
    assert len(out) == 12          # one bundle of uses per position
    share = {}                     # per cell, the contributions of each position's uses
    for e in out:
        (dst,) = [n for n in folded.nodes if n.name == e.dst]
        (pos,) = dst.positions
        per_cell = {c: sum(con for p, _, con in t.uses(c) if t.scope_of(p)[0] == pos) for c in cells}
        assert e.count == len(cells)
        assert e.contrib_norm == pytest.approx(math.sqrt(sum(v * v for v in per_cell.values())), rel=1e-12)
        for c, v in per_cell.items():
            share[c] = share.get(c, 0.0) + v
    assert all(share[c] == pytest.approx(t.grad[c], rel=1e-9, abs=1e-15) for c in cells)


def test_node_view_depth_and_direction(recorded_christopher):
    t = recorded_christopher
    loss = t.meta['loss_id']
    sel = node_view(t, 'loss', depth=2, direction='ancestors')
    assert sel.focus == (loss,) and set(sel.nodes) == set(t.ancestors([loss], 2))
    (p,) = t.param_nodes('wpe[0][0]')
    sel = node_view(t, p, depth=2, direction='descendants')
    assert set(sel.nodes) == set(t.descendants([p], 2))
    both = node_view(t, 50000, depth=1)
    assert set(both.nodes) == {50000, *t.children(50000), *t.parents(50000)}


def test_select_dispatch_and_default_is_the_last_token(recorded_christopher):
    t = recorded_christopher
    assert select(t).kind == 'token' and select(t).query == {'token': 11}
    assert select(t, param='wte').kind == 'matrix'
    assert select(t, param='wte[1][1]').kind == 'param'
    assert select(t, node=5).kind == 'node'
    assert select(t, head=1).query == {'layer': 0, 'head': 1, 'token': None}
    assert select(t, layer=0, token=3).query == {'layer': 0, 'token': 3}
    assert select(t, token=3).title == "token 3 of 'christopher': 'r' -> 'i'"


@pytest.mark.parametrize('kwargs,message', [
    ({'token': 12}, 'position 12 is not in this trace; positions: 0..11'),
    ({'layer': 1}, 'layer 1 is not in this trace; layers: 0..0'),
    ({'head': 4}, 'head 4 is not in this trace; heads: 0..3'),
    ({'param': 'attn_wq'}, "unknown parameter 'attn_wq'; parameters: wte, wpe, lm_head, layer0.attn_wq"),
    ({'param': 'wte[27][0]'}, 'cell [27][0] is outside wte, which is 27x16'),
    ({'node': 10 ** 6}, 'node 1000000 is not in this trace; node ids are 0..103674'),
    ({'token': 3, 'expand': ['head9']}, "expand pattern 'head9' matches no scope in this view; its scopes: "
                                        "pos3/embed/embed, pos3/embed/rmsnorm, pos3/layer0/attn/rmsnorm, "),
])
def test_a_view_of_something_missing_says_what_exists(recorded_christopher, kwargs, message):
    with pytest.raises(TraceQueryError) as e:
        build_view(recorded_christopher, **kwargs)
    assert str(e.value).startswith(message) and '\n' not in str(e.value)


@pytest.mark.parametrize('kwargs,message', [
    ({'level': 'fine'}, "level 'fine' is not one of: auto, scalar, vector, block"),
    ({'budget': 0}, 'budget must be in 1..5000, got 0'),
    ({'budget': 1.5}, 'budget must be a whole number, got 1.5'),
    ({'edge_budget': -1}, 'edge_budget must be in 1..20000, got -1'),
    ({'node': 5, 'depth': -1}, 'depth must be in 0..64, got -1'),
    ({'node': 5, 'direction': 'up'}, "direction 'up' is not one of: both, ancestors, descendants"),
])
def test_bad_options_are_value_errors_naming_what_is_allowed(recorded_christopher, kwargs, message):
    with pytest.raises(ValueError) as e:
        build_view(recorded_christopher, **kwargs)
    assert str(e.value) == message and not isinstance(e.value, TraceQueryError)


def test_the_boundary_of_whole_scopes_from_the_run_records_is_the_one_the_edges_give(recorded_christopher):
    """A token, layer, head or document view takes its inputs and outputs from the run records;
    each must be what one look at every edge of the interior gives."""
    t = recorded_christopher
    for q in ({'token': 0}, {'token': 5}, {'token': 11}, {'layer': 0}, {'layer': 0, 'token': 3},
              {'layer': 0, 'head': 2}, {'layer': 0, 'head': 0, 'token': 0}, {'document': True}):
        sel = select(t, **q)
        runs = id_runs(list(sel.nodes))
        whole = whole_scopes(t, runs, len(sel.nodes))
        assert whole is not None, q
        inputs, outputs = _boundary(t, sel.nodes)
        assert (list(sel.inputs), list(sel.outputs)) == (inputs, outputs) == _scopes_boundary(t, whole), q
        assert inputs or outputs, q
    # token 0's outputs are the later positions reading its keys and values
    assert len(select(t, token=0).outputs) > 0


def test_views_hold_the_ids_a_plain_pass_finds_in_order(recorded_christopher):
    # the document's ids are made from the runs of non-parameters, and scope views' ids are
    # taken as Trace.nodes gives them (no sort): each is the ascending ids one pass finds
    t = recorded_christopher
    kinds = [t.scopes[t.scope[i]] for i in range(len(t))]
    ops = [t.op_name(i) for i in range(len(t))]
    assert select(t, document=True).nodes == tuple(i for i, op in enumerate(ops) if op != 'param')
    for q, holds in (({'token': 11}, lambda s: s.pos == 11), ({'layer': 0}, lambda s: s.layer == 0),
                     ({'layer': 0, 'token': 4}, lambda s: s.layer == 0 and s.pos == 4),
                     ({'layer': 0, 'head': 2}, lambda s: s.layer == 0 and s.head == 2)):
        want = tuple(i for i, s in enumerate(kinds) if holds(s))
        assert want and select(t, **q).nodes == want, q


def test_a_matrix_views_boundary_from_its_scattered_uses_is_the_one_the_edges_give(recorded_christopher):
    """A matrix's uses are hundreds of id ranges (every other id of a dot product): their edges
    are sliced and set-differenced in C. Inputs are the children outside the interior, outputs
    the users outside it that are not inputs: what one look at every edge gives."""
    t = recorded_christopher
    for name in t.param_names:
        sel = select(t, param=name)
        runs = id_runs(list(sel.nodes))
        kids, users = boundary_of(t, sel.nodes)
        assert (list(sel.inputs), list(sel.outputs)) == (sorted(kids), sorted(users)), name
        if name == 'layer0.mlp_fc1':
            assert len(runs) > SCATTERED and sel.inputs and sel.outputs      # the scattered path, not empty


def test_the_document_views_ids_are_every_non_parameter_as_runs_whatever_their_shape():
    """select.non_params: the runs of non-parameter ids found in C, against one look at each op: runs at
    id 0 and at the last id, runs of one id, a trace without parameters (one run), only parameters (none)."""
    from array import array
    from types import SimpleNamespace

    from graphviz_export.select import non_params
    from microgpt.recording.runs import Ids
    names = ['add', 'param', 'mul']
    for ops in ([0, 0, 1, 1, 2, 1, 0], [1, 0, 1, 2, 2, 1], [1, 1, 1], [0], [2, 1, 2, 1, 2], [], [1, 0]):
        t = SimpleNamespace(op=array('B', ops), op_names=names)
        got = non_params(t)
        assert isinstance(got, Ids) and tuple(got) == tuple(i for i, k in enumerate(ops) if k != 1), ops
        assert list(got.runs) == id_runs([i for i, k in enumerate(ops) if k != 1]), ops
    t = SimpleNamespace(op=array('B', [0, 2, 0]), op_names=['add', 'mul', 'exp'])     # no parameters: one run
    assert list(non_params(t).runs) == [(0, 3)]


def test_the_document_view_kept_as_runs_draws_what_its_ids_as_a_tuple_draw(recorded_christopher):
    """The whole document's ids are kept as runs (Ids) from select through fold to the drawing: its
    selection and every view of it (levels, an expanded scope) are those its ids as a plain tuple give,
    DOT and JSON byte for byte, stats and each node's ids the same."""
    from dataclasses import replace

    from graphviz_export.select import _make
    from microgpt.recording.runs import Ids
    t = recorded_christopher
    sel = select(t, document=True)
    assert isinstance(sel.nodes, Ids)
    plain = _make(t, 'document', sel.title, tuple(sel.nodes), query={'document': True}, ordered=True)
    assert isinstance(plain.nodes, tuple) and plain == sel
    assert (plain.inputs, plain.outputs, plain.positions) == (sel.inputs, sel.outputs, sel.positions)
    slow = replace(sel, nodes=tuple(sel.nodes))
    for kw in ({}, {'level': 'block'}, {'level': 'vector'}, {'expand': ('pos3/layer0/attn/*',)},
               {'budget': 400, 'edge_budget': 900}):
        fast, want = build_view(t, document=True, selection=sel, **kw), build_view(t, document=True, selection=slow, **kw)
        assert fast.source == want.source and fast.stats == want.stats and fast.to_json() == want.to_json(), kw
        assert [tuple(n.ids) for n in fast.folded.nodes] == [tuple(n.ids) for n in want.folded.nodes], kw
        assert any(isinstance(n.ids, Ids) for n in fast.folded.nodes), kw
