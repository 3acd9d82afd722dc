"""Node-level check on recorded traces: the correct engine passes; tampering with
one column is found at the node tampered with; replaying the forward from a node
measures d loss / d node; kinks and domains are handled as documented."""

import json
import math

import pytest

from microgpt.checks.faults import inject
from microgpt.checks.findings import format_node_report
from microgpt.checks.nodes import ATOL, REL_EPS, RTOL, check_trace
from microgpt.checks.replay import NodeCheckError, numeric_dloss, replay_loss
from microgpt.engine import Value
from microgpt.recording.step import record_step
from microgpt.recording.tape import record
from microgpt.recording.trace import Trace
from tests.tiny_model import tiny_model


@pytest.fixture(scope='module')
def emma(tiny):
    params, config, tok = tiny
    return record_step(params, config, tok, 'emma')


def fresh(trace):
    """A private copy of a trace, to tamper with."""
    return Trace.from_json(trace.to_json())


def test_correct_engine_passes_on_the_default_model(recorded_christopher):
    result = check_trace(recorded_christopher)
    assert result.ok, format_node_report(result)
    n = len(recorded_christopher)
    ops = recorded_christopher.op_counts()
    assert result.checked['forward'] == n - ops['param'] - ops['const']
    assert result.checked['local'] == len(recorded_christopher.child) == 189506
    assert result.checked['sum'] == n
    assert result.nonsmooth == 0 and result.skipped == []
    assert result.worst['local_rel_err'] < 1e-8 and result.worst['local_score'] < 1e-2
    assert result.tolerances['rtol'] == RTOL == 1e-6 and result.tolerances['atol'] == ATOL
    assert result.tolerances['rel_eps'] == REL_EPS and result.tolerances['sum_rtol'] == 0.0


@pytest.mark.parametrize('doc', ['a', 'olivia', 'zzzzzzzzzzzz', 'christopher'])
def test_correct_engine_passes_on_several_documents(tiny, doc):
    params, config, tok = tiny
    trace = record_step(params, config, tok, doc)
    result = check_trace(trace)
    assert result.ok, format_node_report(result)
    assert result.first is None and result.nodes == [] and result.highlight() == {}
    assert format_node_report(result).startswith('node check: ok')


def test_two_layers_pass(tiny):
    params, config, tok = tiny_model(seed=3, n_layer=2)
    trace = record_step(params, config, tok, 'ava')
    assert check_trace(trace).ok


def test_replay_without_a_change_is_the_recorded_forward(emma):
    loss_id = emma.meta['loss_id']
    for node in (0, emma.param_nodes('layer0.mlp_fc1[2][3]')[0], loss_id - 40, loss_id):
        assert replay_loss(emma, node, emma.data[node]) == emma.loss


def test_replay_moves_only_what_depends_on_the_node(emma):
    """Moving an lm_head weight changes the loss by about grad * delta."""
    node = emma.param_nodes('lm_head[3][1]')[0]
    delta = 1e-4
    moved = replay_loss(emma, node, emma.data[node] + delta)
    assert moved - emma.loss == pytest.approx(emma.grad[node] * delta, rel=1e-3)


def test_dloss_by_replay_matches_grads(emma):
    loss_id = emma.meta['loss_id']
    probe = [loss_id, loss_id - 1,
             emma.nodes(pos=2, role='relu')[5],
             emma.nodes(pos=0, layer=0, head=1, role='attn_weights')[0],
             emma.param_nodes('wte[4][0]')[0]]
    result = check_trace(emma, local=False, sums=False, dloss=probe)
    assert result.ok, result.dloss
    assert result.checked == {'forward': 0, 'local': 0, 'sum': 0, 'dloss': 5}
    for row in result.dloss:
        assert row['numeric'] == pytest.approx(row['grad'], rel=1e-5, abs=1e-8)
    assert result.dloss[0]['numeric'] == pytest.approx(1.0, rel=1e-9)
    numeric, h, _ = numeric_dloss(emma, probe[-1])
    assert h == 1e-6 and numeric == pytest.approx(emma.grad[probe[-1]], rel=1e-5)


