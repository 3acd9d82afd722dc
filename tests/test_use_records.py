"""Use records (recording.uses: a matrix's uses per run, their inputs, outputs and the outputs' bundle)
against a plain walk of the edges one by one: for every matrix of a recorded step, at every position,
the same ids, counts, and sums bit for bit; the rows a record's ids are stored as against their
definition. Stored in the binary file: read back the same, a damaged record refused on load, a file
written before them opened and answered the same (by walking the edges); a matrix view reads them."""

import math
import random
from itertools import repeat

import pytest

import graphviz_export.fold.folding as folding
import graphviz_export.fold.pieces as pieces
import graphviz_export.fold.summary as summary
from graphviz_export.fold import fold
from graphviz_export.fold.summary import group_figures, group_magnitudes
from graphviz_export.fold.use_bundles import UseBundles, _edge_count
from graphviz_export.select import select
from graphviz_export.view import build_view
from microgpt.data import Tokenizer
from microgpt.model import GPTConfig, init_params
from microgpt.recording import Trace
from microgpt.recording.codecs import TraceFormatError
from microgpt.recording.runs import holds
from microgpt.recording.step import record_step
from microgpt.recording.uses import (
    FIGURE_COLUMNS,
    USE_COLUMNS,
    expand,
    has_figures,
    periodic,
    record_ids,
    stored_uses,
    use_figures,
    use_records,
)
from tests.test_fold_bundles import bundles_edge_by_edge, drawn_bundles, exactly
from tests.test_matrix_pieces import MATRICES, described
from tests.test_trace_stored_indexes import set_item, without

USE_NAMES = [name for name, _ in USE_COLUMNS]
FIGURE_NAMES = [name for name, _ in FIGURE_COLUMNS]


def plain(t, name):
    """Per run holding uses of matrix `name`, in run order: what a walk of each edge finds."""
    a = t.param_base[name]
    rows, cols = t.param_shapes[name]
    cells = set(range(a, a + rows * cols))
    uses = sorted({p for c in cells for p in t.parents(c)})
    interior = cells | set(uses)
    starts = list(t.index('run_start'))
    by_run = {}
    for u in uses:
        r = max(k for k in range(len(starts) - 1) if starts[k] <= u)
        by_run.setdefault(r, []).append(u)
    got = []
    for r, us in sorted(by_run.items()):
        kids = sorted({c for u in us for c in t.children(u)} - interior)
        scopes = {}
        for u in us:
            for c in t.children(u):
                if c not in uses:
                    scopes[t.scope[c]] = scopes.get(t.scope[c], 0) + 1
        outs = sorted({p for u in us for p in t.parents(u)} - interior)
        count, local, contrib, per_child = 0, 0.0, 0.0, {}
        for o in outs:
            for c, lg, cg in zip(t.children(o), t.local_grads(o), t.contributions(o)):
                if c in interior:
                    count += 1
                    local += lg
                    contrib += cg
                    per_child[c] = per_child.get(c, 0.0) + cg
        norm = math.sqrt(math.fsum(v * v for v in per_child.values()))
        got.append({'run': r, 'uses': us, 'inputs': kids, 'scopes': sorted(scopes.items()), 'outputs': outs,
                    'out': (count, local.hex(), contrib.hex(), norm.hex(), len(per_child),
                            set(per_child) <= set(us))})
    return got


def stored(u, m):
    """The records of matrix m (its index in param_names) from the columns, ids made from their rows."""
    pats = u['pattern_ptr']

    def ids(side, k):
        p = u[f'{side}_pattern'][k]
        assert p >= 0
        offsets = tuple(u['pattern'][pats[p]:pats[p + 1]])
        return expand(u[f'{side}_n'][k], u[f'{side}_first'][k], u[f'{side}_period'][k], offsets)
    got = []
    for k in range(u['use_ptr'][m], u['use_ptr'][m + 1]):
        kp, sp = u['use_kid_ptr'], u['use_scope_ptr']
        got.append({'run': u['use_run'][k], 'uses': ids('use', k), 'inputs': list(u['use_kids'][kp[k]:kp[k + 1]]),
                    'scopes': list(zip(u['use_scopes'][sp[k]:sp[k + 1]], u['use_scope_n'][sp[k]:sp[k + 1]])),
                    'outputs': ids('out', k),
                    'out': (u['out_edges'][k], u['out_local'][k].hex(), u['out_contrib'][k].hex(),
                            u['out_norm'][k].hex(), u['out_kids'][k], bool(u['out_inside'][k]))})
    return got


