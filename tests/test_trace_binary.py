"""The binary trace: a bit-exact round trip of every column, loading by content
(not by name), and one-line errors for damaged files."""

import tracemalloc

import pytest

from microgpt.recording import Trace
from microgpt.recording.codecs import TraceFormatError, binary
from microgpt.recording.codecs.binary import MAGIC
from tests.binary_bodies import join, split

COLUMNS = ('op', 'data', 'grad', 'scope', 'child_ptr', 'child', 'local', 'backward_order')


def test_round_trip_is_exact_and_matches_the_json(recorded_christopher, tmp_path):
    tr = recorded_christopher
    assert tr.to_binary(tmp_path / 'c.mgtrace') == tmp_path / 'c.mgtrace'     # the file's name, not its bytes
    raw = (tmp_path / 'c.mgtrace').read_bytes()
    assert raw == tr.to_binary() and raw.startswith(MAGIC)
    back = Trace.from_binary(raw)
    for name in COLUMNS:
        assert getattr(back, name) == getattr(tr, name), name
    assert back.scopes == tr.scopes and back.meta == tr.meta and back.pow_exponent == tr.pow_exponent
    assert (back.param_names, back.param_shapes, back.param_base) == (tr.param_names, tr.param_shapes, tr.param_base)
    assert [back.name(i) for i in range(len(tr))] == [tr.name(i) for i in range(len(tr))]
    assert len(raw) * 5 < len(tr.to_json())  # compact: ~1.9 MB against ~21.8 MB
    assert back.to_binary() == raw            # deterministic bytes


def test_loading_holds_the_columns_and_one_column_more_not_the_whole_body(recorded_christopher):
    """A load inflates the body one column at a time and checks the edges without a list of
    the offsets: its peak is the columns it makes plus about one column's bytes. Inflating the
    whole body first (1.12 GB at the peak for a 5.1 M-node file whose columns are 0.53 GB) or
    a Python list of the offsets (36 B/node) would each go past the bound."""
    raw = recorded_christopher.to_binary()
    plain = binary.decode(raw)
    columns = [c for c in plain.values() if hasattr(c, 'itemsize')] + list(plain.pop('indexes').values())
    total, largest = sum(len(c) * c.itemsize for c in columns), max(len(c) * c.itemsize for c in columns)
    del plain, columns
    tracemalloc.start()
    try:
        kwargs = binary.read(raw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert kwargs['grad'] == recorded_christopher.grad
    assert peak < total + 3 * largest, (peak, total, largest)


def test_load_tells_the_formats_apart_by_content(recorded_christopher, tmp_path):
    tr = recorded_christopher
    assert tr.to_binary(tmp_path / 'named.json') == tmp_path / 'named.json'   # a binary trace, misleading name
    assert tr.to_json(tmp_path / 'named.mgtrace') == tmp_path / 'named.mgtrace'  # and the other way round
    for name in ('named.json', 'named.mgtrace'):
        back = Trace.load(tmp_path / name)
        assert back.grad == tr.grad and back.child == tr.child


@pytest.mark.parametrize('damage,message', [
    (lambda raw: raw[:len(raw) // 2], r'^binary trace is cut short: its frames declare \d+ bytes, the body holds \d+$'),
    (lambda raw: raw[:12] + b'{not json' + raw[12:], r'^binary trace is damaged \(JSONDecodeError'),
    (lambda raw: b'PNG' + raw, r'is neither a JSON trace nor a binary one'),
])
def test_damaged_files_are_one_line_errors(recorded_christopher, tmp_path, damage, message):
    raw = recorded_christopher.to_binary()
    (tmp_path / 't.mgtrace').write_bytes(damage(raw))
    with pytest.raises(TraceFormatError, match=message) as e:
        Trace.load(tmp_path / 't.mgtrace')
    assert '\n' not in str(e.value)


def test_out_of_range_ids_are_refused(recorded_christopher):
    header, body = split(recorded_christopher.to_binary())
    offset = 0
    for name, _, itemsize, count in header['columns']:
        if name == 'child':
            body[offset:offset + 8] = (10 ** 9).to_bytes(8, 'little', signed=True)  # child 0 -> 1e9
            break
        offset += itemsize * count
    bad = join(header, body)
    # the validator both codecs share names the node whose edge it is (the first op, after the 4192 parameters)
    with pytest.raises(TraceFormatError, match=r'^trace: node 4192: child 1000000000 is not a node id \(0\.\.103674\)$'):
        Trace.from_binary(bad)


def test_a_trace_recorded_from_a_script_round_trips_with_its_sources_and_probes(tmp_path):
    from microgpt.recording.script import record_script
    from tests.test_record_script import install
    trace = record_script(install(tmp_path, 'micrograd_style.py'))
    assert trace.source is not None and trace.op_names[-1] == 'tanh'
    back = Trace.from_binary(trace.to_binary())
    assert back == trace
    assert back.op_names == trace.op_names and back.sources == trace.sources and back.probes == trace.probes
    assert back.source == trace.source
