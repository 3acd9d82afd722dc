"""Recording: every Value op of a step, with its scope, at no cost to the numbers."""


import pytest

from microgpt.engine import Value
from microgpt.model import doc_loss, flat_params
from microgpt.recording import RecordingError, record
from microgpt.recording.step import record_step
from microgpt.tags import scope
from tests.conftest import AZ
from tests.reference_impl import BareValue, make_reference


def reference_counts_per_position(doc):
    """Values the bare reference creates at each position, counted by wrapping its
    constructor: an independent count of what our trace must hold."""
    ref = make_reference(AZ, seed=42)   # vocab a-z; parameters are made before counting
    counter = [0]
    init = BareValue.__init__

    def counting_init(self, *a, **k):
        counter[0] += 1
        init(self, *a, **k)
    BareValue.__init__ = counting_init
    try:
        toks = [ref.BOS] + [ref.uchars.index(c) for c in doc] + [ref.BOS]
        K, V = [[]], [[]]
        counts = []
        for pos in range(len(toks) - 1):
            counter[0] = 0
            logits = ref.forward(toks[pos], pos, K, V)
            mx = max(l.data for l in logits)
            ex = [(l - mx).exp() for l in logits]
            tot = sum(ex)
            probs = [e / tot for e in ex]
            -probs[toks[pos + 1]].log()
            counts.append(counter[0])
    finally:
        BareValue.__init__ = init
    return counts


@pytest.mark.parametrize('doc', ['emma', 'christopher'])
def test_per_position_node_counts_equal_values_created(doc, az_model):
    params, config, tok = az_model
    trace = record_step(params, config, tok, doc)
    ours = trace.position_nodes_count()
    expected = reference_counts_per_position(doc)
    assert [ours[p] for p in range(len(doc) + 1)] == expected
    # the rest: the 4192 parameters and the mean of the position losses
    n = len(doc) + 1
    assert ours[None] == 4192 + n + 3    # n adds, sum's int 0, the 1/n constant, the mul
    assert len(trace) == sum(expected) + ours[None]


def test_recording_changes_no_float(az_model):
    params, config, tok = az_model
    tokens = tok.encode('christopher')
    loss, _ = doc_loss(params, config, tokens)
    loss.backward()
    plain = [p.grad for p in flat_params(params)]
    plain_loss = loss.data
    for p in flat_params(params):
        p.grad = 0
    with record(params):
        loss, _ = doc_loss(params, config, tokens)
        loss.backward()
    assert loss.data == plain_loss
    assert [p.grad for p in flat_params(params)] == plain


def test_every_node_has_one_scope_and_slices_partition(recorded_christopher):
    t = recorded_christopher
    assert len(t.scope) == len(t) and t.scopes[0] == (None,) * 5
    assert all(s != 0 for s in t.scope)  # nothing recorded outside a scope
    assert t.roles() == ['attn_logits', 'attn_out', 'attn_weights', 'embed', 'fc1', 'fc2', 'head_out',
                         'k', 'logits', 'loss', 'probs', 'q', 'relu', 'residual', 'rmsnorm', 'v']
    params = t.nodes(block='params')
    assert len(params) == 4192
    by_pos = [t.nodes(pos=p) for p in t.positions()]
    final = [i for i in range(len(t)) if t.scope_of(i)[0] is None and t.scope_of(i)[2] != 'params']
    everything = sorted(params + final + [i for ids in by_pos for i in ids])
    assert everything == list(range(len(t)))           # disjoint and complete
    assert {t.scope_path(i) for i in final} == {'loss/loss'}
    # layers: exactly the attn and mlp blocks; heads: exactly per-head attention roles
    assert t.nodes(layer=0) == sorted(t.nodes(block='attn') + t.nodes(block='mlp'))
    heads = [t.nodes(head=h) for h in t.heads()]
    assert sum(map(len, heads)) == len(set().union(*map(set, heads)))
    assert {t.scope_of(i)[4] for h in heads for i in h} == {'attn_logits', 'attn_weights', 'head_out'}
    assert t.nodes(pos=3, layer=0, head=2) == [i for i in heads[2] if t.scope_of(i)[0] == 3]


@pytest.mark.parametrize('spec', ['wte[4][0]', 'wpe[0][7]', 'layer0.attn_wq[3][5]',
                                  'layer0.mlp_fc2[10][63]', 'lm_head[26][15]'])
def test_edge_contributions_sum_to_parameter_grad(recorded_christopher, spec):
    t = recorded_christopher
    (i,) = t.param_nodes(spec)
    uses = t.uses(i)
    assert uses, f"{spec} is used in the step"
    total = 0.0
    for parent, local, contrib in uses:
        assert contrib == local * t.grad[parent]
        total += contrib
    assert total == t.grad[i]                # same order as backward: exact
    assert abs(sum(c for _, _, c in uses) - t.grad[i]) <= 1e-12


def test_unused_parameter_has_no_uses_and_zero_grad(recorded_christopher):
    t = recorded_christopher
    (i,) = t.param_nodes('wte[25][3]')      # 'z' does not occur in 'christopher'
    assert t.uses(i) == [] and t.grad[i] == 0.0


def test_recorded_grads_are_the_values_grads(az_model):
    params, config, tok = az_model
    trace = record_step(params, config, tok, 'emma')
    assert [trace.grad[i] for i in trace.param_nodes('wte')] == [p.grad for row in params['wte'] for p in row]
    assert trace.loss == pytest.approx(sum(trace.position_losses()) / 5, rel=1e-15)
    assert trace.meta['token_strs'] == ['<BOS>', 'e', 'm', 'm', 'a', '<BOS>']  # inputs + last target


