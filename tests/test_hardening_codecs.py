"""Both trace codecs refuse the same corrupt files, in one line, and never load a bad one.

Every case is a real trace (the port's, and a user script's with sources, probes
and its own op) with one column element or one table entry changed, written with
EACH codec (JSON and binary), then loaded both ways and through the command line
(`inspect --trace`). For every case:

- both codecs refuse it (TraceFormatError, one line; exit 2 through the CLI) or
  both load it, to the same trace;
- a trace that loads passes `assert_sound` (tests/trace_mutants.py: ids in range,
  no later child with children of its own, so no cycle; meta, params, pow
  exponents, probes and text as the rest of the tool assumes), and draws
  (`render --format dot`, no layout) without a traceback;
- no traceback anywhere.

Then what only the binary file can get wrong (its header, edge offsets, size
prefix, compression) and named cases that must be refused. Small traces (531 and 398
nodes) keep a case to a few tens of milliseconds.
"""

import json
import os
import struct
import tracemalloc
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cli
from microgpt.recording import OP_CODE, Trace
from microgpt.recording.codecs import TraceFormatError, binary
from microgpt.recording.codecs import json as json_codec
from tests.trace_mutants import Quiet, assert_sound, clone, mutations, port_plain, script_plain

FACTOR = int(os.environ.get('FUZZ_FACTOR', '1'))  # FUZZ_FACTOR=10: a longer hunt, by hand
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                      HealthCheck.too_slow])
SCRIPTS = Path(__file__).parent / 'scripts'


@pytest.fixture(scope='module')
def plains(tmp_path_factory):
    return Quiet(port=port_plain(), script=script_plain(tmp_path_factory.mktemp('script'), Path(SCRIPTS)))


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp('codecs')


def load(raw):
    """('ok', Trace) or ('refused', message): the outcome of loading a file's bytes."""
    try:
        return 'ok', (Trace.from_binary(raw) if raw.startswith(binary.MAGIC) else Trace.from_json(raw.decode()))
    except TraceFormatError as e:
        return 'refused', str(e)


def inspect(folder, name, raw):
    path = folder / name
    path.write_bytes(raw)
    r = CliRunner().invoke(cli.main, ['inspect', '--trace', str(path)])
    assert r.exception is None or isinstance(r.exception, SystemExit), (name, repr(r.exception))
    assert 'Traceback' not in r.output
    return r


def check_case(folder, what, plain):
    """Both codecs agree on `plain`; what loads is sound and draws; what is refused, in one line.
    The command line reads one of the two files (the binary one): a file that loads gave the same
    trace both ways (checked), and a refusal is the codec's own one-line message (checked for both),
    which the command line prints through the one error path both codecs share."""
    files = {'m.json': json_codec.encode(plain).encode(), 'm.mgtrace': binary.encode(plain)}
    outcomes = {name: load(raw) for name, raw in files.items()}
    kinds = {name: o[0] for name, o in outcomes.items()}
    assert len(set(kinds.values())) == 1, (what, outcomes)
    r = inspect(folder, 'm.mgtrace', files['m.mgtrace'])
    if kinds['m.json'] == 'refused':
        for name in files:
            assert '\n' not in outcomes[name][1], (what, name, outcomes[name][1])
        errors = [ln for ln in r.output.splitlines() if ln.startswith('Error: ')]
        assert r.exit_code == 2 and len(errors) == 1 and outcomes['m.mgtrace'][1] in errors[0], (what, r.output)
    else:
        assert r.exit_code == 0, (what, r.output)
        a, b = outcomes['m.json'][1], outcomes['m.mgtrace'][1]
        assert a == b or a.to_json() == b.to_json(), what     # the same trace (a NaN exponent too)
        assert_sound(a)
        r = CliRunner().invoke(cli.main, ['render', '--trace', str(folder / 'm.mgtrace'), '--node', 'loss',
                                          '--depth', '2', '--format', 'dot', '-o', str(folder / 'm.dot')])
        assert r.exit_code in (0, 2) and 'Traceback' not in r.output, (what, r.output)
        assert r.exception is None or isinstance(r.exception, SystemExit), (what, repr(r.exception))
    return kinds['m.json']


