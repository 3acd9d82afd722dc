"""b is used three times: by w = v * b (backward's first), by v = u + b, and by
u = b * 3.0, an input of v, so u's closure adds to b.grad last. An `=` in the closure
of add (or of add and mul) loses what came before it, but is not the last use."""

from engine import Value

b = Value(2.0)
u = b * 3.0
v = u + b
w = v * b
w.backward()
