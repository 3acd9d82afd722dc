"""diagnose(): the one call under `gradcheck`, record + both checks + health + replay."""

import json

import pytest

from microgpt.checks.diagnose import AUTO_SAMPLE, diagnose
from microgpt.checks.faults import active_faults
from microgpt.engine import PRIMITIVES, Value


def test_clean_engine(tiny):
    params, config, tok = tiny
    d = diagnose(params, config, tok, 'ava')
    assert d.ok and d.first is None and d.highlight() == {} and d.notes() == []
    assert len(d.params.rows) == AUTO_SAMPLE
    assert d.nodes.dloss == []             # nothing to confirm
    assert d.format().endswith('gradcheck: ok')
    one = diagnose(params, config, tok, 'ava', select='wpe[1][2]', health=False, nodes=False)
    assert [r.cell for r in one.params.rows] == ['wpe[1][2]'] and one.nodes is None and one.health is None


def test_fault_is_found_confirmed_and_removed(tiny):
    params, config, tok = tiny
    before = {a: Value.__dict__[a] for a in PRIMITIVES.values()}
    d = diagnose(params, config, tok, 'emma', fault='relu-flip', select='layer0.mlp_fc1', sample=6)
    assert {a: Value.__dict__[a] for a in PRIMITIVES.values()} == before and active_faults() == []
    assert not d.ok and d.fault.name == 'relu-flip'
    assert d.first.op == 'relu' and d.first.kind == 'local'
    assert list(d.highlight()) == d.nodes.nodes
    assert d.params.faults == ['relu-flip'] and not d.params.ok
    # replay: the relu's own grad is right, its input's is not
    first, below = d.nodes.dloss
    assert (first['node'], first['ok']) == (d.first.node, True)
    assert (below['node'], below['ok']) == (d.first.child_id, False)
    text = d.format()
    assert text.startswith('fault injected: relu-flip (relu: gradient flipped')
    assert f"{d.first.name} #{d.first.node} at {d.first.scope}" in text and '(DISAGREES)' in text
    assert d.first.name == d.trace.name(d.first.node) and d.first.name.startswith('relu[')
    assert text.endswith('gradcheck: FAIL')
    out = json.loads(json.dumps(d.to_dict()))
    assert out['ok'] is False and out['fault']['name'] == 'relu-flip'
    assert out['nodes']['first']['node'] == d.first.node and out['params']['checked'] == 6


def test_scope_limits_the_node_check(tiny):
    params, config, tok = tiny
    d = diagnose(params, config, tok, 'emma', fault='exp-x2', scope='pos2/*', param_check=False)
    assert d.params is None and not d.ok
    assert all(f.scope.startswith('pos2/') for f in d.nodes.failures)
    assert d.nodes.checked['sum'] == len(d.trace.nodes(pos=2))


def test_unknown_fault(tiny):
    params, config, tok = tiny
    with pytest.raises(ValueError, match='unknown fault'):
        diagnose(params, config, tok, 'emma', fault='nope')
