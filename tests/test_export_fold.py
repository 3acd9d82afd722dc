"""graphviz_export.fold: budgets, levels, expand, references, and nothing silently dropped."""

import math
import re

import pytest

from graphviz_export import build_view
from graphviz_export.fold import FANOUT_LIMIT, fold
from graphviz_export.fold.folding import _fold, _fold_keys, node_floor
from graphviz_export.select import select, token_view
from graphviz_export.spec import DEFAULT_BUDGET, DEFAULT_EDGE_BUDGET, MAX_BUDGET, MAX_EDGE_BUDGET
from microgpt.recording import Trace

MATRICES = ('wte', 'wpe', 'lm_head', 'layer0.attn_wq', 'layer0.attn_wk', 'layer0.attn_wv', 'layer0.attn_wo',
            'layer0.mlp_fc1', 'layer0.mlp_fc2')


def every_view(t):
    """Every kind of view of the 12-position trace, with a cell of each matrix."""
    yield from ({'token': p} for p in range(12))
    yield {'layer': 0}
    yield from ({'layer': 0, 'token': p} for p in (0, 6, 11))
    yield from ({'head': h} for h in range(4))
    yield from ({'head': h, 'token': p} for h in range(4) for p in (0, 11))
    yield from ({'param': f'{m}[1][2]'} for m in MATRICES)
    yield {'param': 'layer0.attn_wq[3][5]', 'depth': 3}
    yield from ({'param': m} for m in MATRICES)
    yield {'node': 'loss', 'depth': 3}
    yield {'node': t.meta['position_loss_ids'][5], 'depth': 2}


def dot_node_names(source):
    """Names of the nodes declared in DOT text (statements 'name [attrs]')."""
    return [n for n in re.findall(r'^\t+([A-Za-z_][\w]*) \[', source, re.M) if n not in ('graph', 'node', 'edge')]


def visible(names):
    """Drop what is not a node of the view: legend, notes, heat-map rows and row names (a matrix counts once)."""
    out = set()
    for n in names:
        if n.startswith('legend') or n == 'notes':
            continue
        out.add(re.sub(r'_[dgl]\d+$', '', n))
    return out


def test_auto_fits_the_budget_for_every_view_of_a_12_character_document(recorded_christopher):
    t = recorded_christopher
    levels, kinds = set(), set()
    for q in every_view(t):
        view = build_view(t, **q)
        st = view.stats
        assert st['fits'] and st['nodes'] <= DEFAULT_BUDGET and st['edges'] <= DEFAULT_EDGE_BUDGET, q
        assert not view.folded.notes, q
        # the DOT text draws exactly the counted nodes and edges
        assert len(visible(dot_node_names(view.source))) == st['nodes'], q
        drawn = [e for e in re.findall(r'^\t+(\w+) -> (\w+) \[(.*)\]$', view.source, re.M) if 'invis' not in e[2]]
        assert len(drawn) == st['edges'], q
        levels.add(st['level'])
        # auto chose the finest level that fits: the next finer one does not (once per kind of view)
        finer = {'vector': 'scalar', 'block': 'vector'}.get(st['level'])
        if finer and (view.selection.kind, st['level']) not in kinds:
            kinds.add((view.selection.kind, st['level']))
            assert not fold(t, view.selection, level=finer).stats['fits'], q
    assert levels == {'scalar', 'vector', 'block'}


@pytest.mark.parametrize('q', [{'token': 11}, {'layer': 0}, {'head': 2}, {'param': 'layer0.attn_wq[3][5]'},
                               {'param': 'wte'}, {'node': 'loss', 'depth': 3}])
@pytest.mark.parametrize('level', ['scalar', 'vector', 'block'])
def test_nothing_is_silently_dropped(recorded_christopher, q, level):
    t = recorded_christopher
    sel = select(t, **q)
    f = fold(t, sel, level=level)
    held = [i for n in f.nodes if n.kind != 'ref' for i in n.ids]
    assert sorted(held) == sorted(sel.nodes + sel.inputs + sel.outputs)        # each op in exactly one node
    # every scalar edge of the view is drawn, bundled into a drawn edge, or internal to a node
    inside = set(sel.nodes)
    edges = sum(len(t.children(p)) for p in sel.nodes) + sum(
        1 for p in sel.outputs for c in t.children(p) if c in inside)
    assert sum(e.count for e in f.edges) + f.stats['internal_edges'] == edges
    names = {n.name for n in f.nodes}
    assert all(e.src in names and e.dst in names for e in f.edges)