@pytest.fixture(scope='module')
def one_position():
    tok = Tokenizer([chr(c) for c in range(97, 123)])
    config = GPTConfig(vocab_size=tok.vocab_size)
    return record_step(init_params(config, random.Random(7)), config, tok, 'q')


def test_use_records_are_a_plain_walk_of_the_edges(recorded_christopher, one_position):
    for t in (recorded_christopher, one_position):
        u = use_records(t)
        assert len(u['use_ptr']) == len(t.param_names) + 1
        for m, name in enumerate(t.param_names):
            want = plain(t, name)
            assert stored(u, m) == want, name
            assert len(want) == len(t.positions()), name        # a record a position: a run each
        assert len(u['use_run']) == len(t.param_names) * len(t.positions())


def test_an_outputs_bundle_reaching_another_runs_use_is_not_inside(recorded_christopher):
    """out_inside: whether the outputs' edges into the interior all reach this run's uses (the bundle's
    children are then those uses: use_bundles). A real step never has it otherwise, so the first edge of an
    output of position 0 that leaves the interior (its running sum) is moved onto a use of position 1: that
    output is then one of both runs, reading a use of each, and the records' out fields are still a plain
    walk's, the flag False for those two runs only."""
    t, name = recorded_christopher, 'layer0.mlp_fc1'
    m = t.param_names.index(name)
    runs = plain(t, name)
    rows, cols = t.param_shapes[name]
    interior = set(range(t.param_base[name], t.param_base[name] + rows * cols)) | {u for r in runs for u in r['uses']}
    e = next(k for o in runs[0]['outputs'] for k in range(t.child_ptr[o], t.child_ptr[o + 1])
             if t.child[k] not in interior)
    moved = Trace.from_binary(t.to_binary(indexes=False, chains=False))
    moved.child[e] = runs[1]['uses'][0]
    u = use_records(moved)
    got = [(u['out_edges'][k], u['out_local'][k].hex(), u['out_contrib'][k].hex(), u['out_norm'][k].hex(),
            u['out_kids'][k], bool(u['out_inside'][k])) for k in range(u['use_ptr'][m], u['use_ptr'][m + 1])]
    assert got == [w['out'] for w in plain(moved, name)]
    assert [inside for *_, inside in got] == [False, False] + [True] * (len(got) - 2)


def test_a_matrix_whose_cells_are_not_all_of_one_scope_counts_each_cells_scope(recorded_christopher):
    """The edges into a matrix's cells are counted at once under their scope when all its cells are of one
    (every real step); a cell moved into another scope here: the per-scope counts are still a plain walk's."""
    t, name = recorded_christopher, 'layer0.attn_wq'
    m = t.param_names.index(name)
    moved = Trace.from_binary(t.to_binary(indexes=False, chains=False))
    a = t.param_base[name]
    moved.scope[a + 3] = t.scope[t.param_base['lm_head']]
    got = stored(use_records(moved), m)
    assert got == plain(moved, name)
    assert all(dict(r['scopes'])[t.scope[t.param_base['lm_head']]] > 0 for r in got)


def test_records_are_small(recorded_christopher):
    """A record a matrix and position and a pattern a matrix and side: never an entry per use."""
    t = recorded_christopher
    u = use_records(t)
    uses = sum(u['use_n'])
    assert uses > 40_000
    assert sum(len(u[name]) for name in USE_NAMES) < uses // 8
    assert len(u['pattern_ptr']) - 1 <= 2 * len(t.param_names)
    assert sorted(u) == sorted(USE_NAMES)
    f = use_figures(t, u)       # and their figures: one of each a record
    assert sorted(f) == sorted(FIGURE_NAMES) and {len(f[name]) for name in FIGURE_NAMES} == {len(u['use_run'])}


