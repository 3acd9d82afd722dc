"""A drawn node's columns read once per view (fold/summary.py: node_column, group_figures,
group_magnitudes, node_op_counts, node_scopes) say what a plain walk over every id says: on
a matrix's uses (16,384-id groups at 4 x 64, read per arithmetic progression), token views,
a layer and the whole document; the figures' peak found from the grads' two ends is the
smallest id of largest |grad| (ties, NaN, infinities, -0.0); and what is kept on a node is
kept for its trace only (a played step's numbers are its own)."""

import math
import random
from array import array
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as hs

from graphviz_export import build_view
from graphviz_export.fold.summary import (
    group_figures,
    group_magnitudes,
    node_column,
    node_op_counts,
    node_scopes,
    progressions,
)
from microgpt.data import Tokenizer
from microgpt.model import GPTConfig, init_params
from microgpt.recording.figures import figures_of
from microgpt.recording.step import record_step

VIEWS = ({'param': 'layer0.mlp_fc1'}, {'param': 'lm_head'}, {'param': 'layer0.attn_wq'}, {'token': 11},
         {'token': 3, 'level': 'vector'}, {'layer': 0}, {'document': True})


def plain_figures(ids, ds, gs):
    """min/max of data and grad skipping NaN (NaN when all are), the grads' L2 norm (math.fsum of
    squares), the peak: the smallest id whose |grad| is largest, NaN and infinities first."""
    def lo_hi(xs):
        kept = [x for x in xs if not math.isnan(x)]
        return (min(kept), max(kept)) if kept else (math.nan, math.nan)
    (d_lo, d_hi), (g_lo, g_hi) = lo_hi(ds), lo_hi(gs)
    broken = [i for i, g in zip(ids, gs) if not math.isfinite(g)]
    if broken:
        peak = min(broken)
    else:
        top = max(abs(g) for g in gs)
        peak = min(i for i, g in zip(ids, gs) if abs(g) == top)
    try:
        norm = math.sqrt(math.fsum(g * g for g in gs))
    except (ValueError, OverflowError):
        norm = None     # not drawn here
    return d_lo, d_hi, g_lo, g_hi, norm, peak


def same(a, b):
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def drawn_groups(trace, q):
    return [n for n in build_view(trace, **q).folded.nodes if n.kind != 'ref']


def test_a_nodes_columns_are_its_ids_read_one_by_one(recorded_christopher):
    t = recorded_christopher
    columns = {'data': t.data, 'grad': t.grad, 'op': t.op, 'scope': t.scope, 'value': t.index('value')}
    strided = 0
    for q in VIEWS:
        for n in drawn_groups(t, q):
            for values, ids in ((True, n.values or n.ids), (False, n.ids)):
                for name, col in columns.items():
                    assert list(node_column(col, n, values)) == [col[i] for i in ids], (q, n.name, name)
                assert node_scopes(t, n, values) == {t.scope[i] for i in ids}, (q, n.name)
            strided += n.__dict__.get('_strides', {}).get(True) is not None
    assert strided >= 24        # the matrix views' use groups were read per progression


def test_a_nodes_values_and_ids_are_read_apart():
    """A node whose values are not its ids, both scattered: each read as itself (the progressions
    kept per node are kept for each of the two)."""
    col = array('d', range(1000))
    n = SimpleNamespace(ids=tuple(range(0, 800, 2)), values=tuple(range(1, 800, 4)))
    for _ in range(2):
        assert list(node_column(col, n, True)) == list(map(float, n.values))
        assert list(node_column(col, n, False)) == list(map(float, n.ids))


def test_a_groups_figures_and_magnitudes_are_a_plain_walks(recorded_christopher):
    t = recorded_christopher
    seen = 0
    for q in VIEWS:
        for n in drawn_groups(t, q):
            if n.kind != 'group':
                continue
            vals = list(n.values)
            ds, gs = [t.data[i] for i in vals], [t.grad[i] for i in vals]
            fig = group_figures(t, n)
            want = plain_figures(vals, ds, gs)
            got = (fig.data_min, fig.data_max, fig.grad_min, fig.grad_max, fig.grad_norm, fig.grad_peak)
            assert all(map(same, got, want)) and fig.n == len(vals), (q, n.name, got, want)
            top_grad = max(abs(g) for g in gs)
            top_product = max(abs(g * d) for g, d in zip(gs, ds))
            assert group_magnitudes(t, n) == (top_grad, top_product), (q, n.name)
            ops = {}
            for i in n.ids:
                ops[t.op_names[t.op[i]]] = ops.get(t.op_names[t.op[i]], 0) + 1
            assert node_op_counts(t, n) == {k: ops[k] for k in t.op_names if k in ops}, (q, n.name)
            seen += 1
    assert seen > 100


