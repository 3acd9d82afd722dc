"""A matrix's uses folded per piece (graphviz_export.fold.pieces: the ids of a side lying in one run of
the trace, one slice each) against the plain fold (folding._keys and bundles.bundle_edges, per id):
the same nodes (ids, runs, values, scopes) and the same bundles, bit for bit, for every kind of
matrix, at every level it folds to; records taken only where they are exactly a bundle's edges.
The pieces themselves (recording.runs.run_pieces) and a matrix's selection against their definitions."""

import random
from array import array

import pytest

import graphviz_export.fold.folding as folding
import graphviz_export.fold.pieces as pieces
from graphviz_export.fold import fold
from graphviz_export.fold.summary import group_values
from graphviz_export.select import select
from microgpt.data import Tokenizer
from microgpt.model import GPTConfig, init_params
from microgpt.recording import Trace
from microgpt.recording.ops import OP_CODE
from microgpt.recording.runs import run_pieces, scopes_of
from microgpt.recording.step import record_step
from tests.test_fold_bundles import bundles_edge_by_edge, drawn_bundles, exactly

MATRICES = ('wte', 'wpe', 'lm_head', 'layer0.attn_wq', 'layer0.mlp_fc1', 'layer0.mlp_fc2')


def described(folded):
    """Everything a folded view holds, floats by their bits."""
    nodes = [(n.name, n.kind, n.side, tuple(n.ids), tuple(n.values), n.scope, n.positions, n.focus, n.fan_out,
              n.refers, list(n.runs), list(n.value_runs)) for n in folded.nodes]
    edges = [(e.src, e.dst, e.kind, e.count, e.local, e.contrib.hex(), e.contrib_norm.hex(),
              tuple((s, c, g.hex(), m.hex()) for s, c, g, m in e.sources)) for e in folded.edges]
    return nodes, edges, folded.stats, folded.notes


def plain_and_pieces(t, sel, level, monkeypatch):
    """(the plain fold, the fold per piece, how many folds went per piece) of `sel` at `level`."""
    taken = []
    real = pieces.fold_pieces

    def counted(*args, **kwargs):
        got = real(*args, **kwargs)
        taken.append(got is not None)
        return got
    monkeypatch.setattr(folding, 'fold_pieces', counted)
    by_pieces = fold(t, sel, level, budget=5000, edge_budget=5000)
    monkeypatch.setattr(folding, 'fold_pieces', lambda *args, **kwargs: None)
    plain = fold(t, sel, level, budget=5000, edge_budget=5000)
    return plain, by_pieces, sum(taken)


@pytest.fixture(scope='module')
def one_position():
    """A step of a one-letter name: the matrices used at one token only."""
    tok = Tokenizer([chr(c) for c in range(97, 123)])
    config = GPTConfig(vocab_size=tok.vocab_size)
    return record_step(init_params(config, random.Random(7)), config, tok, 'q')


@pytest.mark.parametrize('level', ['vector', 'block', 'auto'])
def test_a_matrix_folded_per_piece_is_the_plain_fold(recorded_christopher, one_position, level, monkeypatch):
    for t in (recorded_christopher, one_position):
        for name in MATRICES:
            sel = select(t, param=name)
            plain, by_pieces, taken = plain_and_pieces(t, sel, level, monkeypatch)
            assert taken >= 1 or by_pieces.level == 'scalar', (name, level)    # not the plain fold twice
            assert described(by_pieces) == described(plain), (name, level, len(t.positions()))
            want, internal = bundles_edge_by_edge(t, by_pieces)
            assert exactly(drawn_bundles(by_pieces)) == exactly(want), (name, level)
            assert by_pieces.stats['internal_edges'] == internal


def test_other_views_and_scalar_level_are_folded_the_plain_way(recorded_christopher):
    t = recorded_christopher
    for q, level in (({'token': 5}, 'vector'), ({'layer': 0}, 'block'), ({'param': 'layer0.attn_wq[3][5]'}, 'vector'),
                     ({'param': 'layer0.mlp_fc1'}, 'scalar')):
        assert pieces.fold_pieces(t, select(t, **q), level, set(), folding._group_key) is None, q
    sel = select(t, param='layer0.mlp_fc1')
    assert pieces.fold_pieces(t, sel, 'vector', set(sel.focus[:1]), folding._group_key) is None   # expanded


