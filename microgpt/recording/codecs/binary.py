"""Plain trace columns <-> a compact binary file: the columns as they are in memory.

    MAGIC (8 bytes) | header length (4 bytes, little-endian) | header (JSON) | body

The header holds what is small (the tables of validate.py: scopes, parameters,
pow exponents, probes, sources, meta, op names) and each column's name, type
code, item size and length; the body is the columns' raw bytes, one after
another, compressed as the header's "compression" says:

  "zstd"  (written since issue 25's 4 x 64 step) each column cut into zstd frames of at most
          FRAME bytes, the header's "frames" listing each column's frames' compressed sizes; the
          columns are inflated on WORKERS threads (zstd lets go of the GIL), ~4x faster than
          zlib on one, and written ~6x faster, for 9% more bytes (benchmarks/bench_open_trace.py)
  "zlib"  one level-1 stream of the whole body: what files written before it hold (still read)
  "none"  as they are: the script recorder's hand-off from its child process, where
          compressing costs more than it saves

The checks are validate.check's, the same as for JSON. A file can make the loader allocate
no more than its header declares (a zstd frame's own declared size is checked against its
column before it is inflated), and a header declares at most MAX_TRACE_BYTES of columns (and
as much again of stored indexes): decompression stops there.

Version 2 (written since issue 25) may also carry the trace's indexes and run records
(recording.indexes, recording.aggregates: all of them or none) after the columns, checked
by stored.check_stored; a trace loaded from such a file never builds them. Version 1 files
still load: their indexes are built on first use, once per load.

Version 3 (issue 25) may also carry the "made by" chains (recording.madeby: the line of
model.py behind each op, outermost call first): the header's "chains" and the column
'made_by', checked by stored.check_chains, so opening a big step never replays its forward
pass for them; the user step cache keeps its entries so too. A version 2 file replays.
"""

import json
import os
import struct
import sys
import zlib
from array import array
from concurrent.futures import ThreadPoolExecutor

import zstandard

from .json import parse
from .stored import CHAINS_COLUMN, STORED_COLUMNS, STORED_NAMES, check_chains, check_stored
from .validate import COLUMNS, MAX_TRACE_BYTES, SOURCE_COLUMN, TABLES, TraceFormatError, check

MAGIC = b'MGTRACE\x01'
SCHEMA = 'microgpt-graph.trace-binary'
VERSION = 3
READS = (1, 2, 3)   # version 1: the columns only; 2: and the indexes; 3: and the made-by chains
SUFFIX = '.mgtrace'
COMPRESSIONS = ('zstd', 'zlib', 'none')
COMPRESSION = 'zstd'    # what encode writes unless told (the user cache, `export --format binary`, to_binary)
FRAME = 1 << 23         # bytes of a column in one zstd frame at most: what a thread holds beside the column it makes
WORKERS = min(4, os.cpu_count() or 1)   # threads inflating (or deflating) zstd frames, one column each at a time
_CODES = dict(COLUMNS + (SOURCE_COLUMN,) + STORED_COLUMNS + (CHAINS_COLUMN,))
_SINCE = {**dict.fromkeys(STORED_NAMES, 2), CHAINS_COLUMN[0]: 3}     # the version a column came in
_PREFIX = len(MAGIC) + 4
INFLATING, CHECKING = 'inflating', 'checking'     # the phases a load tells its progress (read)
_IN, _OUT = 1 << 20, 1 << 24     # bytes of compressed input fed, of output made, per zlib call (_inflated)


def is_binary_trace(head: bytes) -> bool:
    return head.startswith(MAGIC)


