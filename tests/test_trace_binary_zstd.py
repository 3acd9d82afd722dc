"""The binary trace's zstd body (codecs.binary, the default since issue 25's 4 x 64 step): every column
bit for bit through it, its frames inflated on threads in body order, files written before it (zlib)
loading as they did, and each way its body can be damaged refused in one line without inflating more
than the header declares."""

import random
import tracemalloc
from array import array

import pytest
import zstandard
from click.testing import CliRunner

import cli
from microgpt.data import Tokenizer
from microgpt.model import GPTConfig, init_params
from microgpt.recording import Trace, record_step
from microgpt.recording.codecs import TraceFormatError, binary
from microgpt.recording.codecs.validate import plain_of
from tests.binary_bodies import frames, refile, split

PLAIN_COLUMNS = ('op', 'data', 'grad', 'scope', 'child_ptr', 'child', 'local', 'backward_order')


@pytest.fixture(scope='module')
def step():
    """'abc' on a 2-layer, 8-wide model, recorded with its "made by" chains and given its indexes:
    every kind of column a file holds (16,983 nodes)."""
    tok = Tokenizer(list('abc'))
    config = GPTConfig(vocab_size=tok.vocab_size, n_layer=2, n_embd=8, n_head=2, block_size=4)
    trace = record_step(init_params(config, random.Random(3)), config, tok, 'abc', lines=True)
    trace.indexes()
    return trace


def columns_of(raw):
    """{name: the column's bytes} of every column a file holds (the trace's, its indexes, made_by)."""
    plain = binary.decode(raw)
    cols = {**plain.pop('indexes'), **{k: v for k, v in plain.items() if isinstance(v, array)}}
    return {name: col.tobytes() for name, col in cols.items()}


def load(raw):
    with pytest.raises(TraceFormatError) as e:
        Trace.from_binary(raw)
    assert '\n' not in str(e.value)
    return str(e.value)


def test_zstd_is_the_default_and_every_column_comes_back_bit_for_bit(step):
    raw = step.to_binary()
    header, _ = frames(raw)
    assert header['compression'] == 'zstd' and binary.COMPRESSION == 'zstd'
    as_is = columns_of(step.to_binary(compression='none'))       # the bytes in memory, uncompressed
    assert set(as_is) >= {*PLAIN_COLUMNS, 'made_by', 'parent', 'rec_kids', 'use_kids', 'share_mag'}
    assert columns_of(raw) == as_is
    back = Trace.from_binary(raw)
    assert back == step and back.to_binary() == raw      # deterministic bytes


