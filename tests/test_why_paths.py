"""Contribution paths (microgpt.recording.paths): the routes from the loss down to a node, whose
products and remainder add up to its grad bit for bit; and why a grad is 0."""

import math
import random
import struct

import pytest

from microgpt.engine import Value
from microgpt.recording import record, record_step
from microgpt.recording.paths import PathError, decompose, path_count, top_paths, why_zero
from microgpt.train import fresh_model


@pytest.fixture(scope='module')
def emma():
    params, config, tok = fresh_model(42)
    return record_step(params, config, tok, 'emma')


def bits(x):
    return struct.pack('<d', x)


def check_route(trace, path, node):
    """A listed path is a real route from the loss down to `node`, and its product is the locals
    multiplied as backward multiplies (local * upstream, from 1.0 at the loss), recomputed here."""
    nodes, edges = path['nodes'], path['edges']
    assert nodes[0] == trace.meta['loss_id'] and nodes[-1] == node and len(nodes) == len(edges) + 1
    c = 1.0
    for m, e in enumerate(edges):
        user, child = nodes[m], nodes[m + 1]
        assert trace.child_ptr[user] <= e < trace.child_ptr[user + 1] and trace.child[e] == child
        c = trace.local[e] * c
    assert bits(c) == bits(path['product'])
    assert path['zeros'] == sum(trace.local[e] == 0 for e in edges)


def test_paths_and_remainder_add_up_to_the_grad_bit_for_bit_for_every_parameter_of_emma(emma):
    """All 4,192 parameters: the listed products, added left to right from 0.0, then the
    remainder floats, give the recorded grad bit for bit; and every path is a real route."""
    cells = [i for name in emma.param_names for i in emma.param_nodes(name)]
    assert len(cells) == 4192
    closing = 0
    for i in cells:
        d = decompose(emma, i)
        s = 0.0
        for p in d['paths']:
            check_route(emma, p, i)
            s += p['product']
        for r in d['remainder']:
            s += r
        assert bits(s) == bits(emma.grad[i]) and d['exact'], i
        # the largest first: fewest zero locals, then |product|
        keys = [(p['zeros'], -abs(p['product'])) for p in d['paths']]
        assert keys == sorted(keys)
        assert len(d['paths']) == min(5, path_count(emma, i))
        closing += len(d['remainder']) > 1
    # where the listed paths nearly cancel one float cannot close the sum: it takes two
    assert closing > 0


def small_trace():
    """A graph small enough to list every path: shared inputs, a square, a dead ReLU, an exp."""
    rng = random.Random(3)
    w = [[Value(rng.uniform(-1.5, 1.5)) for _ in range(4)]]
    with record({'w': w}) as tape:
        a, b, c, d = w[0]
        x = a * b + c
        y = x * x + (a - d).relu()
        z = (y * c).exp() + x * d
        u = (b + d).relu() * z        # b + d < 0 for this seed: a dead ReLU on every route through it
        loss = z * y + u + (a * c) ** 2
        loss.backward()
    return tape.to_trace(loss)


def all_paths(trace, node):
    """Every route from the loss down to node, by brute force: [(product, zeros)]."""
    out = []
    stack = [(trace.meta['loss_id'], 1.0, 0)]
    while stack:
        x, c, z = stack.pop()
        if x == node:
            out.append((c, z))
            continue
        for e in range(trace.child_ptr[x], trace.child_ptr[x + 1]):
            lg = trace.local[e]
            stack.append((trace.child[e], lg * c, z + (lg == 0)))
    return out


def test_the_top_paths_are_the_largest_of_all_paths_and_the_remainder_is_the_others():
    trace = small_trace()
    relus = [i for i in range(len(trace)) if trace.op_name(i) == 'relu']
    assert any(trace.local[trace.child_ptr[i]] == 0 for i in relus)      # the dead one is there
    for node in range(len(trace)):
        if trace.backward_rank[node] < 0:
            continue
        every = all_paths(trace, node)
        assert path_count(trace, node) == len(every)
        for k in (1, 3, 50):
            top = top_paths(trace, node, min(k, 50))
            want = sorted(every, key=lambda p: (p[1], -abs(p[0])))[:k]
            assert [(p['zeros'], abs(p['product'])) for p in top] == [(z, abs(c)) for c, z in want]
        d = decompose(trace, node, 3)
        listed = sorted(p['product'] for p in d['paths'])
        others = list(every)
        for x in listed:        # the listed ones out: the rest is what the remainder stands for
            others.remove(next(p for p in others if p[0] == x))
        assert math.isclose(d['remainder_value'], math.fsum(c for c, _ in others), rel_tol=1e-9, abs_tol=1e-12)