def test_scope_is_free_when_not_recording_and_recordings_do_not_nest():
    with scope(pos=1):
        v = Value(1.0) * 2
    assert v.data == 2.0
    with record():
        with pytest.raises(RecordingError, match='already active'):
            with record():
                pass


def test_fields_nest_and_unknown_fields_are_refused():
    with record() as tape:
        with scope(pos=2, block='attn'):
            with scope(head=1, role='q'):
                Value(1.0) + 2.0
        with pytest.raises(ValueError, match=r"unknown scope field\(s\) \['colour'\]"):
            with scope(colour='red'):
                pass
    trace = tape.to_trace()
    # the op's result and the constant 2.0 are recorded; Value(1.0), made by hand,
    # is not an op: it joins the trace as a 'leaf' input with no scope
    assert [trace.op_name(i) for i in range(len(trace))] == ['const', 'add', 'leaf']
    assert [trace.scope_path(i) for i in range(len(trace))] == ['pos2/attn/head1/q'] * 2 + ['(root)']


def test_values_made_outside_record_become_leaf_nodes():
    a = Value(2.0)
    with record() as tape:
        with scope(role='x'):
            y = a * a
        y.backward()
    t = tape.to_trace()
    assert [t.op_name(i) for i in range(len(t))] == ['mul', 'leaf']
    assert t.children(0) == [1, 1] and t.grad[1] == 4.0


def test_edges_recorded_as_the_ops_run_equal_a_lookup_by_identity(az_model):
    """The ops write each edge's child id as they make the graph (the fast path of
    tape.detach); an independent identity lookup over the live Values, and the
    detach path that rebuilds every edge itself, must give the same columns."""
    params, config, tok = az_model
    with record(params) as tape:
        loss, _ = doc_loss(params, config, tok.encode('emma'))
        loss.backward()
    fast = tape.to_trace(loss)
    position = {id(v): i for i, v in enumerate(tape.values)}  # independent of the stamps
    assert [list(fast.children(i)) for i in range(len(fast))] == \
        [[position[id(c)] for c in v._children] for v in tape.values]
    assert list(fast.backward_order) == [position[id(v)] for v in reversed(tape.backward_order)]
    assert fast.meta['loss_id'] == position[id(loss)]
    tape.outside = True  # as if an op had met a Value from outside: the slow path
    slow = tape.to_trace(loss)
    for column in ('op', 'data', 'grad', 'scope', 'child_ptr', 'child', 'local', 'backward_order'):
        assert getattr(fast, column) == getattr(slow, column), column
    assert fast.meta == slow.meta


def test_a_value_from_an_earlier_recording_is_a_leaf_in_the_next():
    a = Value(3.0)
    with record({'w': [[a]]}):
        y = a * 2.0
    with record({'w': [[a]]}) as tape:  # `a` registered again; y was made by the first tape
        z = y + a
        z.backward()
    t = tape.to_trace()
    assert [t.op_name(i) for i in range(len(t))] == ['param', 'add', 'leaf', 'leaf']
    assert t.children(1) == [2, 0]     # z = y + a: y joins as a leaf
    assert t.children(2) == [0, 3]     # y = a * 2.0: its constant, from the first tape, too
    assert t.data[3] == 2.0 and t.grad[0] == 1.0 + 2.0


def test_the_engine_never_stamps_a_value():
    v = Value(1.0) * 2 + Value(3.0).exp()
    v.backward()
    assert not hasattr(v, '_id') and not any(hasattr(c, '_id') for c in v._children)


def test_a_tape_read_after_a_newer_recording_gives_the_same_trace(az_model):
    """A newer tape stamps the parameters again; an older tape detached afterwards
    must not read those stamps (it rebuilds its edges instead)."""
    params, config, tok = az_model
    tokens = tok.encode('emma')
    with record(params) as first:
        loss1, _ = doc_loss(params, config, tokens)
        loss1.backward()
    now = first.to_trace(loss1)
    with record(params) as second:
        loss2, _ = doc_loss(params, config, tok.encode('ava'))
        loss2.backward()
    later = first.to_trace(loss1)
    # (not 'grad': the second backward added into the parameters' live grads)
    for column in ('op', 'data', 'scope', 'child_ptr', 'child', 'local', 'backward_order'):
        assert getattr(later, column) == getattr(now, column), column
    assert later.meta == now.meta
    assert len(second.to_trace(loss2)) != len(now)


def test_before_after_training_reports_each_step_with_its_loss_and_adams_state():
    from microgpt.recording.session import train_and_record
    from microgpt.train import start_run, train_step
    docs = ['emma', 'olivia', 'ava', 'isabella', 'sophia']
    seen = []
    before, after, optimizer = train_and_record(docs, 'emma', 3, seed=42, num_steps=3,
                                                on_step=lambda *a: seen.append(a))
    run = start_run(docs, seed=42)  # the same run, trained independently
    losses = [train_step(run, k, 3) for k in range(3)]
    assert seen == [(1, 3, losses[0]), (2, 3, losses[1]), (3, 3, losses[2])]
    assert before.loss != after.loss
    assert optimizer == {'step': 3, 'm': run.optimizer.m, 'v': run.optimizer.v}   # the state step 4 starts from
    assert [p.data for p in run.optimizer.params] == [after.data[i] for i in range(len(run.optimizer.params))]
