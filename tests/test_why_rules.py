"""The rule behind each local derivative (microgpt.recording.rules): the formula, the values put
in, the result; equal to the stored derivative on a correct engine, and not where one is bent."""

import math

import pytest

from microgpt.checks.faults import FAULTS, inject
from microgpt.recording import record_step
from microgpt.recording.rules import rule, rules
from microgpt.recording.script import record_script
from microgpt.train import fresh_model
from tests.test_gradcheck_script import install

PORT_OPS = ('add', 'mul', 'pow', 'log', 'exp', 'relu')


@pytest.fixture(scope='module')
def model():
    return fresh_model(42)


@pytest.fixture(scope='module')
def emma(model):
    return record_step(*model, 'emma')


def test_every_rule_of_the_port_gives_its_stored_derivative_bit_for_bit(emma):
    seen = set()
    for i in range(len(emma)):
        for k, r in enumerate(rules(emma, i)):
            stored = emma.local[emma.child_ptr[i] + k]
            assert r['kind'] == 'rule' and r['op'] == emma.op_name(i)
            assert r['value'] == stored and r['exact'] and r['agrees'], (i, r)
            seen.add(emma.op_name(i))
    assert seen == set(PORT_OPS)


def test_the_rule_is_written_with_the_values_put_in(emma):
    """The board's line, as the issue writes it: d exp(x)/dx = exp(x) = out.data = 0.7312."""
    def first(op):
        return next(i for i in range(len(emma)) if emma.op_name(i) == op)
    e = first('exp')
    assert rule(emma, e, 0)['text'] == f'd exp(x)/dx = exp(x) = out.data = {emma.data[e]:.4g}'
    lg = first('log')
    x = emma.data[emma.children(lg)[0]]
    assert rule(emma, lg, 0)['text'] == f'd log(x)/dx = 1/x = 1/{x:.4g} = {1 / x:.4g}'
    m = first('mul')
    a, b = (emma.data[c] for c in emma.children(m))
    assert rule(emma, m, 0)['text'] == f'd(x·y)/dx = y = {b:.4g}' and rule(emma, m, 1)['text'] == f'd(x·y)/dy = x = {a:.4g}'
    p = first('pow')
    n, x = emma.pow_exponent[p], emma.data[emma.children(p)[0]]
    assert rule(emma, p, 0)['text'] == f'd xⁿ/dx = n·xⁿ⁻¹ = {n:.4g}·{x:.4g}^{n - 1:.4g} = {n * x ** (n - 1):.4g}'
    dead = next(i for i in range(len(emma)) if emma.op_name(i) == 'relu' and emma.data[i] == 0)
    assert rule(emma, dead, 0)['text'].endswith('<= 0: 0 (a dead ReLU passes nothing)')
    assert rule(emma, dead, 1) is None          # a relu has one input


CORRECT = {     # each port op's derivative, as engine.py writes it: (inputs, output, exponent, which input)
    'add': lambda xs, out, n, k: 1.0, 'mul': lambda xs, out, n, k: xs[1 - k],
    'pow': lambda xs, out, n, k: n * xs[0] ** (n - 1), 'log': lambda xs, out, n, k: 1 / xs[0],
    'exp': lambda xs, out, n, k: out, 'relu': lambda xs, out, n, k: float(xs[0] > 0)}
BENT = {'exp-x2': 'exp', 'exp-subtle': 'exp', 'log-sign': 'log', 'relu-flip': 'relu', 'mul-swap': 'mul',
        'pow-off-by-one': 'pow', 'add-drop': 'add'}


@pytest.mark.parametrize('fault', sorted(FAULTS))
def test_a_bent_derivative_breaks_its_rule_and_only_its_rule(model, fault):
    with inject(fault):
        trace = record_step(*model, 'emma')
    broken = {(i, k) for i in range(len(trace)) for k, r in enumerate(rules(trace, i)) if not r['agrees']}
    bent = BENT.get(fault)
    if bent is None:        # accumulate-overwrite: every local derivative is right, the sums are not
        assert broken == set()
        return
    assert broken and {trace.op_name(i) for i, _ in broken} == {bent}
    for i, k in broken:     # the message says the stored number does not follow the rule
        r = rule(trace, i, k)
        assert r['text'].endswith(f"; stored {trace.local[trace.child_ptr[i] + k]:.4g} does not follow this rule")
    # the rule agrees exactly where the stored derivative is the right one, computed here
    for i in range(len(trace)):
        if trace.op_name(i) != bent:
            continue
        xs = [trace.data[c] for c in trace.children(i)]
        for k, r in enumerate(rules(trace, i)):
            right = CORRECT[bent](xs, trace.data[i], trace.pow_exponent.get(i), k)
            assert r['agrees'] == (trace.local[trace.child_ptr[i] + k] == right) and r['value'] == right


def test_a_scripts_ops_follow_their_rules_and_its_own_ops_show_their_probes(tmp_path):
    trace = record_script(install(tmp_path, 'closures.py', 'every_op.py'))
    ops = {trace.op_name(i) for i in range(len(trace)) if trace.children(i)}
    assert ops == {'add', 'mul', 'pow', 'tanh', 'exp', 'log', 'relu'}
    for i in range(len(trace)):
        for r in rules(trace, i):
            assert r['kind'] == 'rule' and r['agrees'], r
    t = next(i for i in range(len(trace)) if trace.op_name(i) == 'tanh')
    assert rule(trace, t, 0)['text'].startswith('d tanh(x)/dx = 1 − tanh(x)² = 1 − out.data² = ')
    # own ops: no rule for a leaky relu ('relu*') or `scaled`; |x| at its kink takes the closure's -1
    folder = tmp_path / 'own'
    folder.mkdir()
    own = record_script(install(folder, 'closures.py', 'own_ops.py'))
    by = {own.op_name(i): i for i in range(len(own)) if own.children(i)}
    leaky = rule(own, by['relu*'], 0)
    xp, xm, fp, fm = own.probes[by['relu*']][0]
    assert leaky['kind'] == 'probe' and leaky['value'] == (fp - fm) / (xp - xm)
    assert leaky['text'].startswith('no rule known for relu*; checked against (f(x+h) − f(x−h))/2h = ')
    assert rule(own, by['scaled'], 0)['kind'] == 'none'
    assert rule(own, by['abs'], 0)['agrees'] and rule(own, by['abs'], 0)['stored'] == -1


def test_a_bent_tanh_in_a_script_breaks_its_rule(tmp_path):
    trace = record_script(install(tmp_path, 'closures.py', 'every_op.py',
                                  edit=('self.grad += (1 - t * t) * out.grad', 'self.grad += (1 - t) * out.grad')))
    t = next(i for i in range(len(trace)) if trace.op_name(i) == 'tanh')
    r = rule(trace, t, 0)
    assert not r['agrees'] and math.isclose(r['value'], 1 - trace.data[t] ** 2, rel_tol=1e-12)
    assert r['stored'] == 1 - trace.data[t]
