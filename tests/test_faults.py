"""Fault injection: each named fault bends exactly one op's local derivatives (or
backward's accumulation), leaves the forward alone, and the node-level check
names exactly the nodes it bent."""

import json

import pytest

from microgpt import engine
from microgpt.checks.faults import FAULTS, active_faults, describe_faults, fault_names, inject
from microgpt.checks.nodes import REL_EPS, check_trace
from microgpt.checks.params import check_params
from microgpt.engine import PRIMITIVES, Value
from microgpt.model import doc_loss, flat_params
from microgpt.optim import Adam
from microgpt.recording.step import record_step
from microgpt.recording.tape import record
from tests.tiny_model import tiny_model

DOC = 'emma'


@pytest.fixture(scope='module')
def clean_trace(tiny):
    params, config, tok = tiny
    return record_step(params, config, tok, DOC)


def installed():
    return {attr: Value.__dict__[attr] for attr in PRIMITIVES.values()}, engine.accumulate


def test_registry_lists_every_fault_with_a_description():
    assert fault_names() == ['exp-x2', 'exp-subtle', 'log-sign', 'relu-flip', 'mul-swap',
                             'pow-off-by-one', 'add-drop', 'accumulate-overwrite']
    text = describe_faults()
    for name, f in FAULTS.items():
        assert f.description and f"{name}  " in text
        assert json.loads(json.dumps(f.to_dict()))['name'] == name
    assert {f.op for f in FAULTS.values()} == set(PRIMITIVES) | {'accumulate'}


def test_unknown_fault_lists_the_known_ones():
    with pytest.raises(ValueError) as e:
        with inject('exp-x3'):
            pass
    msg = str(e.value)
    assert "unknown fault 'exp-x3'" in msg
    assert all(name in msg for name in FAULTS)


@pytest.mark.parametrize('name,kw,match', [
    ('exp', {}, 'exactly one of'),
    ('exp', {'factor': 2.0, 'swap': True}, 'exactly one of'),
    ('exp', {'flip': True}, 'relu only'),
    ('relu', {'swap': True}, 'mul only'),
    ('exp', {'off_by_one': True}, 'pow only'),
    ('exp', {'factor': 2.0, 'child': 1}, 'child must be 0..0'),
    ('mul', {'swap': True, 'child': 0}, 'child= goes with factor='),
    ('exp-x2', {'factor': 3.0}, 'named fault'),
])
def test_bad_modifiers_are_refused(name, kw, match):
    before = installed()
    with pytest.raises(ValueError, match=match):
        with inject(name, **kw):
            pass
    assert installed() == before


def test_inject_restores_the_engine_even_on_error():
    before = installed()
    for name in FAULTS:
        with pytest.raises(RuntimeError):
            with inject(name):
                assert installed() != before
                assert active_faults() == [name]
                raise RuntimeError('boom')
        assert installed() == before
        assert active_faults() == []


def test_custom_fault_is_the_named_one(tiny, clean_trace):
    params, config, tok = tiny
    with inject('exp', factor=2.0) as f:
        assert f.op == 'exp' and f.factor == 2.0
        custom = record_step(params, config, tok, DOC)
    with inject('exp-x2'):
        named = record_step(params, config, tok, DOC)
    assert custom == named
    assert custom != clean_trace


@pytest.mark.parametrize('name', list(FAULTS))
def test_fault_leaves_the_forward_alone_and_bends_the_grads(name, tiny, clean_trace):
    params, config, tok = tiny
    with inject(name):
        loss, _ = doc_loss(params, config, tok.encode(DOC))
    assert loss.data == clean_trace.loss
    with inject(name):
        trace = record_step(params, config, tok, DOC)
    assert trace.data.tobytes() == clean_trace.data.tobytes()
    assert trace.grad.tobytes() != clean_trace.grad.tobytes()


@pytest.mark.parametrize('name', ['mul-swap', 'accumulate-overwrite'])
def test_inject_inside_record_records_the_same_trace(name, tiny):
    params, config, tok = tiny
    with inject(name):
        outside = record_step(params, config, tok, DOC)
    for p in flat_params(params):
        p.grad = 0
    with record(params) as tape:
        with inject(name):
            loss, _ = doc_loss(params, config, tok.encode(DOC))
            loss.backward()
    inside = tape.to_trace(loss)
    assert inside.local.tobytes() == outside.local.tobytes()
    assert inside.grad.tobytes() == outside.grad.tobytes()


