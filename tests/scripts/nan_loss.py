"""A micrograd-style script whose loss is NaN: a weight scaled past the largest double
overflows to inf (a product, no exception in Python), and inf - inf is NaN from there to
the loss. The explorer must open it and say where the NaN starts (the product)."""


class Value:
    def __init__(self, data, _children=(), _op=''):
        self.data = data
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = set(_children)
        self._op = _op

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), '+')

        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), '*')

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def __neg__(self):
        return self * -1

    def __sub__(self, other):
        return self + (-other)

    def backward(self):
        topo, seen = [], set()

        def build(v):
            if v not in seen:
                seen.add(v)
                for child in v._prev:
                    build(child)
                topo.append(v)
        build(self)
        self.grad = 1.0
        for v in reversed(topo):
            v._backward()


def layer(x, w, b):
    return x * w + b


w = Value(3.0)
b = Value(0.5)
x = Value(1e308)                  # an input far too large: x * w overflows to inf
h = layer(x, w, b)                # inf
centred = h - h                   # inf - inf = nan
loss = centred * centred + b * b  # nan
loss.backward()
print('loss', loss.data)
