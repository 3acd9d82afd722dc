"""The op table: a node's op is a small int on the tape, in the Trace and in its files."""

OPS = ('param', 'const', 'leaf', 'add', 'mul', 'pow', 'log', 'exp', 'relu')
OP_CODE = {name: i for i, name in enumerate(OPS)}