@settings(max_examples=150 * FACTOR, **SETTINGS)
@given(data=st.data())
def test_both_codecs_refuse_the_same_mutated_port_traces(plains, folder, data):
    what, mutant = data.draw(mutations(plains['port']))
    check_case(folder, what, mutant)


@settings(max_examples=80 * FACTOR, **SETTINGS)
@given(data=st.data())
def test_both_codecs_refuse_the_same_mutated_script_traces(plains, folder, data):
    what, mutant = data.draw(mutations(plains['script']))
    check_case(folder, what, mutant)


def _edit(plain, fn):
    m = clone(plain)
    fn(m)
    return m


def _set(*path, value):
    def fn(m):
        target = m
        for k in path[:-1]:
            target = target[k]
        target[path[-1]] = value
    return fn


def _first(m, op):
    return m['op'].index(OP_CODE[op])


def _cycle(m):
    """The first add node's first child becomes the loss, which depends on it."""
    m['child'][m['child_ptr'][_first(m, 'add')]] = m['meta']['loss_id']


def _cells_on_ops(m):
    """The last matrix moved to start at the first op: its cells are not param nodes."""
    m['params'][-1][3] = sum(p[1] * p[2] for p in m['params'])


def _self_loop(m):
    i = _first(m, 'add')
    m['child'][m['child_ptr'][i]] = i


def _pow_without_exponent(m):
    m['pow_exponent'] = m['pow_exponent'][1:]


def _exponent_on_an_add(m):
    m['pow_exponent'].append([_first(m, 'add'), 2])


def _add_as_pow(m):
    m['op'][_first(m, 'add')] = 5


# name -> (trace, edit, what the one-line refusal says)
REFUSED = {
    'a cycle': ('port', _cycle, 'is a later node with children of its own'),
    'a node its own child': ('port', _self_loop, 'is a later node with children of its own'),
    'a child past the last node': ('port', _set('child', 30, value=10 ** 6), 'is not a node id (0..530)'),
    'a negative child': ('port', _set('child', 3, value=-1), 'child -1 is not a node id'),
    'a scope past the table': ('port', _set('scope', 7, value=500), 'scope 500 is not an index into "scopes"'),
    'a backward_order id past the end': ('port', _set('backward_order', 0, value=531),
                                         '"backward_order" must hold node ids 0..530'),
    'meta.token_strs of ints': ('port', _set('meta', 'token_strs', value=[0, 1, 2]), 'meta.token_strs holds 0'),
    'meta.tokens out of range': ('port', _set('meta', 'tokens', value=[0, 1, 2 ** 31]), 'meta.tokens holds 2147483648'),
    'meta.loss_id past the end': ('port', _set('meta', 'loss_id', value=531), 'meta.loss_id 531 is not a node id'),
    'meta.position_loss_ids out of range': ('port', _set('meta', 'position_loss_ids', value=[-1]),
                                            'meta.position_loss_ids holds -1'),
    'meta.config of a string': ('port', _set('meta', 'config', 'n_embd', value='4'), 'meta.config.n_embd must be'),
    'a surrogate in meta.doc': ('port', _set('meta', 'doc', value='\ud800'), 'meta.doc holds U+D800'),
    'a scope role of a number': ('port', _set('scopes', 3, 4, value=7), 'scope 3: role must be a string or null'),
    'a NUL in a scope block': ('port', _set('scopes', 3, 2, value='a\x00'), 'scope 3: block must be a string'),
    'a pow node without its exponent': ('port', _pow_without_exponent, 'a pow node without its exponent'),
    'an exponent on an add node': ('port', _exponent_on_an_add, 'has an exponent but is not a pow node'),
    'an exponent of a string': ('port', _set('pow_exponent', 0, 1, value='2'), '"exponent" must be a number'),
    'an add node turned pow': ('port', _add_as_pow, 'pow takes 1 children, this node has 2'),
    'a parameter too big': ('port', _set('params', 0, 1, value=10 ** 4), "parameter 'wte': rows must be"),
    'a matrix whose cells are ops': ('port', _cells_on_ops, "a cell of parameter 'layer0.mlp_fc2' is not a param node"),
    'recorded_from.step of a string': ('script', _set('meta', 'recorded_from', 'step', value='1'),
                                       'meta.recorded_from.step must be a whole number'),
    'recorded_from.script of a list': ('script', _set('meta', 'recorded_from', 'script', value=['x']),
                                       'meta.recorded_from.script must be a string'),
    'recorded_from of a string': ('script', _set('meta', 'recorded_from', value='<img src=x onerror=alert(1)>'),
                                  'meta.recorded_from must be an object'),
    'recorded_from.tags of numbers': ('script', _set('meta', 'recorded_from', 'tags', value={'pos': [1]}),
                                      'meta.recorded_from.tags.pos must be a list of variable names'),
    'a source line of a string': ('script', _set('sources', 0, 1, value='3'), 'each of "sources" must be'),
    'a surrogate in a source text': ('script', _set('sources', 0, 3, value='\udfff'), 'each of "sources" must be'),
    'a source index past the table': ('script', _set('source', 5, value=10 ** 6), 'is not an index into "sources"'),
    'probes of the wrong length': ('script', _set('probes', 0, 1, value=[]), '"probes" must hold, per child'),
    'a probe of strings': ('script', _set('probes', 0, 1, 0, value=['a', 'b', 'c', 'd']),
                           '"probes" must hold, per child'),
    "an op named like the port's": ('script', _set('ops', 0, value='add'), '"ops" must list the script'),
    'an op name with U+FFFE': ('script', _set('ops', 0, value='tanh\ufffe'), '"ops" must list the script'),
}


