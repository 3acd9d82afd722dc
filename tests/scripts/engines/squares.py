"""micrograd's L2 term: sum(p * p for p in params), where each p is also used by a
product with its neighbour. With a set of children p * p has ONE child, to whose grad
its closure adds p.data * out.grad twice; whether that pair comes before or after the
neighbours' products depends on the sets' order, i.e. on the run."""

from engine import Value

ps = [Value(0.5 + k / 7) for k in range(6)]
loss = sum((p * p for p in ps), Value(0.0)) + sum(p * q for p, q in zip(ps, ps[1:]))
loss.backward()
