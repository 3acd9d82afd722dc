"""The backprop lab (microgpt.recording.lab): each wrong backward, against the learner's own code.

The oracles are the buggy backwards written as learners write them (a real recursive
function; `backward()` called twice on the engine; a literal `=` loop), run on the port's
Values without any recording; the lab's wrong trace must hold the same grads, bit for bit.
Then the first diverging node of each mode for 'emma' on the fresh seed-42 model: pinned by
id, op and scope, and checked to be first (every node before it in the correct backward
order has its correct grad).
"""

import statistics
import sys
import threading

import pytest

from graphviz_export.steps.update import adam_update
from microgpt import engine
from microgpt.checks.faults import FAULTS, inject
from microgpt.model import doc_loss, flat_params
from microgpt.recording.lab import LabError, first_divergence, lab_step
from microgpt.train import fresh_model


@pytest.fixture(scope='module')
def model():
    return fresh_model()


@pytest.fixture(scope='module')
def labs(model):
    params, config, tok = model
    out = {m: lab_step(params, config, tok, 'emma', m) for m in ('recursive', 'twice', 'assign')}
    for name in FAULTS:
        out[name] = lab_step(params, config, tok, 'emma', name, inject=inject(name), correct=out['twice'].correct)
    return out


def _forward(model):
    params, config, tok = model
    for p in flat_params(params):
        p.grad = 0
    loss, _ = doc_loss(params, config, tok.encode('emma'))
    return loss


def _param_grads(model):
    return [p.grad for p in flat_params(model[0])]


def test_recursive_is_the_learners_recursive_function(model, labs):
    """A real recursive backward (in a thread with a big stack: the graph is ~1,000 deep)."""
    loss = _forward(model)
    visited = set()

    def backward(v):
        visited.add(v)
        for child, local in zip(v._children, v._local_grads):
            child.grad += local * v.grad
            if child not in visited:
                backward(child)

    def run():
        loss.grad = 1
        backward(loss)

    limit = sys.getrecursionlimit()
    old = threading.stack_size(512 * 1024 * 1024)
    sys.setrecursionlimit(200_000)
    try:
        t = threading.Thread(target=run)
        t.start()
        t.join()
    finally:
        sys.setrecursionlimit(limit)
        threading.stack_size(old)
    assert _param_grads(model) == list(labs['recursive'].wrong.grad[:len(flat_params(model[0]))])


def test_twice_is_the_engines_backward_called_twice(model, labs):
    loss = _forward(model)
    loss.backward()
    loss.backward()
    n = len(flat_params(model[0]))
    assert _param_grads(model) == list(labs['twice'].wrong.grad[:n])
    assert labs['twice'].wrong.grad[labs['twice'].wrong.meta['loss_id']] == 1


def test_assign_is_a_literal_equals_loop(model, labs):
    loss = _forward(model)
    topo = engine.topological_order(loss)
    loss.grad = 1
    for v in reversed(topo):
        for child, local in zip(v._children, v._local_grads):
            child.grad = local * v.grad
    n = len(flat_params(model[0]))
    assert _param_grads(model) == list(labs['assign'].wrong.grad[:n])
    # and it is the bug `gradcheck --inject accumulate-overwrite` injects
    assert labs['assign'].wrong.grad == labs['accumulate-overwrite'].wrong.grad


# mode -> (first diverging node: id, op, scope path) for 'emma' on the fresh seed-42 model
FIRST = {
    'recursive': (43800, 'add', 'pos4/loss/probs'),
    'twice': (43893, 'const', 'loss/loss'),
    'assign': (43801, 'exp', 'pos4/loss/probs'),
    'accumulate-overwrite': (43801, 'exp', 'pos4/loss/probs'),
    'exp-x2': (43797, 'add', 'pos4/loss/probs'),
    'exp-subtle': (43797, 'add', 'pos4/loss/probs'),
    'log-sign': (43883, 'mul', 'pos4/loss/probs'),
    'relu-flip': (40685, 'add', 'pos4/layer0/mlp/fc1'),
    'mul-swap': (43893, 'const', 'loss/loss'),
    'pow-off-by-one': (43829, 'add', 'pos4/loss/probs'),
    'add-drop': (43886, 'mul', 'pos4/loss/loss'),
}


@pytest.mark.parametrize('mode', list(FIRST))
def test_first_divergence_of_each_mode(labs, mode):
    lab = labs[mode]
    c, w = lab.correct, lab.wrong
    first = lab.first
    assert (first, c.op_name(first), c.scope_path(first)) == FIRST[mode]
    order = list(c.backward_order)
    k = order.index(first)
    assert all(c.grad[i] == w.grad[i] for i in order[:k])     # nothing earlier differs
    assert c.grad[first] != w.grad[first]
    assert c.name(first) in lab.lines[0] and f'#{first}' in lab.lines[0]
    assert first_divergence(c, c) is None


def test_the_explanations_name_the_cause(labs):
    rec = labs['recursive']
    # the cause is a user of the first wrong node that sent its grad before all its uses arrived
    assert rec.cause in [p for p, _, _ in rec.correct.uses(rec.first)]
    assert 'passed its grad on when 1 of its 2 uses had arrived' in rec.lines[1]
    assert rec.correct.name(rec.cause) in rec.lines[1]
    twice = labs['twice']
    assert twice.wrong.grad[twice.first] == 2 * twice.correct.grad[twice.first]
    assert '(2x here)' in twice.lines[1]
    fault = labs['exp-x2']
    assert fault.correct.op_name(fault.cause) == 'exp'
    assert [2 * x for x in fault.correct.local_grads(fault.cause)] == fault.wrong.local_grads(fault.cause)
    assert 'with = only the last contribution stays' in labs['assign'].lines[1]


def test_twice_at_the_parameters_as_the_lab_tour_says(labs):
    """The figures of examples/backprop_lab.toml's third stop."""
    c, w = labs['twice'].correct, labs['twice'].wrong
    ids = [i for i in range(len(c)) if c.op_name(i) == 'param' and c.grad[i] != 0]
    ratios = [w.grad[i] / c.grad[i] for i in ids]
    assert len(ids) == 3616 and sum(r < 0 for r in ratios) == 174
    assert round(statistics.median(ratios)) == 48
    cell = c.param_base['layer0.attn_wq'] + 3 * 16 + 5
    assert (f'{w.grad[cell]:.4g}', f'{c.grad[cell]:.4g}') == ('-0.008154', '-9.925e-05')
    right, wrong = adam_update(c, ids)['rows'], adam_update(w, ids)['rows']
    same = [(a['delta'], b['delta']) for a, b in zip(right, wrong) if a['delta'] * b['delta'] > 0]
    assert len(same) == 3442 and max(abs(b - a) / abs(a) for a, b in same) < 0.006     # "to within 0.6%"


def test_unknown_mode(model):
    with pytest.raises(LabError, match="lab 'sideways' is not one of: recursive, twice, assign"):
        lab_step(*model, 'emma', 'sideways')
