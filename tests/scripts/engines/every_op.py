"""Each op of engine.py on values where its derivative is smooth, then backward():
add, mul, pow, tanh, exp, log and relu, plus the sums and products of engine.dot."""

from engine import Value, dot

params = [Value(0.6), Value(-0.4), Value(0.9)]
a, b, c = params
s = a + b
m = s * c
q = m ** 3
t = c.tanh()
e = b.exp()
g = (c + 2.0).log()
r = a.relu()
loss = dot([q, t, e], [g, r, s])
loss.backward()
