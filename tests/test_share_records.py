"""The stored share records (recording.shares): each is the figures a view computes from the
values (param_shares over the uses at its position, or all of them), a view whose interior is
whole scopes reads them and draws what the computation draws, and a file whose record is
damaged is refused on load, one written without them builds them."""

import math
import random
from array import array

import pytest

from graphviz_export.fold import summary
from graphviz_export.fold.summary import Interior, param_shares, share_figures
from graphviz_export.view import build_view
from graphviz_export.web.explorer.clicks import magnitudes
from microgpt.data import Tokenizer
from microgpt.model import GPTConfig, init_params
from microgpt.recording import Trace
from microgpt.recording.codecs import TraceFormatError
from microgpt.recording.figures import figures_of
from microgpt.recording.shares import OWN, SHARE_COLUMNS, matrix_span, stored_figures, stored_magnitudes, stored_share
from microgpt.recording.step import record_step
from tests.test_trace_stored_indexes import set_item, without

AZ = [chr(c) for c in range(97, 123)]


def two_layers(seed=42):
    tok = Tokenizer(AZ)
    config = GPTConfig(vocab_size=tok.vocab_size, n_layer=2, n_embd=8, n_head=2)
    return record_step(init_params(config, random.Random(seed)), config, tok, 'anna')


@pytest.fixture(scope='module')
def traces(recorded_christopher):
    return recorded_christopher, two_layers()


class Group:
    """The boundary group of a whole matrix, as fold makes it (what share_figures reads)."""

    def __init__(self, trace, name):
        a, b = matrix_span(trace.param_shapes, trace.param_base, name)
        self.ids = tuple(range(a, b))
        self.scope = trace.scopes[trace.scope[a]]


def from_values(trace, name, interior):
    """The share figures of matrix `name` for `interior`, from the contributions, as a view
    computed them before the records (param_shares, then figures_of)."""
    shares = param_shares(trace, Group(trace, name), interior)
    ids = list(shares)
    return ids and figures_of(ids, array('d', map(trace.data.__getitem__, ids)), array('d', shares.values()))


def plain_shares(trace, name, pos):
    """{cell: the fsum of the contributions of its uses at position `pos` (None: all)}, node by node."""
    out = {}
    for i in Group(trace, name).ids:
        parts = [c for p, _, c in trace.uses(i) if pos is None or trace.scopes[trace.scope[p]].pos == pos]
        if parts:
            out[i] = math.fsum(parts)
    return out


def test_every_record_is_the_figures_computed_from_the_contributions(traces):
    for trace in traces:
        idx = trace.indexes()
        param = trace.op_names.index('param')
        everything = frozenset(i for i in range(len(trace)) if trace.op[i] != param)
        for m, name in enumerate(trace.param_names):
            for k in range(idx['share_ptr'][m], idx['share_ptr'][m + 1]):
                pos = idx['share_pos'][k]
                if pos == OWN:      # the cells' own data and grads
                    cells = Group(trace, name).ids
                    want = figures_of(cells, [trace.data[i] for i in cells], [trace.grad[i] for i in cells])
                else:
                    want = from_values(trace, name, everything if pos == -1 else frozenset(trace.nodes(pos=pos)))
                got = (idx['share_n'][k], idx['share_data_min'][k], idx['share_data_max'][k], idx['share_grad_min'][k],
                       idx['share_grad_max'][k], idx['share_grad_norm'][k], idx['share_peak'][k])
                assert got == (want.n, want.data_min, want.data_max, want.grad_min, want.grad_max, want.grad_norm,
                               want.grad_peak), (name, pos)
                # the largest |share x data|, by a plain loop over the cells (the overlay's second magnitude)
                pairs = (zip(Group(trace, name).ids, (trace.grad[i] for i in Group(trace, name).ids)) if pos == OWN else
                         plain_shares(trace, name, None if pos == -1 else pos).items())
                assert idx['share_mag'][k] == max((abs(g * trace.data[i]) for i, g in pairs), default=0.0), (name, pos)
            # one record of every use, one per position that used the matrix, one of its own grads
            assert idx['share_pos'][idx['share_ptr'][m]:idx['share_ptr'][m + 1]].tolist() == [-1, *trace.positions(), OWN]