def test_periodic_rows_and_what_is_not():
    ids = [10, 13, 15, 17, 43, 46, 48, 50]
    assert periodic(ids, (4,)) == (8, 10, 33, (0, 3, 5, 7))
    assert expand(8, 10, 33, (0, 3, 5, 7)) == ids
    assert periodic(ids, (3, 2)) == (8, 10, 0, None)        # no width that fits
    assert periodic(ids[:7], (4,)) == (7, 10, 0, None)      # rows cut short
    assert periodic(ids, (8,)) == (8, 10, 41, tuple(i - 10 for i in ids))   # one row
    assert periodic([5, 6, 7, 9], (2,)) == (4, 5, 0, None)   # the second row differs
    assert periodic([], (2,)) == (0, 0, 0, None)


@pytest.fixture(scope='module')
def saved(recorded_christopher):
    return recorded_christopher.to_binary()


def test_a_file_stores_them_and_a_matrix_view_reads_them(recorded_christopher, saved):
    t = Trace.from_binary(saved)
    built = use_records(recorded_christopher)
    assert all(t._index[name] == built[name] for name in USE_NAMES)
    for name in t.param_names:
        walked = plain(t, name)
        inputs = sorted({i for r in walked for i in r['inputs']})
        want = ([u for r in walked for u in r['uses']], inputs, sorted({o for r in walked for o in r['outputs']} - set(inputs)))
        assert stored_uses(t, name) == want, name
        sel = select(t, param=name)
        assert (sel.nodes, sel.inputs, sel.outputs) == (tuple(sel.focus) + tuple(want[0]), tuple(want[1]), tuple(want[2]))


def test_a_file_without_them_opens_and_answers_the_same(saved):
    """Written before the use records: opened without building them (7 s at 5 M nodes), each matrix view
    found by walking the edges, the same selection and picture; saved again, it stores them."""
    old, new = Trace.from_binary(without(saved, *USE_NAMES)), Trace.from_binary(saved)
    assert 'use_ptr' not in old._index and 'use_ptr' in new._index
    for name in ('wte', 'lm_head', 'layer0.mlp_fc1', 'layer0.attn_wo'):
        assert stored_uses(old, name) is None and stored_uses(new, name) is not None
        assert select(old, param=name) == select(new, param=name), name
        assert build_view(old, param=name).source == build_view(new, param=name).source, name
    old.build_indexes()         # what the explorer does on opening a file: not the use records
    assert 'use_ptr' not in old._index
    again = Trace.from_binary(old.to_binary())
    assert all(again._index[name] == new._index[name] for name in USE_NAMES)
    with pytest.raises(TraceFormatError, match=r"columns are incomplete: missing use_kids \(a file"):
        Trace.from_binary(without(saved, 'use_kids'))


@pytest.mark.parametrize('name,k,value,message', [
    ('use_first', 0, 10 ** 6, r"use record 0 holds 16 uses from 1000000 in rows of pattern 0, period 16: not rows of "
                              r"a stored pattern within \d+\.\.\d+"),
    ('out_period', 40, 1, r"use record 40 holds \d+ outs from \d+ in rows of pattern \d+, period 1: not rows"),
    ('use_pattern', 30, 99, r"use record 30 holds \d+ uses from \d+ in rows of pattern 99"),
    ('use_n', 30, 7, r"use record 30 holds 7 uses"),
    ('pattern', 1, 10 ** 9, r"use record 0 holds 16 uses from \d+ in rows of pattern 0"),
    ('use_kids', 3, 10 ** 8, r"'use_kids' holds 100000000, which is not a node id"),
    ('use_run', 2, 10 ** 6, r"'use_run' holds 1000000, which is not a run"),
    ('use_scopes', 2, 10 ** 6, r"'use_scopes' holds 1000000, which is not a scope"),
    ('use_kid_ptr', 1, -1, r"'use_kid_ptr' must run forward"),
    ('out_inside', 0, 2, r"'out_inside' holds 2, which is not a flag"),
])
def test_a_damaged_use_record_is_refused_on_load(saved, name, k, value, message):
    with pytest.raises(TraceFormatError, match=r'^binary trace: stored index ' + message) as e:
        Trace.from_binary(set_item(saved, name, k, value))
    assert '\n' not in str(e.value)