def test_levels_go_from_fine_to_coarse(recorded_christopher):
    t = recorded_christopher
    sel = select(t, head=1, token=0)
    counts = [fold(t, sel, level=lv).stats['nodes'] for lv in ('scalar', 'vector', 'block')]
    assert counts[0] > counts[1] > counts[2]
    f = fold(t, token_view(t, 11), level='vector')
    roles = sorted(n.scope.role for n in f.nodes if n.side == 'interior')
    assert roles.count('q') == 1 and roles.count('attn_logits') == 4       # one node per head's logits
    (q,) = [n for n in f.nodes if n.side == 'interior' and n.scope.role == 'q']
    assert len(q.ids) == 528 and len(q.values) == 16                        # "q = Wq.x, 16 values"
    f = fold(t, token_view(t, 11), level='block')
    blocks = sorted(n.scope.block for n in f.nodes if n.side == 'interior')
    # attention: q/k/v, one node per head, Wo, the residual add; the MLP and its residual add
    assert blocks == ['attn'] * 7 + ['embed', 'lm_head', 'loss', 'mlp', 'mlp']
    parts = [(n.scope.head, n.scope.role) for n in f.nodes if n.side == 'interior' and n.scope.block == 'attn']
    assert parts == [(None, None), (0, None), (1, None), (2, None), (3, None), (None, 'attn_out'),
                     (None, 'residual')]


def test_over_budget_is_said_not_hidden(recorded_christopher):
    t = recorded_christopher
    view = build_view(t, head=2, token=11, level='scalar')
    assert view.stats['nodes'] > 300 and not view.stats['fits']
    assert view.folded.notes[0].startswith('level scalar: ') and 'over the budget (150 nodes' in view.folded.notes[0]
    assert 'notes [' in view.source
    tight = build_view(t, token=11, budget=5)
    assert tight.stats['level'] == 'block' and tight.folded.notes[0].startswith('over budget: even level block has')


def test_expand_shows_the_named_scope_at_scalar_level(recorded_christopher):
    t = recorded_christopher
    scope = t.nodes(pos=11, layer=0, head=2, role='attn_weights')
    for pattern in ('pos11/layer0/attn/head2/attn_weights', 'head2/attn_weights', 'pos11/*/head2/attn_w*'):
        view = build_view(t, token=11, expand=[pattern])
        scalars = {n.ids[0] for n in view.folded.nodes if n.kind == 'scalar'}
        assert scalars == set(scope), pattern
        assert view.stats['level'] == 'vector' and view.stats['fits']
    assert set(dot_node_names(view.source)) >= {f'n{i}' for i in scope}
    # the rest stays folded: the other heads' softmax is one node each
    others = [n for n in view.folded.nodes if n.kind == 'group' and n.scope.role == 'attn_weights']
    assert sorted(n.scope.head for n in others) == [0, 1, 3]


def test_high_fan_out_nodes_are_drawn_once_and_referenced(recorded_christopher):
    t = recorded_christopher
    view = build_view(t, head=2)                        # keys of early positions feed every later position
    f = view.folded
    hubs = [n for n in f.nodes if n.fan_out]
    assert hubs and f.stats['refs'] > 0
    out = {}
    for e in f.edges:
        out[e.src] = out.get(e.src, 0) + 1
    assert max(out.values()) <= FANOUT_LIMIT
    for hub in hubs:
        assert hub.name not in out                      # unwired ...
        users = [n for n in f.nodes if n.kind == 'ref' and hub.name in n.refers]
        assert len(users) == hub.fan_out > FANOUT_LIMIT     # ... and named at each consumer
    # the rmsnorm scale (one pow node feeding 16 products) when expanded to scalars
    view = build_view(t, token=11, expand=['pos11/layer0/attn/rmsnorm'])
    (scale,) = [n for n in view.folded.nodes if n.kind == 'scalar' and t.op_name(n.ids[0]) == 'pow']
    assert scale.fan_out == 16
    refs = [n for n in view.folded.nodes if n.kind == 'ref' and scale.name in n.refers]
    assert len(refs) == 16 and re.search(r'label="\u2197 [^"]*x_norm\[\*\]@pos11"', view.source)


def test_focus_is_never_referenced(recorded_christopher):
    view = build_view(recorded_christopher, param='layer0.mlp_fc1[0][0]')
    (cell,) = [n for n in view.folded.nodes if n.focus]
    assert cell.fan_out == 0 and sum(e.src == cell.name for e in view.folded.edges) == 12


def test_an_expand_pattern_that_matches_nothing_lists_the_scopes(recorded_christopher):
    """The error names the first 8 scopes of the view and how many there are in all."""
    from microgpt.recording import TraceQueryError
    with pytest.raises(TraceQueryError) as e:
        build_view(recorded_christopher, token=11, expand=['nowhere'])
    msg = str(e.value)
    inner = sorted({recorded_christopher.scope[i] for i in recorded_christopher.nodes(pos=11)})
    assert msg.startswith("expand pattern 'nowhere' matches no scope in this view; its scopes: pos11/")
    assert msg.endswith(f", ... ({len(inner)} in all, plus the boundary's)") and len(inner) > 8