@pytest.mark.parametrize('name', REFUSED)
def test_named_corruptions_are_refused_by_both_codecs(plains, folder, name):
    kind, edit, message = REFUSED[name]
    mutant = _edit(plains[kind], edit)
    assert check_case(folder, name, mutant) == 'refused'
    for raw in (json_codec.encode(mutant).encode(), binary.encode(mutant)):
        assert message in load(raw)[1], (name, load(raw)[1])


def test_the_unmutated_traces_load_the_same_from_both_codecs(plains, folder):
    """The fuzz's baseline: the traces it mutates are sound and load (else every case is refused)."""
    for plain in plains.values():
        assert check_case(folder, 'unmutated', plain) == 'ok'


def test_a_later_child_loads_when_it_is_a_childless_leaf(plains, folder):
    """The one exception to "children come first": a leaf made outside the recording is
    numbered after the nodes that use it; it has no children, so there is no cycle."""
    m = clone(plains['port'])
    add = _first(m, 'add')
    later = next(i for i in range(add + 1, len(m['op'])) if m['op'][i] == OP_CODE['const'])
    m['child'][m['child_ptr'][add]] = later
    assert check_case(folder, 'a later const', m) == 'ok'
    m['op'][later] = OP_CODE['leaf']
    assert check_case(folder, 'a later leaf', m) == 'ok'


# -- what only the binary file can get wrong ---------------------------------------------------
def split(raw):
    size = struct.unpack_from('<I', raw, len(binary.MAGIC))[0]
    start = len(binary.MAGIC) + 4
    return json.loads(raw[start:start + size]), raw[start + size:]


class Blob(bytes):
    """File bytes that Hypothesis prints by their size."""

    def __repr__(self):
        return f"<{len(self)} bytes>"


def join(header, body, size=None):
    head = json.dumps(header).encode()
    return Blob(binary.MAGIC + struct.pack('<I', len(head) if size is None else size) + head + body)


HEADER_VALUES = [None, True, -1, 0, 1, 2 ** 31, 2 ** 62, 1.5, 'd', 'q', 'B', 'x', 'big', 'none', 'lz4', 'zlib', 'zstd',
                 [], {}, ['op', 'B', 1, 531], ['child', 'd', 8, 700], ['nope', 'B', 1, 1], [[1]], [[0], []]]


