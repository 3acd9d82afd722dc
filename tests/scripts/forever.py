"""Makes a Value, writes its process id to pid.txt, then loops forever without
calling backward()."""

import os


class Value:
    def __init__(self, data, _children=(), _op=''):
        self.data = data
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = set(_children)

    def backward(self):
        self.grad = 1.0


x = Value(1.0)
with open('pid.txt', 'w') as f:
    f.write(str(os.getpid()))
while True:
    x.data += 1