def test_a_wrong_exp_derivative_is_found_by_replay_below_it_not_at_it(tiny):
    """Under exp-x2 the first failing exp node's own grad is right (it comes from
    its parents); its input's grad is wrong: d loss / d node by replay says so."""
    params, config, tok = tiny
    with inject('exp-x2'):
        trace = record_step(params, config, tok, 'emma')
    first = check_trace(trace).first
    assert (first.op, first.kind, first.scope) == ('exp', 'local', 'pos4/loss/probs')
    x = first.child_id
    result = check_trace(trace, local=False, sums=False, dloss=[first.node, x])
    assert [f.node for f in result.failures] == [x]
    bad = result.failures[0]
    assert bad.kind == 'dloss' and bad.found == pytest.approx(2 * bad.expected, rel=1e-4) is not None


def test_tampered_grad_is_found_at_that_node_first(emma):
    t = fresh(emma)
    i = t.nodes(pos=3, layer=0, role='fc2')[100]
    t.grad[i] += 1e-9 * abs(t.grad[i]) + 1e-15
    result = check_trace(t, local=False)
    assert result.first.node == i and result.first.kind == 'sum'
    assert result.first.found == t.grad[i] and result.first.expected == emma.grad[i]
    # its children now disagree with what i passes them; nothing else does
    assert set(result.nodes) == {i} | set(t.children(i))


def test_loss_grad_must_be_one(emma):
    t = fresh(emma)
    loss_id = t.meta['loss_id']
    t.grad[loss_id] = 2.0
    result = check_trace(t, local=False)
    assert result.first.node == loss_id and result.first.rank == 0
    assert (result.first.expected, result.first.found) == (1.0, 2.0)


def test_tampered_local_is_found_at_that_node_only(emma):
    t = fresh(emma)
    i = [j for j in t.nodes(pos=1, layer=0, head=0, role='attn_weights') if t.op_name(j) == 'exp'][1]
    t.local[t.child_ptr[i]] *= 1 + 1e-5      # 10x the tolerance
    result = check_trace(t, sums=False)
    assert result.nodes == [i]
    f = result.first
    assert (f.kind, f.op, f.child, f.child_id) == ('local', 'exp', 0, t.children(i)[0])
    assert f.expected == pytest.approx(t.data[i], rel=1e-9)      # d exp = exp
    assert f.scope == 'pos1/layer0/attn/head0/attn_weights'


def test_tampered_forward_is_found(emma):
    t = fresh(emma)
    i = t.nodes(pos=2, layer=0, role='relu')[7]
    t.data[i] += 0.5
    result = check_trace(t, sums=False)
    assert i in result.by_kind()['forward']


def test_only_restricts_what_is_checked(tiny):
    params, config, tok = tiny
    with inject('relu-flip'):
        trace = record_step(params, config, tok, 'emma')
    layer = trace.nodes(pos=1)
    result = check_trace(trace, only=layer)
    assert result.nodes and all(trace.scope_of(i)[0] == 1 for i in result.nodes)
    assert result.checked['sum'] == len(layer)


def relu_trace(x_value, fault=None):
    """A three-node graph: a leaf x, relu(x), relu(x) * 3, with backward."""
    x = Value(x_value)
    with record() as tape:
        if fault:
            with inject(fault):
                y = x.relu() * 3.0
                y.backward()
        else:
            y = x.relu() * 3.0
            y.backward()
    return tape.to_trace(y)


@pytest.mark.parametrize('fault', [None, 'relu-flip'])
def test_relu_at_its_kink_accepts_either_derivative(fault):
    t = relu_trace(0.0, fault)
    result = check_trace(t)
    assert result.ok and result.nonsmooth == 1


