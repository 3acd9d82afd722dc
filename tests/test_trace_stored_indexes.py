"""Binary trace version 2 stores the indexes and run records (recording.indexes,
recording.aggregates): loading one never builds them, they equal what the columns give
(checked against a brute-force recomputation and against the version 1 path, which builds
them), a damaged one is refused in one line, and a view drawn from them is the view drawn
from freshly built ones."""

from array import array

import pytest

from graphviz_export.view import build_view
from microgpt.recording import Trace
from microgpt.recording import trace as trace_module
from microgpt.recording.codecs import TraceFormatError
from microgpt.recording.codecs.stored import STORED_NAMES
from microgpt.recording.ops import OP_CODE
from tests.binary_bodies import join, split


def column_at(header, name):
    """(byte offset, item size, length) of column `name` in the body."""
    offset = 0
    for col, _, itemsize, length in header['columns']:
        if col == name:
            return offset, itemsize, length
        offset += itemsize * length
    raise KeyError(name)


def set_item(raw, name, k, value):
    """The file with item k of column `name` replaced by `value`."""
    header, body = split(raw)
    offset, itemsize, _ = column_at(header, name)
    code = next(c[1] for c in header['columns'] if c[0] == name)
    body[offset + k * itemsize:offset + (k + 1) * itemsize] = array(code, [value]).tobytes()
    return join(header, body)


def without(raw, *names):
    """The file with columns `names` taken out (their header entries and their bytes)."""
    header, body = split(raw)
    for name in names:
        offset, itemsize, length = column_at(header, name)
        header['columns'] = [c for c in header['columns'] if c[0] != name]
        del body[offset:offset + itemsize * length]
    return join(header, body)


def brute_force(tr):
    """The indexes of INDEX_COLUMNS, by the definitions in recording/indexes.py, node by node."""
    n, scope, op = len(tr), tr.scope, tr.op
    run_start = [i for i in range(n) if i == 0 or scope[i] != scope[i - 1]] + [n]
    parents = [[] for _ in range(n)]
    for p in range(n):
        for e in range(tr.child_ptr[p], tr.child_ptr[p + 1]):
            parents[tr.child[e]].append((p, e))
    ptr = [0]
    for ps in parents:
        ptr.append(ptr[-1] + len(ps))
    rank = [-1] * n
    for r, i in enumerate(tr.backward_order):
        rank[i] = r
    return {'run_start': run_start, 'run_scope': [scope[a] for a in run_start[:-1]],
            'parent_ptr': ptr, 'parent': [p for ps in parents for p, _ in ps],
            'parent_edge': [e for ps in parents for _, e in ps],
            'dangling': [i for i in range(n) if not parents[i] and op[i] != OP_CODE['const']],
            'backward_rank': rank,
            # a value: not a constant, read by an op of another scope or by none (recording/names.py)
            'value': [int(op[i] != OP_CODE['const'] and (not parents[i] or any(scope[p] != scope[i] for p, _ in parents[i])))
                      for i in range(n)]}


@pytest.fixture(scope='module')
def files(recorded_christopher):
    """(version 2 bytes, version 1 bytes) of one recording; a fresh Trace for each so that no
    index built for one is seen by the other."""
    v2 = recorded_christopher.to_binary(chains=False)  # what version 2 held (3 adds made-by chains when kept)
    header, body = split(recorded_christopher.to_binary(indexes=False))
    header['version'] = 1           # what this tool wrote before issue 25
    return v2, join(header, body)


def test_version_2_stores_what_a_brute_force_recomputation_gives(files, monkeypatch):
    v2, v1 = files
    header, _ = split(v2)
    assert header['version'] == 3 and [c[0] for c in header['columns'][-len(STORED_NAMES):]] == list(STORED_NAMES)
    loaded = Trace.from_binary(v2)
    want = brute_force(loaded)
    for name, col in want.items():
        assert loaded._index[name].tolist() == col, name
    # the run records equal the ones the version 1 path builds from its columns
    old = Trace.from_binary(v1)
    assert not old._index
    built = old.indexes()
    for name in STORED_NAMES:
        assert loaded._index[name].tobytes() == built[name].tobytes(), name


def test_loading_version_2_builds_no_index(files, monkeypatch):
    v2, _ = files
    def refuse(*a, **k):
        raise AssertionError('an index was built on load')
    monkeypatch.setattr(trace_module, 'build', refuse)
    monkeypatch.setattr(trace_module, 'run_records', refuse)
    monkeypatch.setattr(trace_module, 'share_records', refuse)
    tr = Trace.from_binary(v2)
    assert build_view(tr, token=5).folded.nodes         # a view, its names and bundles, from the file
    assert tr.parents(tr.meta['loss_id']) == []