def test_what_a_node_keeps_is_kept_for_its_trace_only(recorded_christopher):
    """The same view on a step of another seed (the same ids, other numbers): each node's figures,
    magnitudes and columns are that step's, not the first trace's kept ones."""
    t = recorded_christopher
    tok = Tokenizer([chr(c) for c in range(97, 123)])
    config = GPTConfig(vocab_size=tok.vocab_size)
    other = record_step(init_params(config, random.Random(7)), config, tok, 'christopher')
    nodes = [n for n in drawn_groups(t, {'param': 'layer0.mlp_fc1'}) if n.kind == 'group']
    for n in nodes:
        group_figures(t, n), group_magnitudes(t, n)
    changed = 0
    for n in nodes:
        vals = list(n.values)
        gs = [other.grad[i] for i in vals]
        assert group_figures(other, n).grad_max == max(gs)
        assert group_magnitudes(other, n)[0] == max(map(abs, gs))
        assert list(node_column(other.grad, n)) == gs
        changed += group_figures(other, n) != group_figures(t, n)
    assert changed == len(nodes)
    # a NaN datum beside finite grads: its product is NaN, and the overlay's |grad x data| says so
    name, vals = nodes[0].name, nodes[0].values
    other.data[vals[len(vals) // 2]] = math.nan
    fresh = next(n for n in drawn_groups(other, {'param': 'layer0.mlp_fc1'}) if n.name == name)
    top, product = group_magnitudes(other, fresh)
    assert top == max(abs(other.grad[i]) for i in vals) and math.isnan(product)


@given(hs.lists(hs.integers(0, 60), max_size=40, unique=True), hs.integers(1, 30))
def test_progressions_cover_the_ids_in_order(ids, most):
    ids = sorted(ids)
    if len(ids) < 2:
        return
    got = progressions(ids, most)
    made = progressions(ids, len(ids))      # never more progressions than ids
    assert [i for a, b, s in zip(*made) for i in range(a, b, s)] == ids
    assert all(b > a and s >= 1 for a, b, s in zip(*made))
    assert got is None if len(made[0]) > most else got == made


def test_a_matrix_use_groups_ids_are_a_few_progressions(recorded_christopher):
    """A position's products of mlp_fc1 (64 rows of 16 ids two apart, between the partial sums): one
    progression a row, not one an id."""
    t = recorded_christopher
    groups = [n for n in drawn_groups(t, {'param': 'layer0.mlp_fc1'}) if n.kind == 'group' and len(n.ids) > 64]
    assert groups
    for n in groups:
        starts, _, steps = progressions(n.ids, len(n.ids))
        assert len(starts) <= 65 and set(steps) <= {1, 2, 3}, (n.name, len(starts))


FLOATS = hs.one_of(hs.sampled_from([0.0, -0.0, 1.5, -1.5, math.inf, -math.inf, math.nan, 1e200, -1e200]),
                   hs.floats(-4, 4))


@given(hs.lists(hs.tuples(FLOATS, FLOATS), min_size=1, max_size=12), hs.randoms())
def test_figures_of_is_the_plain_reading(pairs, rnd):
    """Ties between +m and -m, the peak at either end, NaN and infinities, squares past the largest
    double: the figures are the plain walk's (ids in any order)."""
    ids = rnd.sample(range(100), len(pairs))
    ds, gs = [d for d, _ in pairs], [g for _, g in pairs]
    d_lo, d_hi, g_lo, g_hi, norm, peak = plain_figures(ids, ds, gs)
    for ordered in (False, True):
        if ordered:     # ids ascending: the first place of the largest |grad| is its smallest id
            ids = sorted(ids)
            d_lo, d_hi, g_lo, g_hi, norm, peak = plain_figures(ids, ds, gs)
        fig = figures_of(ids, ds, gs, ordered=ordered)
        got = (fig.data_min, fig.data_max, fig.grad_min, fig.grad_max, fig.grad_peak)
        assert all(map(same, got, (d_lo, d_hi, g_lo, g_hi, peak))), (ordered, got, (d_lo, d_hi, g_lo, g_hi, peak))
        if norm is not None:
            assert same(fig.grad_norm, norm)
