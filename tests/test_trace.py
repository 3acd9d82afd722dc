"""Trace queries, summaries, errors and JSON."""

import json
import math
import re
from unittest import mock

import pytest

from microgpt.recording import Trace, TraceQueryError, parse_param
from microgpt.recording.codecs import TraceFormatError


def test_parse_param():
    assert parse_param('layer0.attn_wq[3][5]') == ('layer0.attn_wq', 3, 5)
    assert parse_param(' wte ') == ('wte', None, None)
    with pytest.raises(TraceQueryError, match=re.escape("cannot read parameter 'wte[3]'")):
        parse_param('wte[3]')


@pytest.mark.parametrize('call,msg', [
    (lambda t: t.nodes(pos=12), "position 12 is not in this trace; positions: 0..11"),
    (lambda t: t.nodes(layer=1), "layer 1 is not in this trace; layers: 0..0"),
    (lambda t: t.nodes(head=4), "head 4 is not in this trace; heads: 0..3"),
    (lambda t: t.nodes(block='mpl'), "block 'mpl' is not in this trace; blocks: attn, embed, lm_head, loss, mlp, params"),
    (lambda t: t.param_nodes('attn_wq'), "unknown parameter 'attn_wq'; parameters: wte, wpe, lm_head, layer0.attn_wq"),
    (lambda t: t.param_nodes('layer0.attn_wq[16][0]'), "cell [16][0] is outside layer0.attn_wq, which is 16x16"),
    (lambda t: t.ancestors([10**9]), "node 1000000000 is not in this trace; node ids are 0..103674"),
    (lambda t: t.nodes_matching('pos99/*'), "no scope matches 'pos99/*'"),
    # a misspelt field is named (not a KeyError from inside); a line query on the model's own
    # trace says it has no source lines (not a TypeError on a missing column)
    (lambda t: t.nodes(postion=3), "unknown scope field(s) ['postion']; allowed: pos, layer, block, head, role"),
    (lambda t: t.source_lines(), "this trace has no source lines (line views need a trace recorded from a script"),
    (lambda t: t.nodes_at_line(3, 'a.py'), "this trace has no source lines (line views need"),
])
def test_queries_name_what_exists(recorded_christopher, call, msg):
    with pytest.raises(TraceQueryError) as e:
        call(recorded_christopher)
    assert str(e.value).startswith(msg)


def test_neighbourhoods(recorded_christopher):
    t = recorded_christopher
    loss = t.meta['loss_id']
    anc = t.ancestors([loss], depth=1)
    assert anc == {loss: 0, **{c: 1 for c in t.children(loss)}}
    assert len(t.ancestors([loss])) == sum(1 for r in t.backward_rank if r >= 0)
    (p,) = t.param_nodes('wpe[0][0]')
    desc = t.descendants([p], depth=2)
    assert set(t.parents(p)) <= set(desc) and all(d <= 2 for d in desc.values())
    assert loss in t.descendants([p])          # the parameter reaches the loss


def test_pattern_query(recorded_christopher):
    t = recorded_christopher
    ids = t.nodes_matching('pos3/layer0/attn/head2/*')
    assert ids == t.nodes(pos=3, head=2)


def test_summaries(recorded_christopher):
    t = recorded_christopher
    s = t.summary()
    assert s['nodes'] == len(t) == sum(s['ops'].values())
    assert s['ops']['log'] == 12 and s['ops']['relu'] == 12 * 64 and s['ops']['param'] == 4192
    assert s['loss'] == pytest.approx(math.fsum(s['position_losses']) / 12, rel=1e-14)
    stats = t.scope_stats()
    relu = stats['pos11/layer0/mlp/relu']
    ids = t.nodes(pos=11, role='relu')
    assert relu['nodes'] == 64
    assert relu['data_min'] == min(t.data[i] for i in ids) == 0.0
    assert relu['grad_norm'] == pytest.approx(math.sqrt(sum(t.grad[i] ** 2 for i in ids)), rel=1e-14)
    assert relu['zero_grad'] == sum(t.grad[i] == 0 for i in ids) / 64