@pytest.mark.parametrize('level', ['vector', 'block', 'auto'])
def test_a_matrix_view_folds_from_the_records_as_from_the_edges(saved, level, monkeypatch):
    """Each key of one record's uses or outputs takes its bundles from the records: the same folded view,
    bit for bit, as the file without them (its bundles walked edge by edge), and as adding each edge."""
    old, new = Trace.from_binary(without(saved, *USE_NAMES)), Trace.from_binary(saved)
    taken, real = [], UseBundles.add

    def counted(self, *args):
        got = real(self, *args)
        taken.append(got)
        return got
    monkeypatch.setattr(UseBundles, 'add', counted)
    for name in MATRICES:
        del taken[:]
        by_records = fold(new, select(new, param=name), level, budget=5000, edge_budget=5000)
        from_records = sum(taken)
        del taken[:]
        walked = fold(old, select(old, param=name), level, budget=5000, edge_budget=5000)
        assert not any(taken)
        assert described(by_records) == described(walked), (name, level)
        want, internal = bundles_edge_by_edge(new, by_records)
        assert exactly(drawn_bundles(by_records)) == exactly(want), (name, level)
        assert by_records.stats['internal_edges'] == internal
        if by_records.level != 'scalar' and name not in ('wte', 'wpe'):
            assert from_records == 2 * len(new.positions()), (name, level)    # the uses and outputs of each position


def _bits(x):
    return x.hex() if isinstance(x, float) else x


def test_stored_figures_are_each_records_values_read_one_by_one(saved):
    """A record's figures (FIGURE_COLUMNS) by their definition, from a plain walk's ids, bit for bit: the
    min/max of data and grad, the grads' L2 norm (fsum of squares), the first id of the largest |grad|, the
    largest |grad| and |grad x data|."""
    t = Trace.from_binary(saved)
    col = t.index
    checked = 0
    for name in t.param_names:
        m = t.param_names.index(name)
        for k, walked in zip(range(col('use_ptr')[m], col('use_ptr')[m + 1]), plain(t, name), strict=True):
            for side, ids in (('use', walked['uses']), ('out', walked['outputs'])):
                got = [_bits(col(f'{side}_fig_{f}')[k]) for f in
                       ('data_min', 'data_max', 'grad_min', 'grad_max', 'grad_norm', 'peak', 'mag_grad', 'mag_gd')]
                if col(f'{side}_pattern')[k] < 0:       # not rows: nothing stored, the view reads the values
                    assert got[5] == -1 and all(math.isnan(float.fromhex(g)) for g in got[:5] + got[6:])
                    continue
                ds, gs = [t.data[i] for i in ids], [t.grad[i] for i in ids]
                top = max(map(abs, gs))
                want = [min(ds), max(ds), min(gs), max(gs), math.sqrt(math.fsum(g * g for g in gs)),
                        next(i for i, g in zip(ids, gs) if abs(g) == top), top, max(abs(g * d) for g, d in zip(gs, ds))]
                assert got == [_bits(x) for x in want], (name, side, k)
                checked += 1
    assert checked >= 2 * len(t.param_names) * len(t.positions()) - 4 * len(t.positions())     # wte, wpe: not rows


def _drawn_figures(t, name, level):
    """Each drawn group's figures and overlay magnitudes of matrix `name`'s view, floats by their bits."""
    view = build_view(t, param=name, level=level)
    return [(n.name, tuple(map(_bits, vars(group_figures(t, n)).values())), tuple(map(_bits, group_magnitudes(t, n))))
            for n in view.folded.nodes if n.kind == 'group'], view.source