def encode(plain, compression=COMPRESSION, indexes=None, chains=None) -> bytes:
    """The file's bytes for plain columns (validate.plain_of), and `indexes` ({name: array}
    of every one of STORED_COLUMNS, or None: not stored), and `chains` ((chain id per node,
    [chain]): recording.madeby's, or None: not stored); compressed as COMPRESSIONS say."""
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {', '.join(COMPRESSIONS)}, got {compression!r}")
    columns = [(name, plain[name]) for name, _ in COLUMNS]
    if plain['source'] is not None:    # a trace recorded from a script: the line that made each node
        columns.append(('source', plain['source']))
    if indexes is not None:
        columns.extend((name, indexes[name]) for name in STORED_NAMES)
    if chains is not None:
        per_node = chains[0] if isinstance(chains[0], array) else array(CHAINS_COLUMN[1], chains[0])
        columns.append((CHAINS_COLUMN[0], per_node))
    header = {'schema': SCHEMA, 'version': VERSION, 'byteorder': sys.byteorder, 'compression': compression,
              'columns': [[name, col.typecode, col.itemsize, len(col)] for name, col in columns]}
    header.update((k, plain[k]) for k in TABLES if plain[k] is not None)
    if chains is not None:
        header['chains'] = [[list(frame) for frame in chain] for chain in chains[1]]
    if compression == 'zstd':
        framed = _framed([col for _, col in columns])
        header['frames'] = [[len(f) for f in frames] for frames in framed]
        body = b''.join(f for frames in framed for f in frames)
    else:
        body = b''.join(col.tobytes() for _, col in columns)
        if compression == 'zlib':
            body = zlib.compress(body, 1)
    head = json.dumps(header, separators=(',', ':')).encode('utf-8')
    return MAGIC + struct.pack('<I', len(head)) + head + body


def _framed(columns):
    """Each column's bytes as level-1 zstd frames of at most FRAME bytes each (with their size
    and checksum), compressed on WORKERS threads."""
    def deflate(col):
        z = zstandard.ZstdCompressor(level=1, write_checksum=True)     # one per thread: not shareable
        view = memoryview(col).cast('B')
        return [z.compress(view[at:at + FRAME]) for at in range(0, len(view), FRAME)]
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(deflate, columns))


def decode(raw: bytes, progress=None) -> dict:
    """The plain columns of a binary trace (unchecked: validate.check does that).
    `progress(phase, done, total)`: told 'inflating', bytes of columns made of bytes declared."""
    if not raw.startswith(MAGIC):
        raise TraceFormatError("not a binary trace (it does not start with the microgpt-graph trace signature)")
    if len(raw) < _PREFIX:
        raise TraceFormatError(f"binary trace is cut short: {len(raw)} bytes, before its header")
    (size,) = struct.unpack_from('<I', raw, len(MAGIC))
    if size > len(raw) - _PREFIX:
        raise TraceFormatError(f"binary trace is cut short: its header says {size} bytes, "
                               f"the file holds {len(raw) - _PREFIX} after the signature")
    try:
        header = parse(raw[_PREFIX:_PREFIX + size].decode('utf-8'))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise TraceFormatError(f"binary trace is damaged ({type(e).__name__}: {str(e)[:200]})") from None
    if not isinstance(header, dict) or header.get('schema') != SCHEMA:
        raise TraceFormatError(f"binary trace: expected schema {SCHEMA!r}")
    if header.get('version') not in READS:
        raise TraceFormatError(f"binary trace version {str(header.get('version'))[:20]!r} is not supported; "
                               f"this tool reads versions {', '.join(map(str, READS[:-1]))} and {READS[-1]}")
    specs, total = _column_specs(header)
    plain = {'source': None, 'indexes': {}, 'made_by': None}
    done = 0
    for name, col in _columns(memoryview(raw)[_PREFIX + size:], header, specs, total):
        if header['byteorder'] != sys.byteorder:
            col.byteswap()
        if name in STORED_NAMES:
            plain['indexes'][name] = col
        else:
            plain[name] = col
        if progress is not None:
            done += len(col) * col.itemsize
            progress(INFLATING, done, total)
    for key in TABLES:
        plain[key] = header.get(key, [] if key in ('ops', 'pow_exponent', 'probes') else None)
    plain['chains'] = header.get('chains') if header['version'] >= 3 else None
    return plain


