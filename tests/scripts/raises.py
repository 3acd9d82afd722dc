"""Raises inside a user function called from the training loop."""


class Value:
    def __init__(self, data, _children=(), _op=''):
        self.data = data
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = set(_children)
        self._op = _op

    def __truediv__(self, other):
        return Value(self.data / other.data, (self, other), '/')

    def backward(self):
        self.grad = 1.0


def normalise(x, total):
    return x / total


loss = normalise(Value(1.0), Value(0.0))
loss.backward()