@pytest.mark.parametrize('column', ['rec_count', 'rec_contrib'])
def test_a_record_stands_for_a_bundle_only_when_its_edges_are_the_bundles(recorded_christopher, column):
    """Records one edge too many: the per-piece fold adds the edges up itself and still gives the sums of
    adding them one by one (taking a record whatever its count would not). Records with other sums: the
    cells' and inputs' bundles of a matrix's uses change, as they are the records' (not added up again)."""
    t = Trace.from_binary(recorded_christopher.to_binary())
    sel = select(t, param='layer0.mlp_fc1')
    before = exactly(drawn_bundles(fold(t, sel, 'vector')))
    records = t.index(column)
    t._index[column] = array(records.typecode, [x + 1 for x in records])
    folded = fold(t, sel, 'vector')
    after = exactly(drawn_bundles(folded))
    if column == 'rec_count':
        assert after == before
        want, _ = bundles_edge_by_edge(t, folded)
        assert after == exactly(want)
    else:
        changed = {key for key in before if before[key] != after[key]}
        side = {n.name: (n.kind, n.side) for n in folded.nodes}
        into_uses = {(src, dst) for src, dst in before if side[dst] == ('group', 'interior')}
        assert changed == into_uses and len(changed) == 2 * len(t.positions())     # the cells' and input's, a position
        assert {side[src] for src, _ in changed} == {('matrix', 'interior'), ('group', 'input')}


def test_run_pieces_cut_sorted_ids_where_the_runs_change(recorded_christopher):
    t = recorded_christopher
    starts = t.index('run_start')
    rng = random.Random(3)
    for ids in (sorted(rng.sample(range(len(t)), 5000)), list(range(100, 900)), [7], [],
                sorted(set(t.parents(c)[0] for c in t.param_nodes('layer0.mlp_fc1')))):
        got = run_pieces(t, ids)
        run = [next(r for r in range(len(starts) - 1) if starts[r] <= i < starts[r + 1]) for i in ids]
        want = []
        for k, r in enumerate(run):
            if want and want[-1][0] == r:
                want[-1][2] = k + 1
            else:
                want.append([r, k, k + 1])
        assert got == [tuple(w) for w in want]
        assert scopes_of(t, ids) == {t.scope[i] for i in ids}
        assert run_pieces(t, ids, len(want) - 1) == (None if want else [])
        assert run_pieces(t, ids, len(want)) == got


def test_every_matrix_selects_its_cells_uses_and_their_boundary(recorded_christopher, one_position):
    """A matrix's selection reads only its uses' edges (a cell has no children; its parents are the uses):
    the boundary is still every outside child and parent of the whole interior."""
    for t in (recorded_christopher, one_position):
        for name in t.param_names:
            sel = select(t, param=name)
            cells = t.param_nodes(name)
            interior = set(cells) | {p for c in cells for p in t.parents(c)}
            kids = {c for i in interior for c in t.children(i)} - interior
            parents = {p for i in interior for p in t.parents(i)} - interior - kids
            assert (sel.nodes, sel.inputs, sel.outputs) == (tuple(sorted(interior)), tuple(sorted(kids)),
                                                            tuple(sorted(parents))), name
            assert sel.focus == tuple(cells)


def test_a_scattered_group_all_leaving_keeps_its_constants_out(recorded_christopher):
    """A group whose members all leave is its own values (a matrix's uses: not copied), but a constant
    among them is never a value (summary.group_values)."""
    t = recorded_christopher
    const = [i for i in range(len(t)) if t.op[i] == OP_CODE['const']][::97][:5]
    ops = [i for i in range(0, len(t), 1013) if t.op[i] != OP_CODE['const']][:20]
    ids = tuple(sorted(const + ops))
    assert group_values(t, ids, set(ids)) == ops
    assert group_values(t, tuple(ops), set(ops)) == tuple(ops)
