"""A JSON trace is written as it is made (constant memory), refused with the binary format
named when the loader would refuse it, and a loader refuses an oversized file before reading."""

import json
import os
import tracemalloc

import pytest
from click.testing import CliRunner

import cli
from microgpt.files import read_capped_bytes
from microgpt.recording import Trace
from microgpt.recording.codecs import TraceFormatError
from microgpt.recording.codecs import json as json_codec
from microgpt.recording.step import record_step


@pytest.fixture(scope='module')
def small(tiny):
    params, config, tok = tiny
    return record_step(params, config, tok, 'abcabc')


def test_the_streamed_file_is_the_canonical_json_and_loads_back_the_same(small, tmp_path):
    path = tmp_path / 't.json'
    assert small.to_json(path) == path          # the API returns the path it wrote
    text = path.read_text()
    # one JSON value, written as json.dumps writes it (no stray or missing comma between chunks)
    assert text == json.dumps(json.loads(text), separators=(',', ':'))
    assert Trace.load(path) == small
    assert list(json.loads(text))[-1] == 'nodes' and len(json.loads(text)['nodes']) == len(small)


def test_a_script_trace_keeps_its_ops_and_sources_after_the_nodes(tmp_path):
    """The tables written after the node list (a script's own ops and source lines)."""
    from microgpt.recording.script import record_script
    from tests.test_record_script import install
    t = record_script(install(tmp_path, 'micrograd_style.py'))
    d = json.loads(t.to_json())
    assert list(d)[-3:] == ['nodes', 'ops', 'sources'] and d['ops'] == ['tanh']
    assert Trace.from_json(t.to_json()) == t


def test_writing_holds_a_node_at_a_time_not_the_text(small, tmp_path):
    path = tmp_path / 't.json'
    tracemalloc.start()
    try:
        small.to_json(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    size = path.stat().st_size
    assert size > 1_000_000 and peak < size / 10, (size, peak)


@pytest.mark.parametrize('cap_of', [lambda size, n: n * json_codec.SMALLEST_NODE - 1,    # its nodes alone pass it
                                    lambda size, n: size - 1])                            # its text passes it
def test_a_trace_the_loader_would_refuse_is_not_written(small, tmp_path, monkeypatch, cap_of):
    size = len(small.to_json().encode())
    monkeypatch.setattr(json_codec, 'MAX_TRACE_BYTES', cap_of(size, len(small)))
    path = tmp_path / 'old.json'
    path.write_text('the old file')
    with pytest.raises(json_codec.TraceTooLarge, match=r"^a JSON trace of \d+ nodes is \d+ MiB or more; the "
                                                       r"loader reads at most \d+ MiB: use --format binary"):
        small.to_json(path)
    assert path.read_text() == 'the old file' and os.listdir(tmp_path) == ['old.json']


def test_export_says_to_use_the_binary_format_and_exits_2(small, tmp_path, monkeypatch):
    src = tmp_path / 'small.mgtrace'
    small.to_binary(src)
    monkeypatch.setattr(json_codec, 'MAX_TRACE_BYTES', 1000)
    r = CliRunner().invoke(cli.main, ['export', '--trace', str(src), '--format', 'json', '-o', str(tmp_path / 'o.json')])
    assert r.exit_code == 2, r.output
    assert 'use --format binary' in r.output and 'Traceback' not in r.output
    assert not (tmp_path / 'o.json').exists()


def test_an_oversized_file_is_refused_before_it_is_read(tmp_path):
    """A sparse 100 MiB file under a 64 MiB cap: refused from its size, not after reading 64 MiB."""
    path = tmp_path / 'big.json'
    with open(path, 'wb') as f:
        f.truncate(100 * 2 ** 20)
    tracemalloc.start()
    try:
        with pytest.raises(TraceFormatError, match=r"^trace file .*big\.json is larger than 64 MiB; refusing to read it$"):
            read_capped_bytes(path, 64 * 2 ** 20, 'trace file', TraceFormatError)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 ** 20, peak


def test_loading_a_small_file_holds_its_size_not_the_cap(small, tmp_path):
    """read(n) holds n bytes at first: asked for the cap (512 MiB), every load took that much."""
    path = tmp_path / 't.mgtrace'
    small.to_binary(path)
    size = path.stat().st_size
    tracemalloc.start()
    try:
        assert Trace.load(path) == small
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * size + 2 ** 20 < 2 ** 27, (size, peak)