def _column_specs(header):
    """[(name, type code, length)] in body order, and the body's size in bytes. Each column
    once, with this platform's item size; the sum at most MAX_TRACE_BYTES."""
    if header.get('byteorder') not in ('little', 'big'):
        raise TraceFormatError(f"binary trace: byteorder must be 'little' or 'big', got {str(header.get('byteorder'))[:20]!r}")
    cols = header.get('columns')
    if not isinstance(cols, list):
        raise TraceFormatError("binary trace: \"columns\" is missing or not a list")
    codes = {name: code for name, code in _CODES.items() if _SINCE.get(name, 1) <= header['version']}
    specs, total, stored = [], 0, 0
    for spec in cols:
        if (not isinstance(spec, list) or len(spec) != 4 or not isinstance(spec[0], str) or spec[0] not in codes
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in spec[2:])):
            raise TraceFormatError(f"binary trace: a column must be [name, type code, item size, length] with a "
                                   f"name of {', '.join(codes)}, got {str(spec)[:60]}")
        name, code, itemsize, length = spec
        want = array(_CODES[name]).itemsize
        if code != _CODES[name] or itemsize != want:
            raise TraceFormatError(f"binary trace: column {name!r} must have type {_CODES[name]!r} of {want} bytes, "
                                   f"got {str(code)[:10]!r} of {itemsize}")
        if any(name == s[0] for s in specs):
            raise TraceFormatError(f"binary trace: column {name!r} appears twice")
        if not 0 <= length <= MAX_TRACE_BYTES:
            raise TraceFormatError(f"binary trace: column {name!r} has length {length}")
        specs.append((name, code, length))
        if name in STORED_NAMES:
            stored += itemsize * length
        else:
            total += itemsize * length
    missing = [name for name, _ in COLUMNS if all(name != s[0] for s in specs)]
    if missing:
        raise TraceFormatError(f"binary trace: missing columns {', '.join(missing)}")
    for what, size in (('columns', total), ('stored indexes', stored)):
        if size > MAX_TRACE_BYTES:
            raise TraceFormatError(f"binary trace: its {what} declare {size} bytes; at most "
                                   f"{MAX_TRACE_BYTES // 2 ** 20} MiB are read")
    return specs, total + stored


def _columns(data, header, specs, size):
    """(name, array) of each column in body order: exactly `size` bytes in all once
    decompressed, inflated a column at a time (the whole body is never in memory beside the
    columns made of it) and never more than what the columns declare (zlib: one byte more)."""
    compression = header.get('compression', 'zlib')
    if compression == 'none':
        if len(data) != size:
            raise TraceFormatError(f"binary trace: its columns declare {size} bytes, the body holds "
                                   f"{'more' if len(data) > size else len(data)}")
        offset = 0
        for name, code, length in specs:
            end = offset + array(code).itemsize * length
            yield name, _array(code, data[offset:end])
            offset = end
    elif compression == 'zlib':
        for name, code, view in _inflated(data, specs, size):
            yield name, _array(code, view)
    elif compression == 'zstd':
        yield from _unframed(data, _frames(header.get('frames'), specs, data), specs)
    else:
        raise TraceFormatError(f"binary trace: compression must be one of {', '.join(COMPRESSIONS)}, "
                               f"got {str(compression)[:20]!r}")


def _array(code, data):
    col = array(code)
    col.frombytes(data)
    return col


def _frames(frames, specs, body):
    """[(offset of its first frame in the body, [its frames' sizes]) per column] of a zstd body,
    from the header's "frames": a list per column of its frames' compressed sizes (whole numbers
    > 0), adding up to the body. A frame's view is made when it is inflated: a header listing
    millions of tiny frames costs its numbers, not a view each."""
    if (not isinstance(frames, list) or len(frames) != len(specs) or not all(
            isinstance(sizes, list) and all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in sizes)
            for sizes in frames)):
        raise TraceFormatError(f"binary trace: \"frames\" must list, for each of its {len(specs)} columns, "
                               f"its zstd frames' sizes (whole numbers > 0), got {str(frames)[:60]}")
    declared = sum(map(sum, frames))
    if declared > len(body):
        raise TraceFormatError(f"binary trace is cut short: its frames declare {declared} bytes, the body holds {len(body)}")
    if declared < len(body):
        raise TraceFormatError(f"binary trace: {len(body) - declared} bytes follow the compressed body")
    out, at = [], 0
    for sizes in frames:
        out.append((at, sizes))
        at += sum(sizes)
    return out