def changed_nodes(trace, clean):
    """Independently: the nodes whose stored local derivatives differ from the clean run's."""
    assert trace.child.tobytes() == clean.child.tobytes()   # same graph
    return {i for i in range(len(trace)) if trace.local_grads(i) != clean.local_grads(i)}


def broken_sums(trace):
    """Independently: nodes whose grad is not the sum of what its parents passed it."""
    out = set()
    for i in range(len(trace)):
        total = 0
        for _, _, c in trace.uses(i):
            total += c
        expected = 1 if i == trace.meta['loss_id'] else total
        if trace.grad[i] != expected:
            out.add(i)
    return out


@pytest.mark.parametrize('name', list(FAULTS))
def test_node_check_names_exactly_the_bent_nodes(name, tiny, clean_trace):
    params, config, tok = tiny
    with inject(name):
        trace = record_step(params, config, tok, DOC)
    result = check_trace(trace)
    assert not result.ok
    assert result.faults == [] and active_faults() == []
    fault = FAULTS[name]
    if fault.op == 'accumulate':
        expected = broken_sums(trace)
        assert changed_nodes(trace, clean_trace) == set()
        assert result.by_kind().keys() == {'sum'}
    else:
        expected = changed_nodes(trace, clean_trace)
        assert {trace.op_name(i) for i in expected} == {fault.op}
        assert result.by_kind().keys() == {'local'}
        # no relu input sits within a step of its kink, where either derivative is accepted
        if fault.op == 'relu':
            assert all(abs(trace.data[trace.children(i)[0]]) > REL_EPS for i in expected)
        assert {f.op for f in result.failures} == {fault.op}
    assert expected
    assert set(result.nodes) == expected
    # the first failure is the failing node nearest the loss (nodes backward never
    # reached, like the softmax's unused probabilities, come last)
    rank = [r if r >= 0 else len(trace) for r in trace.backward_rank]
    assert result.first.node == min(expected, key=lambda i: rank[i])
    assert [rank[f.node] for f in result.failures] == sorted(rank[f.node] for f in result.failures)


def test_mul_swap_spares_squares(tiny):
    """rmsnorm's x * x has equal local derivatives: swapping them changes nothing,
    so the check must not name those nodes."""
    params, config, tok = tiny
    with inject('mul-swap'):
        trace = record_step(params, config, tok, DOC)
    squares = [i for i in range(len(trace)) if trace.op_name(i) == 'mul'
               and len(set(trace.children(i))) == 1]
    assert len(squares) == 5 * 3 * config.n_embd   # 5 positions x 3 rmsnorms x n_embd
    assert not set(squares) & set(check_trace(trace).nodes)


def test_param_check_fails_under_a_fault(tiny):
    params, config, tok = tiny
    with inject('relu-flip'):
        result = check_params(params, config, tok, DOC, select='layer0.mlp_fc1', sample=12, seed=1)
    assert result.faults == ['relu-flip']
    assert not result.ok and len(result.failures) >= 6
    worst = result.worst
    assert abs(worst.analytic - worst.numeric) > 1e-3 * abs(worst.numeric)


def train_one_doc(steps, doc, fault=None):
    params, config, tok = tiny_model()
    opt = Adam(flat_params(params))
    tokens = tok.encode(doc)
    losses = []
    for step in range(steps):
        if fault:
            with inject(fault):
                loss, _ = doc_loss(params, config, tokens)
                loss.backward()
        else:
            loss, _ = doc_loss(params, config, tokens)
            loss.backward()
        losses.append(loss.data)
        opt.step(step, steps)
    return losses


def test_a_class_can_watch_the_loss_not_go_down():
    clean = train_one_doc(8, 'anna')
    broken = train_one_doc(8, 'anna', 'log-sign')   # every step climbs the loss
    assert clean[0] == broken[0]
    assert clean[-1] < clean[0] - 0.5
    assert broken[-1] > broken[0] + 0.5