def test_a_view_of_whole_scopes_reads_the_record_and_gets_what_the_edges_give(traces, monkeypatch):
    for trace in traces:
        last = trace.positions()[-1]
        for q in ({'token': last}, {'token': 0}, {'layer': max(s.layer for s in trace.scopes if s.layer is not None)},
                  {'layer': 0, 'token': last}, {'document': True}):
            view = build_view(trace, **q)
            interior = Interior(trace, view.selection.nodes)
            assert interior.scopes is not None, q
            groups = [n for n in view.folded.nodes if n.kind != 'scalar' and n.scope.block == 'params'
                      and n.scope.role in trace.param_shapes]
            assert groups, q
            for node in groups:
                found, _ = stored_share(trace, node.scope.role, node.ids, interior.scopes)
                assert found, (q, node.name)
                assert share_figures(trace, node, interior) == share_figures(trace, node, frozenset(interior.ids)), (q, node.name)
    # a cell's neighbourhood is not whole scopes: computed from the edges
    view = build_view(traces[0], param='wte[3][5]')
    assert Interior(traces[0], view.selection.nodes).scopes is None


def test_a_whole_matrix_reads_its_own_record_and_a_part_of_one_does_not(traces):
    trace = traces[1]
    cells = Group(trace, 'layer1.mlp_fc1').ids
    want = figures_of(cells, [trace.data[i] for i in cells], [trace.grad[i] for i in cells])
    assert summary.figures(trace, cells) == want and stored_figures(trace, list(cells)) is not None
    assert stored_figures(trace, list(cells[1:])) is None and stored_figures(trace, list(cells[:-1])) is None
    assert stored_figures(trace, [*cells[:5], cells[4], *cells[6:]]) is None      # a repeat is not the matrix
    assert summary.figures(trace, cells[1:]) == figures_of(cells[1:], [trace.data[i] for i in cells[1:]],
                                                           [trace.grad[i] for i in cells[1:]])


def test_a_wrong_record_shows_in_the_picture(traces):
    """The records are what the picture draws: a changed norm changes the DOT (the lookup is live)."""
    trace = two_layers()
    before = build_view(trace, token=3).source
    trace.indexes()['share_grad_norm'][0] *= 2
    trace._index['share_grad_max'] = array('d', [x * 2 for x in trace._index['share_grad_max']])
    assert build_view(trace, token=3).source != before


def test_records_are_not_taken_from_another_recording_of_the_same_graph():
    """A played run's next step adopts the graph's indexes, never the numbers of the step before."""
    old, new = two_layers(42), two_layers(7)
    old.indexes()
    new.adopt_indexes(old)
    assert 'share_grad_norm' not in new._index
    assert new.indexes()['share_grad_norm'] != old.indexes()['share_grad_norm']


@pytest.fixture(scope='module')
def v2(recorded_christopher):
    return recorded_christopher.to_binary()


@pytest.mark.parametrize('name,k,value,message', [
    ('share_peak', 1, 10 ** 6, r"share record 1 of 'wte' holds \d+ cells, peak 1000000: not within its cells 0\.\.431"),
    ('share_n', 2, 10 ** 6, r"share record 2 of 'wte' holds 1000000 cells"),
    ('share_data_min', 0, 5.0, r"share record 0 of 'wte': its peak's data [-0-9.e]+ is outside its range 5\.0"),
    ('share_scopes', 0, 10 ** 6, r"'share_scopes' holds 1000000, which is not a scope"),
    ('share_scope_ptr', 1, -1, r"'share_scope_ptr' must run forward"),
    ('share_mag', 1, 1e300, r"share record 1 of 'wte': its largest \|share x data\| 1e\+300 is not that of its cells"),
    ('share_mag', 1, 0.0, r"share record 1 of 'wte': its largest \|share x data\| 0\.0 is not that of its cells"),
    ('share_mag', 1, -1.0, r"share record 1 of 'wte': its largest \|share x data\| -1\.0 is not"),
])
def test_a_damaged_share_record_is_refused_on_load(v2, name, k, value, message):
    with pytest.raises(TraceFormatError, match=r'^binary trace: stored index ' + message) as e:
        Trace.from_binary(set_item(v2, name, k, value))
    assert '\n' not in str(e.value)


