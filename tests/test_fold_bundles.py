"""graphviz_export.fold.bundles: edges bundled from the trace's stored run records are the
edges bundled one scalar edge at a time, bit for bit, in every view and at every level."""

import math
from array import array

import pytest

import graphviz_export.fold.bundles as bundling
from graphviz_export.draw import draw
from graphviz_export.fold import fold
from graphviz_export.fold.bundles import bundle_edges
from graphviz_export.fold.folding import _keys
from graphviz_export.select import select
from microgpt.recording import Trace
from tests.test_export_fold import every_view

LEVELS = ('scalar', 'vector', 'block')


def drawn_bundles(folded):
    """{(src, dst): (count, contrib, contrib_norm)} of every bundle a folded view stands for:
    drawn edges, and behind a reference edge each node it refers to."""
    out = {}
    for e in folded.edges:
        if e.kind == 'ref':
            for src, count, contrib, norm in e.sources:
                out[src, e.dst] = (count, contrib, norm)
        else:
            out[e.src, e.dst] = (e.count, e.contrib, e.contrib_norm)
    return out


def bundles_edge_by_edge(trace, folded):
    """The same bundles, and the number of edges inside one node, added up here one scalar edge
    at a time in id order from the folded nodes' members (the way fold bundled them before it
    had run records): sums from 0.0 in edge order, per child, ‖per-child sums‖ by math.fsum."""
    sel = folded.selection
    interior = set(sel.nodes)
    owner = {}
    for n in folded.nodes:
        if n.kind != 'ref':
            for i in n.ids:
                owner[i] = n
    sums, internal = {}, 0
    for p in sorted(owner):
        parent = owner[p]
        if parent.side == 'input':
            continue
        for k in range(trace.child_ptr[p], trace.child_ptr[p + 1]):
            c = trace.child[k]
            if parent.side == 'output' and c not in interior:
                continue
            if owner[c] is parent:
                internal += 1
                continue
            got = sums.setdefault((owner[c].name, parent.name), [0, 0.0, {}])
            part = trace.local[k] * trace.grad[p]
            got[0] += 1
            got[1] += part
            got[2][c] = got[2].get(c, 0.0) + part
    return {key: (n, s, math.sqrt(math.fsum(v * v for v in per.values()))) for key, (n, s, per) in sums.items()}, internal


def exactly(bundles):
    """Floats by their bits (-0.0 is not 0.0, NaN equals NaN)."""
    return {key: (n, s.hex(), norm.hex()) for key, (n, s, norm) in bundles.items()}


def test_every_view_bundles_its_edges_as_edge_by_edge_sums(recorded_christopher):
    t = recorded_christopher
    for q in every_view(t):
        sel = select(t, **q)
        for level in LEVELS:
            folded = fold(t, sel, level)
            want, internal = bundles_edge_by_edge(t, folded)
            assert exactly(drawn_bundles(folded)) == exactly(want), (q, level)
            assert folded.stats['internal_edges'] == internal, (q, level)


def test_a_view_of_a_trace_loaded_without_records_is_the_same(recorded_christopher, tmp_path):
    """A file read back builds its records itself; the figures are those of the recorded step."""
    t = recorded_christopher
    back = Trace.from_binary(t.to_binary())
    for q in ({'token': 7}, {'layer': 0}, {'param': 'wte'}):
        for level in LEVELS:
            a, b = fold(t, select(t, **q), level), fold(back, select(back, **q), level)
            assert exactly(drawn_bundles(a)) == exactly(drawn_bundles(b))


@pytest.mark.parametrize('column', ['rec_contrib', 'rec_norm', 'rec_count'])
def test_whole_runs_are_bundled_from_their_records(recorded_christopher, column):
    """A token view at block level takes its bundles from the records (not edge by edge, which
    would cost a Python step per edge of a million-node view): change one and the view changes."""
    t = Trace.from_binary(recorded_christopher.to_binary())
    sel = select(t, token=7)
    before = exactly(drawn_bundles(fold(t, sel, 'block')))
    records = t.index(column)
    t._index[column] = array(records.typecode, [x + 1 for x in records])
    after = exactly(drawn_bundles(fold(t, sel, 'block')))
    assert after != before


def bundles_one_edge_at_a_time(trace, segments, kid, side):
    """bundle_edges' answer computed here the plain way: every segment's edges, one at a time in
    segment order (an output's only from interior children), each bundle's count, local and
    contrib summed from 0.0 and each child's contribution along it, in edge order."""
    bundles, leaving, internal = {}, set(), 0
    for p0, p1, kp, sd in segments:
        if sd == 'input':
            continue
        for p in range(p0, p1):
            for k in range(trace.child_ptr[p], trace.child_ptr[p + 1]):
                c = trace.child[k]
                kc = kid[c]
                if sd == 'output' and (kc < 0 or side[kc] != 'interior'):
                    continue
                if kc == kp:
                    internal += 1
                    continue
                part = trace.local[k] * trace.grad[p]
                got = bundles.setdefault((kc, kp), [0, 0.0, 0.0, {}])
                got[0] += 1
                got[1] += trace.local[k]
                got[2] += part
                got[3][c] = got[3].get(c, 0.0) + part
                leaving.add(c)
    return {key: (n, lo.hex(), s.hex(), {c: v.hex() for c, v in per.items()},
                  math.sqrt(math.fsum(v * v for v in per.values())).hex())
            for key, (n, lo, s, per) in bundles.items()}, leaving, internal