def test_why_zero_names_the_dead_relus_an_unused_row_and_an_unread_probability(emma):
    # a fc1 unit whose ReLU is dead at every position: its row of mlp_fc1 gets no grad, and every
    # route from the loss crosses one of those ReLUs (local derivative 0)
    relus = [emma.names().scope_values(sid) for sid, s in enumerate(emma.scopes) if s.role == 'relu']
    dead = [j for j in range(len(relus[0])) if all(emma.data[r[j]] == 0 for r in relus)]
    assert dead
    cell = emma.param_nodes(f'layer0.mlp_fc1[{dead[0]}][3]')[0]
    assert emma.grad[cell] == 0
    wz = why_zero(emma, cell)
    assert wz['kind'] == 'zero-local' and 'dead ReLU' in wz['text']
    users = {e['user'] for e in wz['edges']}
    assert users == {r[dead[0]] for r in relus}            # exactly that unit's ReLU at each position
    assert all(emma.op_name(e['user']) == 'relu' and e['x'] <= 0 for e in wz['edges'])
    top = top_paths(emma, cell, 1)[0]
    assert top['zeros'] == 1 and top['product'] == 0
    # 'z' is not in 'emma': its embedding row is read by no position
    z = emma.param_nodes("wte[25][3]")[0]
    assert why_zero(emma, z)['kind'] == 'loss-free' and "'z'" in why_zero(emma, z)['text']
    assert top_paths(emma, z) == [] and decompose(emma, z)['remainder'] == []
    # a probability that is not the target's: nothing the loss depends on reads it
    target = emma.meta['tokens'][1]
    probs = emma.names().scope_values(next(sid for sid, s in enumerate(emma.scopes)
                                           if s.role == 'probs' and s.pos == 0))
    other = probs[(target + 1) % len(probs)]
    assert emma.grad[other] == 0 and why_zero(emma, other)['kind'] == 'loss-free'
    assert 'probs[target]' in why_zero(emma, other)['text']
    # a non-zero grad has no such answer
    assert why_zero(emma, emma.meta['loss_id']) is None


def test_the_loss_itself_is_one_path_of_no_edges(emma):
    d = decompose(emma, emma.meta['loss_id'])
    assert [(p['nodes'], p['product']) for p in d['paths']] == [([emma.meta['loss_id']], 1.0)]
    assert d['remainder'] == [] and d['exact']


def test_bad_node_or_k_is_a_one_line_error(emma):
    with pytest.raises(PathError, match=r"node 99999999 is not in this trace; node ids are 0\.\.43894"):
        top_paths(emma, 99999999)
    with pytest.raises(PathError, match=r"k must be an integer in 1\.\.50, got 0"):
        top_paths(emma, 5, 0)


def test_a_route_without_a_zero_comes_before_a_larger_one_through_a_dead_relu():
    """The search must rank by zeros first all the way up: `p` reaches the loss directly (local 1)
    and through a dead ReLU scaled by 1e6, and `a` has its own dead route scaled by 1e9. A search
    led by |product| alone (a zero counted as a local of 1) returns a dead route for k=1."""
    w = [[Value(2.0)]]
    with record({'w': w}) as tape:
        a = w[0][0]
        p = a * 0.001
        loss = p + (p * -1).relu() * 1e6 + (a * -1).relu() * 1e9
        loss.backward()
    trace = tape.to_trace(loss)
    a_id = trace.param_nodes('w[0][0]')[0]
    every = sorted(all_paths(trace, a_id), key=lambda q: (q[1], -abs(q[0])))
    assert [z for _, z in every] == [0, 1, 1]           # one live route, two through dead ReLUs
    top = top_paths(trace, a_id, 1)
    assert [(t['zeros'], t['product']) for t in top] == [(0, every[0][0])] and every[0][0] == 0.001
    assert trace.grad[a_id] == 0.001 and decompose(trace, a_id)['exact']


