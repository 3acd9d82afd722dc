"""A binary trace's header and inflated body, whatever its compression, and a file made again from
them: what the tests that change one item of a column use (the validator's tests, not the codec's)."""

import json
import struct
import zlib

import zstandard

from microgpt.recording.codecs.binary import MAGIC

START = len(MAGIC) + 4


def split(raw):
    """(header dict, body bytearray as the columns are in memory) of a binary trace; the header
    says "zlib", what `join` writes."""
    size = struct.unpack_from('<I', raw, len(MAGIC))[0]
    header, body = json.loads(raw[START:START + size]), raw[START + size:]
    compression = header.get('compression', 'zlib')
    if compression == 'zstd':
        inflate, at, parts = zstandard.ZstdDecompressor().decompress, 0, []
        for frames in header.pop('frames'):
            for size in frames:
                parts.append(inflate(body[at:at + size]))
                at += size
        body = b''.join(parts)
    elif compression == 'zlib':
        body = zlib.decompress(body)
    header['compression'] = 'zlib'
    return header, bytearray(body)


def join(header, body):
    """The file of `header` and the body's bytes, zlib-compressed."""
    head = json.dumps(header).encode()
    return MAGIC + struct.pack('<I', len(head)) + head + zlib.compress(bytes(body))


def frames(raw):
    """(header dict, [[each frame's bytes] per column]) of a zstd binary trace."""
    size = struct.unpack_from('<I', raw, len(MAGIC))[0]
    header, body, out, at = json.loads(raw[START:START + size]), raw[START + size:], [], 0
    for sizes in header['frames']:
        out.append([])
        for size in sizes:
            out[-1].append(body[at:at + size])
            at += size
    return header, out


def refile(header, columns, sizes=True):
    """The file of `header` and each column's frames (`frames`' shape); with `sizes`, the header's
    "frames" says their sizes."""
    if sizes:
        header = dict(header, frames=[[len(f) for f in col] for col in columns])
    head = json.dumps(header).encode()
    return MAGIC + struct.pack('<I', len(head)) + head + b''.join(f for col in columns for f in col)