def test_json_round_trip_is_exact(recorded_christopher, tmp_path):
    t = recorded_christopher
    path = tmp_path / 't.json'
    assert t.to_json(path) == path          # writing a file returns its name, not 22 MB of text
    text = path.read_text()
    assert t.to_json() == text
    back = Trace.from_json(path)
    assert back == t
    assert back.contrib.tobytes() == t.contrib.tobytes()
    assert Trace.from_json(text) == t
    # against another type, == is False (not None) and defers to the other side's __eq__
    assert (t == text) is False and (t != text) is True and t == mock.ANY
    d = json.loads(text)
    node = d['nodes'][t.param_nodes('layer0.attn_wq[3][5]')[0]]
    assert node['param'] == {'name': 'layer0.attn_wq', 'row': 3, 'col': 5} and node['op'] == 'param'
    pow_node = next(n for n in d['nodes'] if n['op'] == 'pow')
    assert 'exponent' in pow_node and len(pow_node['children']) == 1


@pytest.mark.parametrize('text,msg', [
    ('{"schema": "microgpt-graph.trace", ', 'trace is not valid JSON'),
    ('[1, 2]', 'not a trace'),
    ('{"schema": "microgpt-graph.trace", "version": 2}', 'trace schema version 2 is not supported; this tool reads version 1'),
    ('{"schema": "microgpt-graph.trace", "version": 1, "meta": {}, "scopes": [], "params": [], "backward_order": []}',
     'trace: "nodes" is missing or not a list'),
    ('{"schema": "microgpt-graph.trace", "version": 1, "meta": {}, "scopes": [[null,null,null,null,null]], '
     '"params": [], "backward_order": [], "nodes": [{"id": 0, "op": "sqrt", "data": 1, "grad": 0, "scope": 0, '
     '"children": [], "local_grads": []}]}', "trace: node 0: unknown op 'sqrt'"),
    ('{"schema": "microgpt-graph.trace", "version": 1, "meta": {}, "scopes": [[null,null,null,null,null]], '
     '"params": [], "backward_order": [], "nodes": [{"id": 0, "op": "add", "data": 1, "grad": 0, "scope": 0, '
     '"children": [5], "local_grads": [1]}]}', "trace: node 0: child 5 is not a node id (0..0)"),
])
def test_bad_trace_json_gives_clear_errors(text, msg):
    with pytest.raises(TraceFormatError) as e:
        Trace.from_json(text)
    assert str(e.value).startswith(msg)


def test_node_ids_stop_before_len_and_depth_is_not_negative(recorded_christopher):
    t = recorded_christopher
    n = len(t)
    with pytest.raises(TraceQueryError, match=re.escape(f"node {n} is not in this trace; node ids are 0..{n - 1}")):
        t.ancestors([n])
    with pytest.raises(TraceQueryError, match=re.escape(f"node {n} is not in this trace")):
        t.uses(n)
    assert t.uses(n - 1) == [] and t.ancestors([n - 1], depth=0) == {n - 1: 0}   # the loss: the last node
    for walk in (t.ancestors, t.descendants):
        with pytest.raises(TraceQueryError, match=re.escape("depth must be >= 0, got -1")):
            walk([0], depth=-1)


def test_traces_differing_in_one_float_are_not_equal(recorded_christopher):
    t = Trace.from_json(recorded_christopher.to_json())
    assert t == recorded_christopher
    t.data[5] = t.data[5] + 1.0
    assert t != recorded_christopher


def test_a_line_query_on_a_script_lists_the_lines_of_that_file_only(tmp_path):
    """A script whose engine module makes nodes too (engine.dot's sums and products):
    a line of the script that made none is refused with the script's own lines."""
    from microgpt.recording.script import record_script
    from tests.test_gradcheck_script import install, line_of
    driver = install(tmp_path, 'closures.py', 'every_op.py')
    t = record_script(driver)
    made = [line_of(driver, text) for text in ('params = [', 's = a + b', 'm = s * c', 'q = m ** 3', 't = c.tanh()',
                                                'e = b.exp()', 'g = (c + 2.0).log()', 'r = a.relu()')]
    with pytest.raises(TraceQueryError) as e:
        t.nodes_at_line(1)
    assert str(e.value) == f"line 1 of every_op.py made no node in this trace; lines that did: {', '.join(map(str, made))}"
    dot_line = line_of(tmp_path / 'engine.py', 'total = total + w * x')
    assert [t.op_name(i) for i in t.nodes_at_line(dot_line, file='engine.py')] == ['mul', 'add', 'mul', 'add']
    assert [t.op_name(i) for i in t.nodes_at_line(made[1])] == ['add']


