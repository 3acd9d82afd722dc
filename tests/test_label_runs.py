"""Labels read per run of ids (draw/labels.py: inner_title, param_rows; fold/summary.op_counts,
param_shares) say what reading every member says: checked against the per-member definitions, written out
here, on the groups of real views and on random subsets of them (scattered members, runs
ending mid-row of a matrix, several scopes)."""

import random
from collections import Counter
from types import SimpleNamespace

import pytest

from graphviz_export import build_view
from graphviz_export.draw.labels import PRODUCTS, inner_title, param_rows
from graphviz_export.fold.summary import op_counts, param_shares
from microgpt.recording.names import ARROW, ROLE_NAME, op_text
from microgpt.recording.sums import fsum

VIEWS = [dict(token=3), dict(token=0), dict(token=11, level='vector'), dict(layer=0, head=1, token=3),
         dict(document=True), dict(param='lm_head'), dict(param='layer0.attn_wq'), dict(param='wte'),
         dict(param='layer0.attn_wq[3][5]'), dict(node='loss', depth=3, level='vector')]


def inner_title_per_value(trace, values):
    """inner_title as it was defined, one look-up per value."""
    names = trace.names()
    if not values or not all(map(names.has_role, values)):
        return None
    vectors = {names.vector_name(i) for i in values}
    roles = {trace.scopes[trace.scope[i]].role for i in values}
    if len(roles) != 1:
        return None
    inner = [i for i in values if not names.is_value(i)]
    if not inner:
        return None
    role = roles.pop()
    vector = vectors.pop() if len(vectors) == 1 else ROLE_NAME[role]
    ops = {trace.op_name(i) for i in inner}
    if ops == {'mul'}:
        kind = 'product' if len(inner) == 1 else 'products'
        kind += f' {PRODUCTS[role]}' if role in PRODUCTS else ''
    elif ops == {'add'}:
        kind = 'partial sum' if len(inner) == 1 else 'partial sums'
    else:
        kind = ', '.join(sorted({op_text(trace, i) for i in inner}))
    return f'{kind} {ARROW} {vector}' if len(inner) == len(values) else f'{vector} and {len(inner)} {kind}'


@pytest.fixture(scope='module')
def groups(recorded_christopher):
    t = recorded_christopher
    out = [n for kw in VIEWS for n in build_view(t, **kw).folded.nodes if n.kind in ('group', 'matrix')]
    assert len(out) > 100
    return out


def subsets(ids, rng):
    """A run from the middle, every other id, and a random handful (sorted)."""
    ids = list(ids)
    k = len(ids)
    yield ids[k // 3:k // 3 + max(1, k // 4)]
    yield ids[::2]
    yield sorted(rng.sample(ids, min(k, 7)))


def test_inner_title_is_the_per_value_reading(recorded_christopher, groups):
    t, rng = recorded_christopher, random.Random(5)
    titled = 0
    for n in groups:
        for values in [list(n.values), *subsets(n.values, rng)]:
            want = inner_title_per_value(t, values)
            assert inner_title(t, SimpleNamespace(values=tuple(values))) == want, (n.name, values[:5])
            titled += want is not None
    assert titled > 20      # the cases that print a title, not only the Nones


def test_inner_title_of_values_of_several_scopes(recorded_christopher, groups):
    t = recorded_christopher
    pairs = [(a, b) for a in groups[:40] for b in groups[:40] if a.values and b.values and a.scope != b.scope]
    for a, b in pairs[:200]:
        values = sorted({*a.values[:50], *b.values[-50:]})
        assert inner_title(t, SimpleNamespace(values=tuple(values))) == inner_title_per_value(t, values)


def test_param_rows_are_the_rows_of_the_cells(recorded_christopher):
    t, rng = recorded_christopher, random.Random(7)
    for name, (rows, cols) in t.param_shapes.items():
        base = t.param_base[name]
        cells = list(range(base, base + rows * cols))
        cases = [cells, cells[cols + 1:3 * cols - 1], cells[::cols + 1], sorted(rng.sample(cells, 5))]
        for ids in cases:
            assert param_rows(t, ids) == sorted({t.param_cell(i)[1] for i in ids}), (name, ids[:5])
    a, b = list(t.param_shapes)[:2]       # cells of two matrices: per cell
    ids = [t.param_base[a] + 3, t.param_base[b] + 2 * t.param_shapes[b][1]]
    assert param_rows(t, ids) == sorted({t.param_cell(i)[1] for i in ids}) == [0, 2]


def test_op_counts_count_every_member(recorded_christopher, groups):
    t, rng = recorded_christopher, random.Random(9)
    for n in groups:
        for ids in [n.ids, *subsets(n.ids, rng)]:
            counts = Counter(t.op_name(i) for i in ids)
            assert list(op_counts(t, ids).items()) == [(op, counts[op]) for op in t.op_names if op in counts]
    assert op_counts(t, [9, 3, 3, 4]) == op_counts(t, [3, 4, 9])     # any order, repeats once


def shares_per_edge(trace, ids, interior):
    """param_shares as defined: per cell, the sum of the contributions along each of its reverse
    edges from a node in `interior` (one edge at a time; one part is itself, -0.0 as 0.0)."""
    pptr, parent, edge = trace.parents_index()
    out = {}
    for c in sorted(ids):
        ks = [k for k in range(pptr[c], pptr[c + 1]) if parent[k] in interior]
        parts = [trace.edge_contribs([edge[k]], [trace.grad[parent[k]]])[0] for k in ks]
        if parts:
            out[c] = fsum(parts) if len(parts) > 1 else (parts[0] or 0.0)
    return out


@pytest.mark.parametrize('kw', [dict(token=3), dict(token=0), dict(layer=0, token=3), dict(layer=0), dict(document=True)])
def test_param_shares_are_the_sums_per_edge(recorded_christopher, kw):
    t = recorded_christopher
    view = build_view(t, **kw)
    interior = frozenset(view.selection.nodes)
    params = [n for n in view.folded.nodes if n.kind == 'group' and n.scope.block == 'params']
    assert params
    for n in params:
        got, want = param_shares(t, n, interior), shares_per_edge(t, n.ids, interior)
        assert list(got) == list(want)
        assert [repr(x) for x in got.values()] == [repr(x) for x in want.values()]      # -0.0 and 0.0 apart