@pytest.mark.parametrize('query', [dict(token=2), dict(layer=0, head=1, token=2), dict(param='layer0.attn_wq[3][5]'),
                                   dict(node='loss', depth=3), dict(layer=0)])
def test_the_node_floor_never_exceeds_what_a_fold_draws(recorded_christopher, query):
    """Level auto skips a level when node_floor says it cannot fit: a floor above the real
    count would skip a level that fits."""
    from graphviz_export.fold import node_floor
    from graphviz_export.select import select as select_nodes
    t = recorded_christopher
    sel = select_nodes(t, **query)
    for level in ('scalar', 'vector'):
        drawn = fold(t, sel, level=level, budget=MAX_BUDGET, edge_budget=MAX_EDGE_BUDGET).stats['nodes']
        assert node_floor(t, sel, level, set()) <= drawn, (level, query)


def test_a_summary_is_coloured_by_its_largest_grad_first_id_on_ties(recorded_christopher):
    """grad_peak (whose grad colours a summary node) is the value with the largest |grad|,
    NaN counting as largest, the lowest id among equals."""
    from graphviz_export.fold.summary import figures
    t = recorded_christopher
    ids = sorted(t.nodes(pos=11, role='logits'))
    top = max(ids, key=lambda i: abs(t.grad[i]))
    pair = [min(i for i in ids if abs(t.grad[i]) < abs(t.grad[top])), top]
    assert pair[0] < top and figures(t, pair).grad_peak == top and figures(t, ids).grad_peak == top
    unused = t.param_nodes('wte[0][0]') + t.param_nodes('wte[1][0]')       # 'christopher' has no 'a' or 'b'
    assert [t.grad[i] for i in unused] == [0, 0] and figures(t, unused).grad_peak == unused[0]
    nan = Trace.from_json(t.to_json())
    nan.grad[ids[3]] = math.nan
    assert ids[3] != top and figures(nan, ids).grad_peak == ids[3]


def test_a_vector_layer_view_draws_its_rows_apart(recorded_christopher):
    """The layer view at every position, vector level: no drawn edge joins two positions' rows
    or comes from a parameter matrix; what a row reads from the others (cached k and v) and
    the matrices every row reads stand behind one reference per reading position and set of
    nodes read, whose edges name each source (nothing dropped: the count is kept)."""
    t = recorded_christopher
    sel = select(t, layer=0)
    f = fold(t, sel, level='vector')
    names = {n.name: n for n in f.nodes}
    for e in f.edges:
        a, b = names[e.src], names[e.dst]
        if e.kind != 'ref':
            assert not (a.side == 'interior' and a.scope.pos != b.scope.pos), (e.src, e.dst)
            assert a.scope.block != 'params', (e.src, e.dst)
    # position 5's heads read k and v of positions 0..4 through two references, one each
    refs5 = [n for n in f.nodes if n.kind == 'ref' and n.scope.pos == 5
             and {names[r].scope.role for r in n.refers} <= {'k', 'v'}]
    assert sorted(sorted(names[r].scope.pos for r in n.refers) for n in refs5) == [[0, 1, 2, 3, 4]] * 2
    for ref in refs5:
        fed = [e for e in f.edges if e.src == ref.name]
        assert sorted(names[e.dst].scope.head for e in fed) == [0, 1, 2, 3]
        assert all([s[0] for s in e.sources] == list(ref.refers) for e in fed)
    # each matrix drawn once, unwired, read by 12 rows
    params = [n for n in f.nodes if n.scope.block == 'params']
    assert params and all(n.fan_out == 12 for n in params)
    assert not {n.name for n in params} & {e.src for e in f.edges}


def test_references_between_rows_are_not_counted_against_the_node_budget(recorded_christopher):
    """A vector layer view's references between rows stand in for long edges and are plain
    text, so the budget counts every other node: the view fits a budget of exactly those
    nodes and not one less (a budget that counted the references, or counted them twice,
    would refuse the first or accept the second)."""
    t = recorded_christopher
    sel = select(t, layer=0)
    f = fold(t, sel, level='vector', edge_budget=MAX_EDGE_BUDGET)
    between = sum(1 for n in f.nodes if n.kind == 'ref' and n.between_rows)
    assert between > 0 and f.stats['edges'] <= MAX_EDGE_BUDGET
    others = len(f.nodes) - between
    assert fold(t, sel, level='vector', budget=others, edge_budget=MAX_EDGE_BUDGET).stats['fits']
    assert not fold(t, sel, level='vector', budget=others - 1, edge_budget=MAX_EDGE_BUDGET).stats['fits']


