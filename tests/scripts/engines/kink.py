"""A script's own ops: |x| at its kink x = 0, where the closure passes -1 (the slope on
the left; either one-sided slope is a derivative there), and a leaky relu labelled
'ReLU' like micrograd's relu, which is not the port's relu: both are re-run to check;
a `scaled` that reads an attribute set on its input cannot be re-run on a copy."""

from engine import Value

x = Value(0.0)
y = Value(1.5)
y.scale = 2.0
loss = x.abs() * 2.0 + (x - 2.0).leaky_relu() + y.scaled()
loss.backward()