def test_relu_just_off_its_kink_is_still_checked():
    assert check_trace(relu_trace(1e-3)).ok
    result = check_trace(relu_trace(1e-3, 'relu-flip'))
    assert [f.op for f in result.failures] == ['relu'] and result.nonsmooth == 0


@pytest.mark.parametrize('x', [1e-300, 1e-12, 1.0, 1e200])
def test_log_near_zero_and_large(x):
    a = Value(x)
    with record() as tape:
        y = a.log() * 2.0
        y.backward()
    result = check_trace(tape.to_trace(y))
    assert result.ok and result.checked['local'] == 3 and not result.skipped


def test_exp_overflowing_next_to_its_input_is_skipped_not_failed():
    a = Value(709.782712)        # exp overflows past 709.782712893, one step above
    with record() as tape:
        y = a.exp()
        y.backward()
    result = check_trace(tape.to_trace(y))
    assert result.ok and result.skipped and result.skipped[0][1] == 'local'


def test_pow_and_stale_grads():
    a = Value(2.5)
    a.grad = 1.0      # left over from an earlier backward: not zeroed
    with record() as tape:
        y = a ** -0.5
        y.backward()
    result = check_trace(tape.to_trace(y))
    assert [(f.kind, f.op) for f in result.failures] == [('sum', 'leaf')]
    assert result.first.found == pytest.approx(1.0 + -0.5 * 2.5 ** -1.5)


def test_a_trace_without_backward_is_refused():
    a = Value(1.0)
    with record() as tape:
        y = a * 2.0
    with pytest.raises(NodeCheckError, match='no backward pass'):
        check_trace(tape.to_trace(y))


def test_bad_node_ids_are_refused(emma):
    with pytest.raises(NodeCheckError, match=r'node 10\*\*9|node 1000000000 is not in this trace'):
        check_trace(emma, dloss=[10**9])
    with pytest.raises(NodeCheckError, match='is not in this trace'):
        check_trace(emma, only=[-1])


def test_result_to_dict_highlight_and_report(tiny):
    params, config, tok = tiny
    with inject('log-sign'):
        trace = record_step(params, config, tok, 'emma')
    result = check_trace(trace, dloss=[trace.meta['loss_id']])
    d = json.loads(json.dumps(result.to_dict()))
    assert d['ok'] is False and d['failing_nodes'] == 5 and d['summary'] == ['5 log nodes: local']
    assert d['first']['node'] == result.first.node and d['first']['op'] == 'log'
    assert d['first']['scope'] == 'pos4/loss/loss' and d['faults'] == []
    hl = result.highlight()
    assert list(hl) == result.nodes and all(r.startswith('d log/d arg0') for r in hl.values())
    text = format_node_report(result)
    first_line, *rest = text.splitlines()
    assert first_line.startswith('node check: FAIL') and '5 failing nodes' in first_line
    assert f"first wrong (nearest the loss, backward step {result.first.rank}): log \u2192 loss_t@pos4 " \
           f"#{result.first.node} at pos4/loss/loss" in text
    assert d['first']['name'] == trace.name(result.first.node) == 'log \u2192 loss_t@pos4'
    assert math.isclose(result.first.expected, -result.first.found, rel_tol=1e-6)


def test_a_sum_tolerance_never_accepts_an_infinite_grad(emma):
    """With sum_rtol > 0, a finite sum against an infinite grad still fails (inf <= rtol*inf
    must not pass), at the node tampered with."""
    t = fresh(emma)
    i = emma.meta['position_loss_ids'][0]
    t.grad[i] = math.inf
    result = check_trace(t, local=False, sum_rtol=1e-9)
    assert ('sum', i) in {(f.kind, f.node) for f in result.failures}


def test_one_sided_differences_agree_with_the_central_one_on_a_smooth_node(emma):
    i = emma.meta['position_loss_ids'][1]
    central, h, (fwd, bwd) = numeric_dloss(emma, i)
    assert h > 0 and central == pytest.approx(emma.grad[i], rel=1e-6)
    assert fwd == pytest.approx(central, rel=1e-4) and bwd == pytest.approx(central, rel=1e-4)