def test_a_node_near_the_loss_walks_only_the_nodes_above_it_with_the_same_answer(recorded_christopher):
    """The first question about a node walks only the nodes above it when they are few (issue 25: the whole
    trace walked twice took 5.7 s of the why panel's first click at 5.1 M nodes): decompose and why_zero the
    same as after the whole walk, for nodes at every depth (near the loss, mid-way, parameters, unused),
    and the whole walk neither done nor kept for the near ones."""
    from microgpt.recording import Trace

    t = recorded_christopher
    n, loss = len(t), t.meta['loss_id']
    rng = random.Random(3)
    nodes = sorted({loss, loss - 1, loss - 7, n - 1, *rng.sample(range(n - 3000, n), 15),
                    *rng.sample(range(n), 12), 0, 5, t.param_nodes('wpe[0][0]')[0]})
    whole = Trace.from_binary(t.to_binary())
    deep = whole.param_nodes('wpe[0][0]')[0]
    decompose(whole, deep)                  # position 0's: under most of the trace, the whole walk, kept
    assert 'paths_walk' in whole._cache
    near = 0
    for i in nodes:
        fresh = Trace.from_binary(t.to_binary())
        got, want = decompose(fresh, i), decompose(whole, i)
        if 'paths_walk' not in fresh._cache:
            near += 1
        assert repr(got) == repr(want), i
        assert why_zero(fresh, i) == why_zero(whole, i)
    assert near >= 15       # the nodes near the end of the trace did not walk it all


def exact_counts(trace):
    """How many routes lead from the loss down to each node, in Python ints: backward's order, a node's
    users before it, each passing its count down every edge (written here, not read from paths)."""
    counts = [0] * len(trace)
    counts[trace.meta['loss_id']] = 1
    ptr, child = trace.child_ptr, trace.child
    for p in trace.backward_order:
        for e in range(ptr[p], ptr[p + 1]):
            counts[child[e]] += counts[p]
    return counts


def test_route_counts_kept_for_the_whole_trace_are_the_exact_counts_and_small(recorded_christopher):
    """The whole walk is kept per trace as arrays, ~20 B a node (issue 25: as lists of floats and big ints it
    held 445 MB at 5.1 M nodes, the server over 1 GB at rest after one why click): every node's count equals
    the exact integer count (up to 2.9e14 here) and `count_text` writes its digits."""
    import sys

    from microgpt.recording import Trace
    from microgpt.recording.paths import count_text

    t = Trace.from_binary(recorded_christopher.to_binary())
    decompose(t, t.param_nodes('wpe[0][0]')[0])             # under most of the trace: the whole walk, kept
    zeros, logp, counts = t._cache['paths_walk']
    assert sum(sys.getsizeof(x) for x in (zeros, logp, counts)) < 21 * len(t)
    want = exact_counts(t)
    assert max(want) > 2 ** 40
    for i, w in enumerate(want):
        assert path_count(t, i) == w and count_text(path_count(t, i)) == str(w), i


def test_route_counts_past_10_to_the_15_are_written_with_two_significant_digits():
    """A chain y = y + y doubling the routes 60 times, plus 3 routes that spoil the powers of two: counts past
    2**53 are within rounding of the exact ones and written as '1.2e+18'; those below 10^15 in digits."""
    from microgpt.recording.paths import count_text

    w = [[Value(0.5)]]
    with record({'w': w}) as tape:
        x = w[0][0]
        y = x * 3.0
        for _ in range(60):
            y = y + y
        loss = y + x + x + x
        loss.backward()
    t = tape.to_trace(loss)
    want = exact_counts(t)
    x_id = t.param_nodes('w[0][0]')[0]
    assert want[x_id] == 2 ** 60 + 3
    for i, w in enumerate(want):
        got = path_count(t, i)
        assert abs(got - w) <= w * 1e-15, i
        assert count_text(got) == (str(w) if w < 10 ** 15 else f'{float(w):.2g}'), i
    assert count_text(path_count(t, x_id)) == '1.2e+18'