@pytest.mark.parametrize('level', ['vector', 'block'])
def test_a_view_reads_the_stored_figures_as_the_values_give_them(saved, level, monkeypatch):
    """A matrix view's groups of one record's uses or outputs take the stored figures and magnitudes: the same,
    bit for bit, and the same picture, as a file with the records but not their figures (read from the values,
    per row of the record) and one with neither (read per progression); saved again, it stores them."""
    full = Trace.from_binary(saved)
    bare = Trace.from_binary(without(saved, *FIGURE_NAMES))
    none = Trace.from_binary(without(saved, *USE_NAMES, *FIGURE_NAMES))
    assert has_figures(full) and not has_figures(bare) and 'use_ptr' in bare._index and not has_figures(none)
    read, real = [], summary.record_figures
    monkeypatch.setattr(summary, 'record_figures', lambda *a: read.append(a[1:]) or real(*a))
    for name in MATRICES:
        del read[:]
        got = _drawn_figures(full, name, level)
        stored = len(read)
        assert got == _drawn_figures(bare, name, level) == _drawn_figures(none, name, level), (name, level)
        assert len(read) == stored      # only the file with figures read them
        if name not in ('wte', 'wpe') and level == 'vector':
            assert stored == 2 * len(full.positions()), name     # each position's uses and outputs
    again = Trace.from_binary(bare.to_binary())
    assert all(again._index[name] == full._index[name] for name in FIGURE_NAMES)


@pytest.mark.parametrize('name,k,value,message', [
    ('use_fig_peak', 0, -2, r"'use_fig_peak' holds -2, which is not -1 nor a node id"),
    ('out_fig_peak', 3, 10 ** 9, r"'out_fig_peak' holds 1000000000, which is not -1 nor a node id"),
])
def test_a_damaged_stored_figure_is_refused_on_load(saved, name, k, value, message):
    with pytest.raises(TraceFormatError, match=r'^binary trace: stored index ' + message) as e:
        Trace.from_binary(set_item(saved, name, k, value))
    assert '\n' not in str(e.value)
    with pytest.raises(TraceFormatError, match=r"columns are incomplete: missing out_fig_mag_gd \(a file"):
        Trace.from_binary(without(saved, 'out_fig_mag_gd'))


def test_the_explorer_answers_the_same_with_the_records_their_figures_or_neither(saved):
    """Every answer of a matrix's view (the view drawn and cached, its exports, step-through, search, panels:
    the explorer's whole path) is the same, byte for byte, from each of the three files."""
    from graphviz_export.web.explorer.api import Api
    from graphviz_export.web.explorer.recordings import Recordings
    from tests.test_explorer_view_cache import _everything
    files = (saved, without(saved, *FIGURE_NAMES), without(saved, *USE_NAMES, *FIGURE_NAMES))
    apis = [Api(Recordings(trace=Trace.from_binary(raw))) for raw in files]
    for q in ('view=param&param=layer0.mlp_fc1', 'view=param&param=layer0.attn_wq&level=block'):
        got = [_everything(api, q) for api in apis]
        assert got[0] == got[1] == got[2], q


def test_a_view_expands_each_record_once_and_keeps_none_after(saved, monkeypatch):
    """Selecting, folding and drawing a matrix view read each of its records' ids once (remembered: the same
    list each time after), and keep none of them once the view is built (a 5 M-node matrix's 400,000 ids)."""
    import microgpt.recording.uses as uses
    t = Trace.from_binary(saved)
    made, real = [], uses._ids_of
    monkeypatch.setattr(uses, '_ids_of', lambda col, side, k: made.append((side, k)) or real(col, side, k))
    for name in ('layer0.mlp_fc1', 'lm_head'):
        del made[:]
        view = build_view(t, param=name, level='vector')
        m = t.param_names.index(name)
        records = range(t.index('use_ptr')[m], t.index('use_ptr')[m + 1])
        assert sorted(made) == sorted({(side, k) for side in ('use', 'out') for k in records}), name
        assert 'use_rows' not in t._cache
        assert sum(group_figures(t, n) is not None for n in view.folded.nodes if n.kind == 'group') > 0
    with uses.remembered(t):
        with uses.remembered(t):
            first = uses.record_ids(t, 'use', 0)
        assert uses.record_ids(t, 'use', 0) is first        # the inner one left them to the outer
    assert 'use_rows' not in t._cache and uses.record_ids(t, 'use', 0) is not first
    assert uses.record_ids(t, 'use', 0) == first


