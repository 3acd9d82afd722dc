"""A script's own ops, and ops under other names: |x| at its kink x = 0, where the
closure passes -1 (the slope on the left; either one-sided slope is a derivative there);
a leaky relu labelled 'ReLU' like micrograd's relu, which is not the port's relu; a
`scaled` that reads an attribute set on its input, so it cannot be re-run on a copy;
`square`, a pow by its `**2` label; and a power with the exponent True."""

from engine import Value

x = Value(0.0)
y = Value(1.5)
y.scale = 2.0
loss = x.abs() * 2.0 + (x - 2.0).leaky_relu() + y.scaled() + y.square() + y ** True
loss.backward()