def test_a_view_from_stored_indexes_is_the_view_from_built_ones(files):
    v2, v1 = files
    stored, built = Trace.from_binary(v2), Trace.from_binary(v1)
    for q in ({'token': 11}, {'token': 0, 'level': 'scalar', 'budget': 4000}, {'layer': 0, 'head': 1},
              {'document': True}, {'param': 'layer0.attn_wq[3][5]'}, {'param': 'wte'}):
        assert build_view(stored, **q).source == build_view(built, **q).source, q


def test_version_1_files_still_load_and_build_their_indexes_once(files, monkeypatch):
    _, v1 = files
    tr = Trace.from_binary(v1)
    calls = []
    real = trace_module.run_records
    monkeypatch.setattr(trace_module, 'run_records', lambda t: calls.append(1) or real(t))
    build_view(tr, token=3)
    build_view(tr, token=4)
    assert calls == [1]


@pytest.mark.parametrize('name,k,value,message', [
    ('parent', 0, 10 ** 9, r"'parent' holds 1000000000, which is not a node id \(0\.\.103674\)"),
    ('parent_edge', 7, 4294967295, r"'parent_edge' holds 4294967295, which is not an edge"),
    ('parent_ptr', 5, 10 ** 8, r"'parent_ptr' must run forward from 0 to \d+"),
    ('run_start', 3, 0, r"'run_start' must run up from 0 to 103675"),
    ('run_scope', 2, 0, r"'run_scope' does not name the scope of each run's first node"),
    ('backward_rank', 9, 10 ** 8, r"'backward_rank' holds 100000000, which is not a place in the backward pass"),
    ('rec_scope', 0, 10 ** 6, r"'rec_scope' holds 1000000, which is not a scope"),
    ('rec_kid_ptr', 1, -5, r"'rec_kid_ptr' must run forward"),
    ('rec_kids', 4, 10 ** 9, r"'rec_kids' holds 1000000000, which is not a node id"),
    ('value', 6, 2, r"'value' holds 2, which is not a flag \(0\.\.1\)"),
    ('dangling', 0, 10 ** 9, r"'dangling' must be node ids in increasing order"),
])
def test_damaged_stored_indexes_are_refused_in_one_line(files, name, k, value, message):
    v2, _ = files
    with pytest.raises(TraceFormatError, match=r'^binary trace: stored index ' + message) as e:
        Trace.from_binary(set_item(v2, name, k, value))
    assert '\n' not in str(e.value)


def test_a_stored_index_of_the_wrong_length_or_missing_is_refused(files):
    v2, _ = files
    header, body = split(v2)
    spec = next(c for c in header['columns'] if c[0] == 'backward_rank')
    offset, itemsize, length = column_at(header, 'backward_rank')
    spec[3] -= 1        # one rank fewer, the body one item shorter: sizes agree, the length does not
    del body[offset:offset + itemsize]
    with pytest.raises(TraceFormatError, match=r"^binary trace: stored index 'backward_rank' has 103674 entries; "
                                               r"this trace's columns need 103675$"):
        Trace.from_binary(join(header, body))
    with pytest.raises(TraceFormatError, match=r"^binary trace: stored index columns are incomplete: missing dangling"):
        Trace.from_binary(without(v2, 'dangling'))


def test_index_columns_in_a_version_1_file_or_with_the_wrong_type_are_refused(files):
    v2, _ = files
    header, body = split(v2)
    header['version'] = 1
    with pytest.raises(TraceFormatError, match=r"^binary trace: a column must be .* got \['run_start'"):
        Trace.from_binary(join(header, body))
    header, body = split(v2)
    next(c for c in header['columns'] if c[0] == 'parent')[1] = 'q'
    with pytest.raises(TraceFormatError, match=r"^binary trace: column 'parent' must have type 'I' of 4 bytes"):
        Trace.from_binary(join(header, body))


def test_stored_indexes_have_their_own_cap(files, monkeypatch):
    from microgpt.recording.codecs import binary
    v2, _ = files
    header, body = split(v2)
    columns = sum(c[2] * c[3] for c in header['columns'] if c[0] not in STORED_NAMES)
    monkeypatch.setattr(binary, 'MAX_TRACE_BYTES', columns)     # the columns fit, the indexes beside them too
    assert len(Trace.from_binary(v2)) == 103675
    spec = next(c for c in header['columns'] if c[0] == 'parent')
    spec[3] = columns       # declares more than the cap: refused before decompressing
    with pytest.raises(TraceFormatError, match=r"^binary trace: its stored indexes declare \d+ bytes; at most"):
        Trace.from_binary(join(header, body))
