"""The rule behind each local derivative: the formula, the values put into it, the result.

    rule(trace, node, k)   # d node / d (its k-th input), as a learner reads it on the board:
    {'formula': 'd exp(x)/dx = exp(x)', 'filled': 'exp(x) = out.data = 0.7312',
     'value': 0.7312..., 'stored': 0.7312..., 'agrees': True, 'exact': True, 'text': ...}

Every op of the port (add, mul, pow, log, exp, relu) and the ops a user's script
records under their own names (sub, neg, div, tanh, sigmoid, abs, sqrt, sin, cos)
have a rule here. `value` is the rule computed from the node's recorded inputs and
output; for the port's ops it is the engine's own expression (microgpt/engine.py),
so on a correct engine it equals the stored local derivative bit for bit, and a
bent derivative (a fault, a user's bug) shows as `agrees: False` next to the rule it
breaks. A script may write the same rule another way (1 - t**2 for 1 - t*t), so
agreement allows RTOL of relative rounding; `exact` says when the floats are equal.
At a kink (relu, abs at x = 0) any slope between the one-sided ones is a
derivative (micrograd's abs stores -1 there, the rule's sign(0) says 0): it agrees.

A user's own op with no rule here (gelu, softplus, ...) shows the finite difference
the recorder measured for it instead (Trace.probes: f(x+h), f(x-h) re-run at
recording): `kind: 'probe'`, with the two probes and the central difference.
"""

import math

from .ops import OPS

RTOL = 1e-9      # relative difference a script's rule may show from the port's expression


def _fmt(x):
    """4 significant digits, as every label shows a number."""
    return f'{x:.4g}' if isinstance(x, float) else str(x)


def _exact(f, *a):
    try:
        return f(*a)
    except (ArithmeticError, ValueError):
        return math.nan


# op -> per input k: (formula, (xs, out, n) -> value, (xs, out, n) -> the formula filled in)
# xs: the inputs' data; out: the node's data; n: a pow's exponent
def _pow_value(xs, out, n):
    return n * xs[0] ** (n - 1)           # engine.Value.__pow__: other * self.data**(other - 1)


RULES = {
    'add': (('d(x + y)/dx = 1', lambda xs, out, n: 1, lambda xs, out, n: '1'),
            ('d(x + y)/dy = 1', lambda xs, out, n: 1, lambda xs, out, n: '1')),
    'mul': (('d(x·y)/dx = y', lambda xs, out, n: xs[1], lambda xs, out, n: f'y = {_fmt(xs[1])}'),
            ('d(x·y)/dy = x', lambda xs, out, n: xs[0], lambda xs, out, n: f'x = {_fmt(xs[0])}')),
    'pow': (('d xⁿ/dx = n·xⁿ⁻¹', _pow_value,
             lambda xs, out, n: f'{_fmt(n)}·{_fmt(xs[0])}^{_fmt(n - 1)} = {_fmt(_exact(_pow_value, xs, out, n))}'),),
    'log': (('d log(x)/dx = 1/x', lambda xs, out, n: 1 / xs[0],
             lambda xs, out, n: f'1/{_fmt(xs[0])} = {_fmt(_exact(lambda: 1 / xs[0]))}'),),
    'exp': (('d exp(x)/dx = exp(x)', lambda xs, out, n: out,
             lambda xs, out, n: f'exp(x) = out.data = {_fmt(out)}'),),
    'relu': (('d relu(x)/dx = 1 if x > 0 else 0', lambda xs, out, n: float(xs[0] > 0),
              lambda xs, out, n: f'x = {_fmt(xs[0])} ' + ('> 0: 1' if xs[0] > 0 else '<= 0: 0 (a dead ReLU passes nothing)')),),
    'sub': (('d(x − y)/dx = 1', lambda xs, out, n: 1, lambda xs, out, n: '1'),
            ('d(x − y)/dy = −1', lambda xs, out, n: -1, lambda xs, out, n: '−1')),
    'neg': (('d(−x)/dx = −1', lambda xs, out, n: -1, lambda xs, out, n: '−1'),),
    'div': (('d(x/y)/dx = 1/y', lambda xs, out, n: 1 / xs[1],
             lambda xs, out, n: f'1/{_fmt(xs[1])} = {_fmt(_exact(lambda: 1 / xs[1]))}'),
            ('d(x/y)/dy = −x/y²', lambda xs, out, n: -xs[0] / xs[1] ** 2,
             lambda xs, out, n: f'−{_fmt(xs[0])}/{_fmt(xs[1])}² = {_fmt(_exact(lambda: -xs[0] / xs[1] ** 2))}')),
    'tanh': (('d tanh(x)/dx = 1 − tanh(x)²', lambda xs, out, n: 1 - out * out,
              lambda xs, out, n: f'1 − out.data² = 1 − {_fmt(out)}² = {_fmt(1 - out * out)}'),),
    'sigmoid': (('d σ(x)/dx = σ(x)·(1 − σ(x))', lambda xs, out, n: out * (1 - out),
                 lambda xs, out, n: f'out.data·(1 − out.data) = {_fmt(out)}·{_fmt(1 - out)} = {_fmt(out * (1 - out))}'),),
    'abs': (('d |x|/dx = sign(x)', lambda xs, out, n: math.copysign(1.0, xs[0]) if xs[0] else 0.0,
             lambda xs, out, n: f'x = {_fmt(xs[0])}: sign {_fmt(math.copysign(1.0, xs[0]) if xs[0] else 0.0)}'),),
    'sqrt': (('d √x/dx = 1/(2√x)', lambda xs, out, n: 1 / (2 * out),
              lambda xs, out, n: f'1/(2·out.data) = 1/(2·{_fmt(out)}) = {_fmt(_exact(lambda: 1 / (2 * out)))}'),),
    'sin': (('d sin(x)/dx = cos(x)', lambda xs, out, n: math.cos(xs[0]),
             lambda xs, out, n: f'cos({_fmt(xs[0])}) = {_fmt(math.cos(xs[0]))}'),),
    'cos': (('d cos(x)/dx = −sin(x)', lambda xs, out, n: -math.sin(xs[0]),
             lambda xs, out, n: f'−sin({_fmt(xs[0])}) = {_fmt(-math.sin(xs[0]))}'),),
}
# ops with a kink at x = 0: the one-sided slopes there (a script may store either, or between)
KINKS = {'relu': (0.0, 1.0), 'abs': (-1.0, 1.0)}
# micrograd's labels for the same ops, and the dunder names a script's trace may keep
ALIASES = {'+': 'add', '*': 'mul', 'ReLU': 'relu', '-': 'sub', '/': 'div', '**': 'pow'}