def test_a_file_without_share_records_builds_them_and_draws_the_same(v2, monkeypatch):
    old, new = Trace.from_binary(without(v2, *(n for n, _ in SHARE_COLUMNS))), Trace.from_binary(v2)
    assert 'share_ptr' not in old._index and 'share_ptr' in new._index
    assert build_view(old, token=11).source == build_view(new, token=11).source
    assert all(old._index[n] == new._index[n] for n, _ in SHARE_COLUMNS)
    # all or none: one share column missing is refused
    with pytest.raises(TraceFormatError, match=r"columns are incomplete: missing share_peak"):
        Trace.from_binary(without(v2, 'share_peak'))


def test_a_file_without_share_mag_loads_and_builds_every_share_record(v2):
    """A file written before share_mag (the other share columns there) loads and builds them all once."""
    old, new = Trace.from_binary(without(v2, 'share_mag')), Trace.from_binary(v2)
    assert 'share_ptr' not in old._index and 'share_mag' in new._index
    assert build_view(old, token=11).source == build_view(new, token=11).source
    assert all(old.index(n) == new._index[n] for n, _ in SHARE_COLUMNS)
    with pytest.raises(TraceFormatError, match=r"columns are incomplete: missing share_mag, share_scopes"):
        Trace.from_binary(without(v2, 'share_mag', 'share_scopes'))


def boundary_params(trace, view):
    return [n for n in view.folded.nodes if n.kind == 'group' and n.side != 'interior' and n.scope.block == 'params'
            and n.scope.role in trace.param_shapes]


def test_overlay_magnitudes_from_the_records_are_those_of_the_edges():
    """A whole-scope view's boundary parameter groups take their (largest |share|, largest
    |share x data|) from the share records; they equal the reverse edges' (an interior given as
    a plain set), NaN included: a NaN grad at one position (its shares NaN, both magnitudes
    NaN there, finite elsewhere), a NaN datum of one cell (its product NaN, its share not)."""
    def same(a, b):
        return all(x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b, strict=True))

    def check(trace, queries):
        got = {}
        for q in queries:
            view = build_view(trace, **q)
            interior = Interior(trace, view.selection.nodes)
            assert interior.scopes is not None, q
            groups = boundary_params(trace, view)
            assert groups, q
            for n in groups:
                assert stored_magnitudes(trace, n.scope.role, n.ids, interior.scopes) is not None, (q, n.name)
                got[str(q), n.scope.role] = stored = magnitudes(trace, n, interior)
                assert same(stored, magnitudes(trace, n, frozenset(interior.ids))), (q, n.name, stored)
        return got

    trace = two_layers()
    queries = [{'token': 0}, {'token': 2}, {'token': 3}, {'layer': 1}, {'layer': 0, 'token': 2}, {'document': True}]
    plain = check(trace, queries)
    assert all(not math.isnan(x) for mags in plain.values() for x in mags) and any(m[1] > 0 for m in plain.values())
    # a NaN grad of a node at position 2 that reads wte: the shares of position 2 (and of every use) NaN
    trace = two_layers()
    user = next(p for i in Group(trace, 'wte').ids for p, _, _ in trace.uses(i)
                if trace.scopes[trace.scope[p]].pos == 2)
    trace.grad[user] = math.nan
    got = check(trace, queries)
    assert math.isnan(got[str({'token': 2}), 'wte'][0]) and math.isnan(got[str({'token': 2}), 'wte'][1])
    assert not any(map(math.isnan, got[str({'token': 3}), 'wte']))
    assert math.isnan(got[str({'document': True}), 'wte'][0])
    # a NaN datum of a cell read at position 3: the product NaN, the share a number
    trace = two_layers()
    cell = next(i for i in Group(trace, 'wte').ids if any(trace.scopes[trace.scope[p]].pos == 3 for p, _, _ in trace.uses(i)))
    trace.data[cell] = math.nan
    got = check(trace, queries)
    first, second = got[str({'token': 3}), 'wte']
    assert not math.isnan(first) and math.isnan(second)
