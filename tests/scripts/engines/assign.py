"""micrograd's own sanity check starts like this: c = a + b is used below by a
product that also uses a and b, so backward adds to a.grad and b.grad before c's
closure runs: an add that sets them with = instead of += loses those additions."""

from engine import Value

a = Value(-4.0)
b = Value(2.0)
c = a + b
d = c * a * b
d.backward()