def _unframed(body, frames, specs):
    """_columns of a zstd body: each column inflated on one of WORKERS threads, frame by frame,
    each frame's declared size checked against what its column still needs (whole items, one at
    least) before it is inflated; handed out in body order (the first damaged column in that
    order is named)."""
    def inflate(name, code, length, at, sizes):
        col, want = array(code), array(code).itemsize * length
        z = zstandard.ZstdDecompressor()
        try:
            for frame in sizes:
                view, at = body[at:at + frame], at + frame
                room, size = want - len(col) * col.itemsize, zstandard.frame_content_size(view)
                if not col.itemsize <= size <= room or size % col.itemsize:    # an empty column: no frame
                    raise TraceFormatError(f"binary trace is damaged (zstd, column {name!r}: a frame declares "
                                           f"{'no size' if size < 0 else f'{size} bytes'}; the column needs {room} "
                                           f"more, in whole {col.itemsize}-byte items)")
                col.frombytes(z.decompress(view, max_output_size=size, allow_extra_data=False))
        except zstandard.ZstdError as e:
            raise TraceFormatError(f"binary trace is damaged (zstd, column {name!r}: {str(e)[:200]})") from None
        if len(col) != length:
            raise TraceFormatError(f"binary trace is damaged (zstd, column {name!r}: its frames hold "
                                   f"{len(col) * col.itemsize} of the {want} bytes it declares)")
        return col
    with ThreadPoolExecutor(WORKERS) as pool:
        jobs = [pool.submit(inflate, *spec, *where) for spec, where in zip(specs, frames)]
        try:
            for (name, _, _), job in zip(specs, jobs):
                yield name, job.result()
        finally:
            for job in jobs:
                job.cancel()


def _inflated(data, specs, size):
    """_columns of a zlib body. The compressed bytes are fed _IN at a time and each column is handed
    out as a view of the bytes inflated for it: given the whole rest of the body with a cap on the
    output, zlib would copy that rest (its unconsumed tail) once per column (0.9 of 2.9 CPU s at
    5 M nodes). At most one column's bytes are held beside the columns made; then one byte more is
    asked for, which must not come."""
    d, pending, fed, made = zlib.decompressobj(), bytearray(), 0, 0

    def more(cap):          # inflate the next input, at most `cap` bytes; None when there is none
        nonlocal fed
        if d.unconsumed_tail:
            return d.decompress(d.unconsumed_tail, cap)
        if fed >= len(data) or d.eof:
            return None
        fed += _IN
        return d.decompress(data[fed - _IN:fed], cap)
    try:
        for name, code, length in specs:
            want = array(code).itemsize * length
            while len(pending) < want:
                out = more(min(_OUT, want - len(pending)))      # this column's bytes, no more
                if out is None:
                    raise TraceFormatError(f"binary trace is damaged (error: the compressed body ends after {made} "
                                           f"of the {size} bytes its columns declare)")
                made += len(out)
                pending += out
            view = memoryview(pending)[:want]
            try:
                yield name, code, view
            finally:
                view.release()
            del pending[:want]
        while not d.eof and not pending:
            out = more(1)
            if out is None:
                break
            pending += out
        if pending:
            raise TraceFormatError(f"binary trace: its columns declare {size} bytes, the body holds more")
    except zlib.error as e:
        raise TraceFormatError(f"binary trace is damaged (zlib: {e})") from None
    if not d.eof:
        raise TraceFormatError(f"binary trace is damaged (error: the compressed body ends after {made} "
                               f"of the {size} bytes its columns declare)")
    extra = len(d.unused_data) + max(0, len(data) - fed)
    if extra:
        raise TraceFormatError(f"binary trace: {extra} bytes follow the compressed body")


def read(raw: bytes, progress=None) -> dict:
    """The `Trace(**columns)` keyword arguments of a binary trace (with `indexes` and `chains`
    when the file stores them); TraceFormatError says what is wrong. `progress(phase, done,
    total)`: told 'inflating' (bytes), then 'checking' (the columns, then the stored indexes
    and chains: 0, 1, 2 of 2)."""
    say = progress or (lambda *_: None)
    plain = decode(raw, progress)
    stored, table, per_node = plain.pop('indexes'), plain.pop('chains'), plain.pop('made_by')
    say(CHECKING, 0, 2)
    kwargs = check(plain)
    say(CHECKING, 1, 2)
    if stored:
        kwargs['indexes'] = check_stored(stored, kwargs)
    if table is not None or per_node is not None:
        kwargs['chains'] = check_chains(table, per_node, kwargs)
    say(CHECKING, 2, 2)
    return kwargs
