"""Builds a few Values and prints, but never calls backward()."""


class Value:
    def __init__(self, data, _children=(), _op=''):
        self.data = data
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = set(_children)
        self._op = _op

    def __add__(self, other):
        return Value(self.data + other.data, (self, other), '+')

    def backward(self):
        self.grad = 1.0


a, b = Value(2.0), Value(3.0)
print('sum', (a + b).data)