def test_the_failure_table_has_its_header(tiny):
    params, config, tok = tiny
    with inject('exp-x2'):
        trace = record_step(params, config, tok, 'ab')
    result = check_trace(trace)
    report = format_node_report(result).splitlines()
    (header,) = [l for l in report if l.split()[:3] == ['node', 'op', 'scope']]
    assert header.split() == ['node', 'op', 'scope', 'check', 'arg', 'found', 'expected', 'name']
    row = report[report.index(header) + 1]
    assert row.split()[1] == 'exp' and row.endswith('  ' + trace.name(int(row.split()[0])))
    # the first failure's reason under its heading; a table of the first 20 in backward order, then a count
    assert report[report.index(header) - 2] == f"  {result.first.reason}" and result.first.reason.startswith('d exp/')
    *rows, more = report[report.index(header) + 1:]
    assert len(result.failures) > 20 and [int(r.split()[0]) for r in rows] == result.nodes[:20]
    assert more == f"  ... {len(result.failures) - 20} more, in backward order"


def test_the_kink_allowance_includes_its_edges_and_no_more():
    """relu at 0: a stored derivative anywhere in [lo - slack, hi + slack] is accepted,
    with lo = 0 and hi = 1 the one-sided differences and slack = 2 tol + RTOL * 1, where
    tol = ATOL + 4 * 2**-52 * max(|f(x-h)|, |f(x)|, |f(x+h)|) / h (the module docstring)."""
    t = relu_trace(0.0)
    relu = next(i for i in range(len(t)) if t.op_name(i) == 'relu')
    h = REL_EPS * 1.0
    tol = ATOL + 4 * 2.0**-52 * h / h
    slack = 2 * tol + RTOL * 1.0
    for found, ok in ((0.0 - slack, True), (1.0 + slack, True),
                      (math.nextafter(0.0 - slack, -1.0), False), (math.nextafter(1.0 + slack, 2.0), False)):
        t.local[t.child_ptr[relu]] = found
        result = check_trace(t, sums=False)
        assert result.ok is ok and result.nonsmooth == int(ok), found


@pytest.mark.parametrize('fault,grad', [(None, 0.0), ('relu-flip', 3.0)])
def test_d_loss_across_a_kink_accepts_either_one_sided_value(fault, grad):
    """x -> relu(x) * 3 at x = 0: the replay's central difference is 1.5, the one-sided
    ones 0 and 3; x's grad is 0 (relu's derivative 0 at 0) or 3 (the other side)."""
    t = relu_trace(0.0, fault)
    x = next(i for i in range(len(t)) if t.op_name(i) == 'leaf')
    result = check_trace(t, local=False, sums=False, dloss=[x])
    (row,) = result.dloss
    assert result.ok and row['grad'] == grad and row['numeric'] == pytest.approx(1.5) and row['ok'] is True


def test_an_exact_derivative_passes_at_zero_tolerance():
    """relu below 0: the local derivative 0 and the measured one, (0 - 0) / 2h, agree exactly, so
    even with atol = rtol = 0 (an allowance of exactly 0) the edge passes: a difference equal to
    the allowance is allowed, not counted as a kink (the mutation benchmark's survivor
    nodes.py:173, `diff < allowed`)."""
    x = Value(-1.5)
    with record() as tape:
        z = x.relu() * 2.0 + x
        z.backward()
    t = tape.to_trace(z)
    [i] = [k for k in range(len(t)) if t.op_name(k) == 'relu']
    result = check_trace(t, atol=0.0, rtol=0.0, sums=False, only=[i])
    assert result.ok and result.failures == [] and result.checked['local'] == 1
    assert result.nonsmooth == 0            # a smooth point, not taken for a kink