@st.composite
def binary_damage(draw, raw):
    header, body = split(raw)
    kind = draw(st.sampled_from(['header', 'column spec', 'size prefix', 'cut', 'append', 'edge offsets']))
    if kind == 'header':
        key = draw(st.sampled_from(['schema', 'version', 'byteorder', 'compression', 'columns', 'frames']))
        header[key] = draw(st.sampled_from(HEADER_VALUES))
        return f"header {key} = {header[key]!r}", join(header, body)
    if kind == 'column spec':
        k = draw(st.integers(0, len(header['columns']) - 1))
        j = draw(st.integers(0, 3))
        header['columns'][k][j] = draw(st.sampled_from(HEADER_VALUES))
        return f"columns[{k}][{j}] = {header['columns'][k][j]!r}", join(header, body)
    if kind == 'size prefix':
        size = draw(st.sampled_from([0, 1, 2 ** 31, 2 ** 32 - 1, len(raw)]))
        return f"size prefix {size}", join(header, body, size)
    if kind == 'cut':
        at = draw(st.integers(0, len(raw) - 1))
        return f"cut at {at}", Blob(raw[:at])
    if kind == 'append':
        return "bytes appended", Blob(raw + draw(st.sampled_from([b'\0', b'x' * 100, zlib.compress(b'\0' * 1000)])))
    plain = binary.decode(raw)          # the one column JSON cannot hold: offsets that disagree
    k = draw(st.sampled_from([0, 1, len(plain['child_ptr']) // 2, len(plain['child_ptr']) - 1]))
    plain['child_ptr'][k] = draw(st.sampled_from([-1, 0, 1, plain['child_ptr'][k] + 1, 10 ** 9]))
    return f"child_ptr[{k}] = {plain['child_ptr'][k]}", Blob(binary.encode(plain))


@settings(max_examples=120 * FACTOR, **SETTINGS)
@given(data=st.data())
def test_damaged_binary_files_are_refused_in_one_line(plains, folder, data):
    raw = binary.encode(plains[data.draw(st.sampled_from(['port', 'script']))])
    what, bad = data.draw(binary_damage(raw))
    kind, got = load(bad)
    if kind == 'ok':
        assert_sound(got)
    else:
        assert '\n' not in got
    r = inspect(folder, 'd.mgtrace', bad)
    assert r.exit_code == (0 if kind == 'ok' else 2), (what, r.output)


def test_a_zlib_bomb_is_refused_without_inflating_it(plains):
    """A body that inflates ~1000x (32 MiB from 33 KB; a 3 MB file would give 3 GB):
    decompression stops one byte past what the columns declare (here 27 KB), so the
    load allocates a few hundred KB, not the 32 MiB, and refuses the file."""
    raw = binary.encode(plains['port'], 'zlib')     # what files written before zstd hold
    header, body = split(raw)
    declared = len(zlib.decompress(body))
    bomb = zlib.compressobj(9)
    chunk = b'\0' * 2 ** 20
    bad = join(header, b''.join([bomb.compress(chunk) for _ in range(32)] + [bomb.flush()]))
    assert len(bad) < 64 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(TraceFormatError, match=f"^binary trace: its columns declare {declared} bytes, "
                                                   f"the body holds more$"):
            Trace.from_binary(bad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * 2 ** 20, peak


def test_a_header_declaring_more_than_the_cap_is_refused_before_reading(plains):
    header, body = split(binary.encode(plains['port']))
    header['columns'][1][3] = 2 ** 26           # 512 MiB of data column
    with pytest.raises(TraceFormatError, match=r"^binary trace: its columns declare \d+ bytes; at most 512 MiB"):
        Trace.from_binary(join(header, body))
    raw = binary.encode(plains['port'])
    with pytest.raises(TraceFormatError, match=r"^binary trace is cut short: its header says 4294967295 bytes"):
        Trace.from_binary(raw[:8] + struct.pack('<I', 2 ** 32 - 1) + raw[12:])


def test_an_uncompressed_file_loads_as_the_compressed_one(plains):
    for plain in plains.values():
        a, b = Trace.from_binary(binary.encode(plain, 'none')), Trace.from_binary(binary.encode(plain, 'zlib'))
        assert a == b and a.to_json() == json_codec.encode(plain)