@pytest.mark.parametrize('q', [{'token': 11}, {'layer': 0}, {'param': 'layer0.attn_wq[3][5]', 'depth': 3}])
def test_the_node_counts_by_kind_are_those_of_the_drawing(recorded_christopher, q):
    """A view's stats (sent to the page, written with a saved view) count its drawn nodes by
    kind: the scalars read from the DOT (filled, square-cornered boxes; summaries are rounded,
    heat-maps and the legend striped), and scalars, summaries and references add up to the
    nodes drawn."""
    view = build_view(recorded_christopher, **q)
    st = view.stats
    styles = [m.group(1) for m in re.finditer(r'^\t+[A-Za-z_]\w* \[.*?style="?([\w,]+)', view.source, re.M)]
    scalars = sum(1 for s in styles if 'filled' in s.split(',') and 'rounded' not in s and 'striped' not in s)
    assert st['scalar_nodes'] == scalars
    assert st['scalar_nodes'] + st['group_nodes'] + st['refs'] == st['nodes']


def test_a_document_whose_keys_cannot_fit_folds_heads_in_at_once_as_two_passes_would(recorded_christopher):
    """_fold skips the heads-apart pass when its node floor is over the budget: the fold must be
    the one the two passes give (the first not fitting, the second taken)."""
    t = recorded_christopher
    sel = select(t, document=True)
    assert node_floor(t, sel, 'block', set()) > DEFAULT_BUDGET
    apart = _fold_keys(t, sel, 'block', set(), DEFAULT_BUDGET, DEFAULT_EDGE_BUDGET)
    assert not apart.stats['fits']
    two = _fold_keys(t, sel, 'block', set(), DEFAULT_BUDGET, DEFAULT_EDGE_BUDGET, heads=False)
    one = _fold(t, sel, 'block', set(), DEFAULT_BUDGET, DEFAULT_EDGE_BUDGET)
    assert (one.nodes, one.edges, one.stats) == (two.nodes, two.edges, two.stats)


@pytest.mark.parametrize('query', [dict(token=2), dict(token=11), dict(layer=0), dict(layer=0, head=1),
                                   dict(layer=0, token=11), dict(document=True)])
def test_the_interior_edge_floor_never_exceeds_the_edges_heads_apart_draws(recorded_christopher, query):
    """_fold skips the heads-apart pass when the run records' interior edges are over the edge
    budget: a floor above what that pass draws would fold heads in where they fit apart."""
    from graphviz_export.fold.floors import interior_edge_floor
    from graphviz_export.fold.folding import _group_key
    t = recorded_christopher
    sel = select(t, **query)
    apart = _fold_keys(t, sel, 'block', set(), MAX_BUDGET, MAX_EDGE_BUDGET)
    by = {n.name: n for n in apart.nodes}
    between = {(e.src, e.dst) for e in apart.edges if by[e.src].side == by[e.dst].side == 'interior'}
    floor = interior_edge_floor(t, sel, lambda s: _group_key(s, 'interior', 'block', ()))
    assert floor <= len(between) <= apart.stats['edges'], (query, floor, len(between))
    # a head's view is not whole scopes, the document's long edges become references: no floor there
    assert floor > 0 or 'head' in query or 'document' in query, query


def test_a_layer_at_every_position_folds_heads_in_without_building_them_apart(recorded_christopher, monkeypatch):
    """A 12-position layer, heads apart, draws more edges between its groups than level auto allows
    (each head reads every earlier position's keys): _fold knows it from the run records and builds
    heads folded in once, the fold the two passes gave (the first not fitting, the second taken)."""
    from graphviz_export.fold import folding
    t = recorded_christopher
    sel = select(t, layer=0)
    apart = _fold_keys(t, sel, 'block', set(), DEFAULT_BUDGET, DEFAULT_EDGE_BUDGET)
    assert not apart.stats['fits'] and apart.stats['edges'] > DEFAULT_EDGE_BUDGET
    two = _fold_keys(t, sel, 'block', set(), DEFAULT_BUDGET, DEFAULT_EDGE_BUDGET, heads=False)
    assert two.stats['fits']
    passes = []
    real = folding._fold_keys
    monkeypatch.setattr(folding, '_fold_keys', lambda *a, **k: passes.append(k.get('heads', True)) or real(*a, **k))
    one = _fold(t, sel, 'block', set(), DEFAULT_BUDGET, DEFAULT_EDGE_BUDGET)
    assert passes == [False]
    assert (one.nodes, one.edges, one.stats) == (two.nodes, two.edges, two.stats)
