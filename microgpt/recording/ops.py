"""The op table: a node's op is a small int on the tape, in the Trace and in its files."""

from ..engine import ARITY

OPS = ('param', 'const', 'leaf', 'add', 'mul', 'pow', 'log', 'exp', 'relu')
OP_CODE = {name: i for i, name in enumerate(OPS)}
# children per op code, a bytes.translate table over an op column (param, const, leaf: none)
ARITY_TABLE = bytes(ARITY.get(name, 0) for name in OPS).ljust(256, b'\0')