def test_outputs_that_are_also_inputs_are_left_out(saved):
    """An output of a matrix's uses that also feeds them is an input (select's definition): left out of the
    outputs. No matrix of the model has one: a record's input is made one of its outputs here."""
    t = Trace.from_binary(saved)
    m = t.param_names.index('layer0.mlp_fc1')
    k = t.index('use_ptr')[m]
    out = record_ids(t, 'out', k)
    kids = t._index['use_kids'] = t.index('use_kids')[:]
    kids[t.index('use_kid_ptr')[k]] = out[5]
    uses, inputs, outputs = stored_uses(t, 'layer0.mlp_fc1')
    assert out[5] in inputs and out[5] not in outputs and len(outputs) == len(set(outputs)) == sum(
        len(record_ids(t, 'out', j)) for j in range(k, t.index('use_ptr')[m + 1])) - 1
    assert all(map(holds, repeat(outputs), out[:5] + out[6:])) and not holds(outputs, out[5])


def test_holds_is_membership_in_sorted_ids():
    ids = [2, 5, 9, 40]
    assert [x for x in range(-1, 45) if holds(ids, x)] == ids and not holds([], 3)


def test_each_nodes_key_is_found_without_an_array_over_the_trace_when_the_records_give_every_bundle(saved,
                                                                                                     monkeypatch):
    """pieces.KeyOf: a node's key found in its part is the key the array over the trace gives it (-1 for an
    output or a node outside the view); a view whose bundles all come from the use records never makes the
    array (20 MB at 5 M nodes), a file without them does (its edges read one by one)."""
    made = []
    real = pieces.KeyOf.array
    monkeypatch.setattr(pieces.KeyOf, 'array', lambda self: (self._array is None and made.append(self)) or real(self))
    new, old = Trace.from_binary(saved), Trace.from_binary(without(saved, *USE_NAMES))
    for t, arrays in ((new, 0), (old, 1)):
        del made[:]
        sel = select(t, param='layer0.mlp_fc1')
        fold(t, sel, 'vector', budget=5000, edge_budget=5000)
        assert len(made) == arrays
    keys, sides, parts = pieces._keys(new, sel, 'vector', folding._group_key, True)
    kid = pieces.KeyOf(len(new), sides, parts)
    probe = [*sel.nodes, *sel.inputs, *sel.outputs, 0, len(new) - 1, *range(sel.outputs[0] - 3, sel.outputs[0] + 3)]
    found = [kid.of(i) for i in probe]
    assert found == [real(kid)[i] for i in probe] == [kid.of(i) for i in probe]
    assert {found[k] for k in range(len(sel.nodes), len(sel.nodes) + len(sel.inputs))} <= {
        j for j, sd in enumerate(sides) if sd == 'input'} and -1 in found and found[-len(probe) + len(sel.nodes):].count(-1) > 0


def test_the_edges_of_a_records_uses_counted_per_progression_as_one_by_one(saved):
    """use_bundles._edge_count: the uses' edges counted from two slices of the child pointers per progression of
    them (their record's rows) are their edges counted one by one, for every record of every matrix."""
    t = Trace.from_binary(saved)
    ptr, col = t.child_ptr, t.index
    for k in range(len(col('use_run'))):
        ids = record_ids(t, 'use', k)
        if not ids:
            continue
        want = sum(len(t.children(i)) for i in ids)
        strides = summary.record_strides(t, 'use', k)
        assert _edge_count(ptr, ids, strides) == want == _edge_count(ptr, ids, None), k
    rng = random.Random(4)       # and progressions of other ids (steps 1 to 5)
    for _ in range(20):
        ids = sorted(rng.sample(range(len(t) - 1), 300))
        assert _edge_count(ptr, ids, summary.progressions(ids, len(ids))) == sum(len(t.children(i)) for i in ids)


def test_whether_a_records_ids_are_single_is_read_from_its_pattern(saved):
    """summary.record_single: no two of a record's ids consecutive, from its pattern, as all_single reads the ids
    (every record of every matrix, both sides: rows of products two apart, and rows of consecutive ids)."""
    t = Trace.from_binary(saved)
    seen = set()
    for k in range(len(t.index('use_run'))):
        for side in ('use', 'out'):
            ids = record_ids(t, side, k)
            if ids:
                got = summary.record_single(t, side, k)
                assert got == all(b - a > 1 for a, b in zip(ids, ids[1:])), (side, k)
                seen.add(got)
    assert seen == {True, False}