def known(op):
    """The op's rule table entry name, or None: 'add', 'tanh', ... ('ReLU' -> 'relu')."""
    op = ALIASES.get(op, op)
    return op if op in RULES else None


def rule(trace, node, k):
    """The rule of d node / d (input k) (see the module docstring); None for a node with
    fewer inputs. A known op: kind 'rule'; an op with probes: kind 'probe'; else kind
    'none' (no rule and nothing measured: the text says why)."""
    a, b = trace.child_ptr[node], trace.child_ptr[node + 1]
    if not 0 <= k < b - a:
        return None
    op = trace.op_name(node)
    stored = trace.local[a + k]
    kids = trace.child[a:b]
    xs = [trace.data[c] for c in kids]
    out = trace.data[node]
    n = trace.pow_exponent.get(node)
    name = known(op)
    entry = RULES.get(name)
    if entry is not None and len(entry) == len(xs) and (name != 'pow' or n is not None):
        formula, value_of, filled_of = entry[k]
        value = _exact(value_of, xs, out, n)
        filled = _exact(filled_of, xs, out, n)
        value = float(value) if isinstance(value, (int, float)) else math.nan
        same = value == stored or (value != value and stored != stored)
        own = trace.op[node] < len(OPS) and trace.source is None     # the port's engine: its own expression
        agrees = same or (not own and _close(value, stored))
        kink = KINKS.get(name)
        if not agrees and kink is not None and xs[0] == 0 and kink[0] <= stored <= kink[1]:
            agrees = True       # at its kink any slope between the one-sided ones is a derivative
            filled += f'; at the kink x = 0 any slope in [{_fmt(kink[0])}, {_fmt(kink[1])}] will do'
        lhs, rhs = formula.split(' = ', 1)
        if filled.startswith(rhs):          # 'd exp(x)/dx = exp(x) = out.data = 0.7312'
            text = f'{lhs} = {filled}'
        elif name in ('relu', 'abs'):       # a case, not a substitution: 'x = -0.56 <= 0: 0'
            text = f'{formula}: {filled}'
        else:                               # 'd log(x)/dx = 1/x = 1/0.04022 = 24.86'
            text = f'{formula} = {filled}'
        d = {'kind': 'rule', 'op': name, 'formula': formula, 'filled': filled, 'value': value,
             'stored': stored, 'agrees': agrees, 'exact': same, 'text': text}
        if not agrees:
            d['text'] += f'; stored {_fmt(stored)} does not follow this rule'
        return d
    probe = trace.probes.get(node)
    if probe is not None and k < len(probe) and not isinstance(probe[k], str):
        xp, xm, fp, fm = probe[k]
        fd = (fp - fm) / (xp - xm) if xp != xm else math.nan
        return {'kind': 'probe', 'op': op, 'formula': f'no rule known for {op}: a finite difference',
                'filled': f'(f({_fmt(xp)}) − f({_fmt(xm)}))/({_fmt(xp)} − {_fmt(xm)}) = '
                          f'({_fmt(fp)} − {_fmt(fm)})/{_fmt(xp - xm)} = {_fmt(fd)}',
                'value': fd, 'stored': stored, 'probe': [xp, xm, fp, fm],
                'agrees': None, 'exact': fd == stored,     # the node check judges it, with its tolerance
                'text': f'no rule known for {op}; checked against (f(x+h) − f(x−h))/2h = {_fmt(fd)}'}
    why = probe[k] if probe is not None and k < len(probe) else 'no probe was recorded'
    return {'kind': 'none', 'op': op, 'formula': f'no rule known for {op}', 'filled': '', 'value': math.nan,
            'stored': stored, 'agrees': None, 'exact': False, 'text': f'no rule known for {op} ({why})'}


def rules(trace, node):
    """rule(trace, node, k) for each input of `node`, in argument order."""
    return [rule(trace, node, k) for k in range(trace.child_ptr[node + 1] - trace.child_ptr[node])]


def _close(a, b, rtol=RTOL):
    """a and b equal up to `rtol` relative rounding (NaN equals NaN, inf only itself)."""
    if not (math.isfinite(a) and math.isfinite(b)):
        return a == b or (a != a and b != b)
    return abs(a - b) <= rtol * max(abs(a), abs(b)) + 1e-300
