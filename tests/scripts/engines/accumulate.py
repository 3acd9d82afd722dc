"""A linear model fitted to a loss summed in a loop, with a validation pass, and no
global named params or state_dict: the model's parameters are reachable only as
model.parameters() (and, for the tests of --params, as a few other globals). Each loop
starts its sum with an accumulator `Value(0.0)`, made before the step's first op like
the parameters; neither is a parameter.

    python accumulate.py             the training loop first
    python accumulate.py val-first   a validation pass before it
"""

import sys

from engine import Value


class Model:
    def __init__(self):
        self.w = [Value(0.3), Value(-0.2)]
        self.b = Value(0.1)

    def __call__(self, x):
        return self.w[0] * x[0] + self.w[1] * x[1] + self.b

    def parameters(self):
        return self.w + [self.b]


train = [((1.0, 2.0), 1.0), ((0.5, -1.0), -0.5), ((-1.5, 0.5), 0.25)]
val = [((2.0, 1.0), 0.5), ((-0.5, 0.5), 0.0)]


def validate():
    total_loss = Value(0.0)
    for x, y in val:
        total_loss = total_loss + (model(x) - y) ** 2
    return total_loss


model = Model()
weights = [model.w]                         # a 1 x 2 matrix
layers = {'w': [model.w], 'b': model.b}     # named matrices, as a state_dict
ragged = [model.w, [model.b]]               # rows of two lengths: not a matrix
twice = [model.b, model.b]                  # the same Value twice
if sys.argv[1:] == ['val-first']:
    print('validation loss', validate().data)
for _ in range(3):
    total = Value(0.0)
    for x, y in train:
        total = total + (model(x) - y) ** 2
    loss = total / len(train)
    for p in model.parameters():
        p.grad = 0.0
    loss.backward()
    for p in model.parameters():
        p.data -= 0.1 * p.grad