@pytest.mark.parametrize('level', LEVELS)
def test_a_matrix_views_scattered_uses_bundle_as_one_edge_at_a_time(recorded_christopher, level):
    """A matrix's uses are thousands of single-node segments, their edges added per key in C
    (functools.reduce of the same float additions): every bundle's count, local and contrib sums,
    each child's contribution (the ones read once and the input read by every row), the children
    leaving and the edges inside are those of adding them one edge at a time. Records stand for
    whole runs only (no edge here is one), so a bundle is compared field by field where it is not
    a record's (a key's edges that are all of one record's: the matrix's cells and the input x)."""
    t = recorded_christopher
    for q in ({'param': 'layer0.mlp_fc1'}, {'param': 'wte'}, {'param': 'lm_head'}, {'param': 'layer0.attn_wq'},
              {'token': 5}, {'param': 'layer0.attn_wq[3][5]', 'depth': 2}):
        sel = select(t, **q)
        kid, _, segments = _keys(t, sel, level, set())
        side = {j: sd for _, _, j, sd in segments}
        got, leaving, internal = bundle_edges(t, segments, kid, side)
        want, want_leaving, want_internal = bundles_one_edge_at_a_time(t, segments, kid, side)
        assert internal == want_internal and leaving == want_leaving, (q, level)
        assert got.keys() == want.keys(), (q, level)
        for key, b in got.items():
            n, local, contrib, per, norm = want[key]
            assert (b.count, b.local.hex(), b.contrib.hex(), b.contrib_norm().hex()) == (n, local, contrib, norm), \
                (q, level, key)
            if b.norm is None:      # added edge by edge, not a record's
                assert {c: v.hex() for c, v in b.per_child.items()} == per, (q, level, key)
            else:                   # a record's: every child it reads leaves
                assert set(per) <= leaving, (q, level, key)
        if q == {'param': 'layer0.mlp_fc1'} and level == 'vector':
            # the cells and the input each position's uses read are exactly one record each (bundles._record_of)
            assert sum(b.norm is not None for b in got.values()) == 2 * len(t.positions()), (q, level)
        if 'param' in q and '[' not in q['param']:
            assert sum(b - a == 1 for a, b, _, sd in segments if sd == 'interior') > 100     # the scattered case


SPLIT_VIEWS = (({'document': True}, 'block'), ({'token': 5}, 'vector'), ({'token': 0}, 'block'))


@pytest.mark.parametrize('picked', [False, True], ids=['one pass', 'numpy picks'])
def test_runs_read_by_split_keys_bundle_as_edge_by_edge(recorded_christopher, monkeypatch, picked):
    """A whole run whose child scopes lie in several nodes (a document's cached keys and values at
    block level, a token's) is added filtered to the keys asked for: in one pass over its edges
    (bundles._add_one_by_one with `only`), or, in a trace of WIDE edges or more, each key's edges
    picked out by numpy (bundles._add_picked). Either way the sums are the edge-by-edge ones, bit for
    bit, and so are each child's parts, the children leaving and the edges inside."""
    t = recorded_christopher
    if picked:
        monkeypatch.setattr(bundling, 'WIDE', 0)
    taken = []
    real = bundling._add_picked if picked else bundling._add_one_by_one

    def watched(*args, **kwargs):
        taken.append(picked or kwargs.get('only', args[7] if len(args) > 7 else None) is not None)
        return real(*args, **kwargs)
    monkeypatch.setattr(bundling, '_add_picked' if picked else '_add_one_by_one', watched)
    for q, level in SPLIT_VIEWS:
        taken.clear()
        folded = fold(t, select(t, **q), level)
        assert any(taken), q        # the path ran
        want, internal = bundles_edge_by_edge(t, folded)
        assert exactly(drawn_bundles(folded)) == exactly(want), q
        assert folded.stats['internal_edges'] == internal, q
        sel = select(t, **q)
        kid, _, segments = _keys(t, sel, level, set(), heads=level != 'block')
        side = {j: sd for _, _, j, sd in segments}
        got, leaving, internal = bundle_edges(t, segments, kid, side)
        want, want_leaving, want_internal = bundles_one_edge_at_a_time(t, segments, kid, side)
        assert (internal, leaving) == (want_internal, want_leaving), q
        for key, b in got.items():
            if b.norm is None:      # added edge by edge, not a record's
                n, local, contrib, per, norm = want[key]
                assert (b.count, b.local.hex(), b.contrib.hex(), b.contrib_norm().hex()) == (n, local, contrib, norm)
                assert {c: v.hex() for c, v in b.per_child.items()} == per, (q, key)


def test_numpy_picks_draw_the_same_view_byte_for_byte(recorded_christopher, monkeypatch):
    """The views whose runs numpy picks from (a big trace's) are drawn as the one-pass ones: the same
    DOT, byte for byte (the bundles' order, their sums and each label); also where the trace's
    contributions are a column of its own (a before/after's differences: steps/diff.delta_trace)."""
    t = recorded_christopher
    own = Trace.from_binary(t.to_binary())
    own._cache['contrib'] = array('d', (2.0 * c + 1.0 for c in t.contrib))
    for (q, level), t in [(v, t) for v in SPLIT_VIEWS] + [(SPLIT_VIEWS[0], own)]:
        sel = select(t, **q)
        monkeypatch.setattr(bundling, 'WIDE', len(t.child) + 1)
        one_pass = draw(t, fold(t, sel, level)).source
        monkeypatch.setattr(bundling, 'WIDE', 0)
        assert draw(t, fold(t, sel, level)).source == one_pass, q
