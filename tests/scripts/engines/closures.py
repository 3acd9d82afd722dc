"""A scalar autograd engine in micrograd's convention, written for the tests: each
node keeps its operands in a SET (`_prev`), so `x * x` has one child, and a
`_backward` closure that adds to the operands' grads, one line per operand. The tests
copy it next to a driver script as engine.py and bend one line at a time."""

import math


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

    def __pow__(self, k):
        out = Value(self.data ** k, (self,), f'**{k}')

        def _backward():
            self.grad += k * self.data ** (k - 1) * out.grad
        out._backward = _backward
        return out

    def tanh(self):
        t = math.tanh(self.data)
        out = Value(t, (self,), 'tanh')

        def _backward():
            self.grad += (1 - t * t) * out.grad
        out._backward = _backward
        return out

    def exp(self):
        out = Value(math.exp(self.data), (self,), 'exp')

        def _backward():
            self.grad += out.data * out.grad
        out._backward = _backward
        return out

    def log(self):
        out = Value(math.log(self.data), (self,), 'log')

        def _backward():
            self.grad += out.grad / self.data
        out._backward = _backward
        return out

    def relu(self):
        out = Value(max(0.0, self.data), (self,), 'ReLU')

        def _backward():
            self.grad += (out.data > 0) * out.grad
        out._backward = _backward
        return out

    def abs(self):
        out = Value(abs(self.data), (self,), 'abs')

        def _backward():
            self.grad += (1.0 if self.data > 0 else -1.0) * out.grad
        out._backward = _backward
        return out

    def leaky_relu(self):   # labelled ReLU as micrograd labels relu, but not the port's relu
        out = Value(self.data if self.data > 0 else 0.1 * self.data, (self,), 'ReLU')

        def _backward():
            self.grad += (1.0 if self.data > 0 else 0.1) * out.grad
        out._backward = _backward
        return out

    def scaled(self):       # reads an attribute the script set on this Value: a fresh copy lacks it
        out = Value(self.data * self.scale, (self,), 'scaled')

        def _backward():
            self.grad += self.scale * out.grad
        out._backward = _backward
        return out

    def square(self):       # a power under another name: the `**2` label says which
        out = Value(self.data ** 2, (self,), '**2')

        def _backward():
            self.grad += 2 * self.data * out.grad
        out._backward = _backward
        return out

    def safe_log(self):     # log that answers -inf at 0 and below instead of raising
        out = Value(math.log(self.data) if self.data > 0 else -math.inf, (self,), 'safe_log')

        def _backward():
            self.grad += (1.0 / self.data) * out.grad
        out._backward = _backward
        return out

    def offset(self, c):    # x + c under its own name: at c = 1e6 the value is large, its slope 1
        out = Value(self.data + c, (self,), 'offset')

        def _backward():
            self.grad += 1.0 * out.grad
        out._backward = _backward
        return out

    def backward(self):
        order, seen = [], set()

        def visit(v):
            if v not in seen:
                seen.add(v)
                for c in v._prev:
                    visit(c)
                order.append(v)
        visit(self)
        self.grad = 1.0
        for v in reversed(order):
            v._backward()

    def __radd__(self, other): return self + other
    def __rmul__(self, other): return self * other
    def __neg__(self): return self * -1.0
    def __sub__(self, other): return self + (-other)

    def __truediv__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return self * other ** -1


def dot(ws, xs):
    """A helper outside the class: its nodes are made by this file's lines."""
    total = ws[0] * xs[0]
    for w, x in zip(ws[1:], xs[1:]):
        total = total + w * x
    return total
