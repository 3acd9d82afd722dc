"""Makes a Value, then loops forever without calling backward()."""


class Value:
    def __init__(self, data, _children=(), _op=''):
        self.data = data
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = set(_children)

    def backward(self):
        self.grad = 1.0


x = Value(1.0)
while True:
    x.data += 1
