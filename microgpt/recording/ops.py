"""The op table: a node's op is a small int on the tape, in the Trace and in its files."""

from ..engine import ARITY

OPS = ('param', 'const', 'leaf', 'add', 'mul', 'pow', 'log', 'exp', 'relu')
OP_CODE = {name: i for i, name in enumerate(OPS)}
# children per op code, a bytes.translate table over an op column (param, const, leaf: none)
ARITY_TABLE = bytes(ARITY.get(name, 0) for name in OPS).ljust(256, b'\0')


def count_ops(ops, names):
    """{op name: count} of an op column's bytes, in op order: each kind looked for (memchr) and
    counted in C (a set of the bytes, or a name per node, is a pass per node in Python: 0.8 s at
    5 M nodes, 5x slower on a token's 400,000 ops)."""
    return {names[k]: c for k in range(len(names)) if k in ops and (c := ops.count(k))}