def test_a_source_no_node_points_to_is_not_a_line_that_made_one(tmp_path):
    from microgpt.recording.script import record_script
    from tests.test_gradcheck_script import install
    t = record_script(install(tmp_path, 'closures.py', 'every_op.py'))
    d = json.loads(t.to_json())
    d['sources'].append(['every_op.py', 99, [], 'never run', 'engine.py', 5, 5])     # no node points to it
    back = Trace.from_json(d)
    assert ('every_op.py', 99) not in back.source_lines() and back.source_lines() == t.source_lines()


def test_trace_equality_compares_the_probe_tables(tmp_path):
    from microgpt.recording.script import record_script
    from tests.test_gradcheck_script import install
    t = record_script(install(tmp_path, 'closures.py', 'every_op.py'))
    back = Trace.from_json(t.to_json())
    assert back == t and list(back.probes) == [next(i for i in range(len(t)) if t.op_name(i) == 'tanh')]
    back.probes.clear()                 # the re-run measurements of tanh dropped
    assert back != t
    # one measured value one ulp off: not the same trace; a NaN (a broken op's probe) equals a NaN
    [(k, [probe])] = t.probes.items()
    other = Trace.from_json(t.to_json())
    other.probes[k] = [[*probe[:-1], math.nextafter(probe[-1], math.inf)]]
    assert other != t
    a, b = Trace.from_json(t.to_json()), Trace.from_json(t.to_json())
    a.probes[k] = [[*probe[:-1], math.nan]]
    b.probes[k] = [[*probe[:-1], math.nan]]
    assert a == b and a != t


def test_uses_are_in_backward_order_on_a_trace_just_loaded():
    """x is used by y = x * 2 and by z = y + x; backward adds z's contribution first."""
    from microgpt.engine import Value
    from microgpt.recording.tape import record
    x = Value(1.5)
    with record() as tape:
        y = x * 2.0
        z = y + x
        z.backward()
    fresh = Trace.from_json(tape.to_trace(z).to_json())         # no index built yet
    i = next(k for k in range(len(fresh)) if fresh.op_name(k) == 'leaf')
    yi, zi = (next(k for k in range(len(fresh)) if fresh.op_name(k) == op) for op in ('mul', 'add'))
    assert fresh.children(zi) == [yi, i] and yi < zi
    assert fresh.uses(i) == [(zi, 1.0, 1.0), (yi, 2.0, 2.0)]


def test_a_node_is_called_by_its_one_name(recorded_christopher):
    """Trace.name: the loss, a parameter cell, a value of a role, an op toward one; one namer per trace."""
    t = recorded_christopher
    assert t.names() is t.names()
    assert t.name(t.meta['loss_id']) == 'loss'
    base = t.param_base['layer0.attn_wq']
    assert t.name(base + 3 * 16 + 5) == 'layer0.attn_wq[3][5]'
    # q's values at position 3 (used outside their scope), in id order: the third is q[2]
    qs = [i for i in t.nodes(pos=3, layer=0, role='q') if any(t.scope[p] != t.scope[i] for p in t.parents(i))]
    assert len(qs) == 16 and t.name(qs[2]) == 'q[2]@pos3'
    [partial] = [c for c in t.children(qs[2]) if t.op_name(c) == 'add']    # the dot product's last but one sum
    assert t.name(partial) == '+ \u2192 q[2]@pos3'


def test_a_nodes_contributions_are_its_edges_products_without_the_whole_column(recorded_christopher, monkeypatch):
    """contributions(i) (the side panel's uses) reads node i's own edges (issue 25: the whole column took ~2 s of
    a 5 M-node step's first click): each local x grad(i), bit for bit the column's, the column never built."""
    t = recorded_christopher
    column = Trace.from_binary(t.to_binary()).contrib
    fresh = Trace.from_binary(t.to_binary())
    monkeypatch.setattr(Trace, 'contrib', property(lambda self: pytest.fail('the whole contributions column built')))
    ptr = t.child_ptr
    for i in range(0, len(t), 97):
        want = [column[e] for e in range(ptr[i], ptr[i + 1])]
        assert [x.hex() for x in fresh.contributions(i)] == [x.hex() for x in want]
        assert [x.hex() for x in want] == [(t.local[e] * t.grad[i]).hex() for e in range(ptr[i], ptr[i + 1])]