def test_a_column_cut_into_many_frames_comes_back_whole(step, monkeypatch):
    """Frames of 1,000 bytes (125 items of 8 bytes, 250 of 4): each column is the join of its
    frames, in order, whatever their number."""
    monkeypatch.setattr(binary, 'FRAME', 1000)
    raw = step.to_binary()
    header, cols = frames(raw)
    sizes = {spec[0]: spec[2] * spec[3] for spec in header['columns']}
    for spec, col in zip(header['columns'], cols):
        assert len(col) == -(-sizes[spec[0]] // 1000), spec     # ceil: no frame for an empty column
    assert max(map(len, cols)) > 50
    assert columns_of(raw) == columns_of(step.to_binary(compression='none'))


def test_files_written_with_zlib_load_as_they_did(step, tmp_path):
    """Every file written before zstd (version 3, zlib) loads to the same trace, through the same
    checks; and the zlib writer still writes what it wrote (a zstd round trip of its columns)."""
    old = step.to_binary(compression='zlib')
    assert split(old)[0]['compression'] == 'zlib' and 'frames' not in split(old)[0]
    assert columns_of(old) == columns_of(step.to_binary())
    (tmp_path / 'old.mgtrace').write_bytes(old)
    assert Trace.load(tmp_path / 'old.mgtrace') == step
    r = CliRunner().invoke(cli.main, ['inspect', '--trace', str(tmp_path / 'old.mgtrace')])
    assert r.exit_code == 0, r.output


def _flip(cols, k=0):
    frame = bytearray(cols[k][0])
    frame[len(frame) // 2] ^= 0x5A
    cols[k][0] = bytes(frame)


def _unsized(cols, header):
    data = zstandard.ZstdDecompressor().decompress(cols[0][0])
    cols[0][0] = zstandard.ZstdCompressor(level=1, write_content_size=False).compress(data)


def _short(cols, header):
    data = zstandard.ZstdDecompressor().decompress(cols[0][0])
    cols[0][0] = zstandard.ZstdCompressor(level=1).compress(data[:-1])


def _half_item(cols, header):
    """child_ptr's first frame cut into frames of 12 and the rest: 1.5 items of 8 bytes."""
    k = [c[0] for c in header['columns']].index('child_ptr')
    data = zstandard.ZstdDecompressor().decompress(cols[k][0])
    z = zstandard.ZstdCompressor(level=1)
    cols[k][:1] = [z.compress(data[:12]), z.compress(data[12:])]


def _empty_frame(cols, header):
    cols[0].insert(0, zstandard.ZstdCompressor(level=1).compress(b''))


def _trailing(cols, header):
    cols[0][0] += b'\0'


def _two_frames_in_one(cols, header):
    data = zstandard.ZstdDecompressor().decompress(cols[0][0])
    z = zstandard.ZstdCompressor(level=1)
    cols[0][0] = z.compress(data[:10]) + z.compress(data[10:])


def _not_zstd(cols, header):
    cols[0][0] = b'\x28\xb5\x2f\xfd' + b'\xff' * (len(cols[0][0]) - 4)


def _swapped(cols, header):
    """op's frame (1 byte a node) where scope's (4) belongs and the other way round."""
    names = [c[0] for c in header['columns']]
    i, j = names.index('op'), names.index('scope')
    cols[i], cols[j] = cols[j], cols[i]


# name -> (what is done to the frames, the one line that refuses the file)
DAMAGE = {
    'a byte flipped': (lambda cols, header: _flip(cols), r"^binary trace is damaged \(zstd, column 'op': .+\)$"),
    'a frame without its size': (_unsized, r"^binary trace is damaged \(zstd, column 'op': a frame declares no size; "
                                           r"the column needs \d+ more, in whole 1-byte items\)$"),
    'an empty frame': (_empty_frame, r"^binary trace is damaged \(zstd, column 'op': a frame declares 0 bytes; "
                                      r"the column needs \d+ more, in whole 1-byte items\)$"),
    'a frame of half an item': (_half_item, r"^binary trace is damaged \(zstd, column 'child_ptr': a frame declares 12 "
                                            r"bytes; the column needs \d+ more, in whole 8-byte items\)$"),
    'a frame one byte short': (_short, r"^binary trace is damaged \(zstd, column 'op': its frames hold (\d+) of the "
                                       r"\d+ bytes it declares\)$"),
    'a byte after a frame': (_trailing, r"^binary trace is damaged \(zstd, column 'op': compressed input contains 1 "
                                        r"bytes of unused data, which is disallowed\)$"),
    'two frames given as one': (_two_frames_in_one, r"^binary trace is damaged \(zstd, column 'op': compressed input "
                                                    r"contains \d+ bytes of unused data, which is disallowed\)$"),
    'not zstd': (_not_zstd, r"^binary trace is damaged \(zstd, column 'op': .+\)$"),
    "two columns' frames swapped": (_swapped, r"^binary trace is damaged \(zstd, column 'op': a frame declares \d+ "
                                              r"bytes; the column needs \d+ more, in whole 1-byte items\)$"),
}


@pytest.mark.parametrize('name', DAMAGE)
def test_a_damaged_frame_is_refused_in_one_line_naming_its_column(step, name):
    damage, message = DAMAGE[name]
    header, cols = frames(step.to_binary())
    damage(cols, header)
    assert load(refile(header, cols)) == load(refile(header, cols))    # the same line each time
    with pytest.raises(TraceFormatError, match=message):
        Trace.from_binary(refile(header, cols))


@pytest.mark.parametrize('frames_value,message', [
    (None, r'^binary trace: "frames" must list, for each of its \d+ columns, its zstd frames\' sizes'),
    ([], r'^binary trace: "frames" must list, for each of its \d+ columns'),
    ('x', r'^binary trace: "frames" must list'),
    ('zero', r'^binary trace: "frames" must list'),
    ('true', r'^binary trace: "frames" must list'),
])
def test_a_header_whose_frames_are_not_sizes_is_refused(step, frames_value, message):
    header, cols = frames(step.to_binary())
    sizes = [[len(f) for f in col] for col in cols]
    if frames_value == 'zero':
        frames_value = [[0] + s for s in sizes]
    elif frames_value == 'true':
        frames_value = [[True] if s == [1] else s for s in sizes[:1]] + [[True]] + sizes[2:]
    header['frames'] = frames_value
    assert 'frames' in load(refile(header, cols, sizes=False))
    with pytest.raises(TraceFormatError, match=message):
        Trace.from_binary(refile(header, cols, sizes=False))


def test_a_body_cut_short_or_with_bytes_after_it_is_refused(step):
    raw = step.to_binary()
    assert load(raw[:-1]).startswith(f"binary trace is cut short: its frames declare {len(raw) - len(split_head(raw))} "
                                     f"bytes, the body holds {len(raw) - len(split_head(raw)) - 1}")
    assert load(raw + b'abc') == "binary trace: 3 bytes follow the compressed body"


def split_head(raw):
    """The signature, size and header of a file: what is not its body."""
    header, cols = frames(raw)
    return raw[:len(raw) - sum(len(f) for col in cols for f in col)]


def test_the_first_damaged_column_in_body_order_is_named_whatever_the_threads_finish_first(step):
    header, cols = frames(step.to_binary())
    names = [c[0] for c in header['columns']]
    for k in (names.index('child'), len(names) - 1):    # a late one and the last one: 'child' comes first
        _flip(cols, k)
    for _ in range(5):
        assert load(refile(header, cols)).startswith("binary trace is damaged (zstd, column 'child': ")


def test_a_frame_declaring_more_than_its_column_is_refused_before_it_is_inflated(step):
    """A zstd bomb: 32 MiB of zeros in a 1 kB frame where op's 16,983 bytes belong (a 3 MB file of
    them would ask for 100 GB). Its declared size is checked against the column first: the load
    allocates a few hundred kB, not the 32 MiB."""
    header, cols = frames(step.to_binary())
    cols[0] = [zstandard.ZstdCompressor(level=19).compress(b'\0' * 2 ** 25)]
    bad = refile(header, cols)
    assert len(cols[0][0]) < 2000
    tracemalloc.start()
    try:
        message = load(bad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert message == (f"binary trace is damaged (zstd, column 'op': a frame declares {2 ** 25} bytes; the column "
                       f"needs {len(step.op)} more, in whole 1-byte items)")
    assert peak < 2 * 2 ** 20, peak


def test_the_header_cap_holds_for_zstd_bodies(step):
    """A header declaring more than MAX_TRACE_BYTES of columns is refused before any frame is read."""
    header, cols = frames(step.to_binary())
    header['columns'][1][3] = 2 ** 26           # 512 MiB of 'data'
    assert load(refile(header, cols)).startswith("binary trace: its columns declare ")
    assert 'at most 512 MiB' in load(refile(header, cols))


def test_a_damaged_zstd_file_is_one_error_line_on_the_command_line(step, tmp_path):
    header, cols = frames(step.to_binary())
    _flip(cols)
    (tmp_path / 'bad.mgtrace').write_bytes(refile(header, cols))
    r = CliRunner().invoke(cli.main, ['inspect', '--trace', str(tmp_path / 'bad.mgtrace')])
    errors = [ln for ln in r.output.splitlines() if ln.startswith('Error: ')]
    assert r.exit_code == 2 and len(errors) == 1 and "column 'op'" in errors[0], r.output
    assert 'Traceback' not in r.output


def test_an_unknown_compression_is_refused_by_both_sides(step):
    with pytest.raises(ValueError, match=r"^compression must be one of zstd, zlib, none, got 'lz4'$"):
        binary.encode(plain_of(step), 'lz4')
    header, cols = frames(step.to_binary())
    header['compression'] = 'lz4'
    assert load(refile(header, cols)) == "binary trace: compression must be one of zstd, zlib, none, got 'lz4'"
