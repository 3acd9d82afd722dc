"""Gradient health: figures per scope recomputed independently, and each flag on a
case built to raise it (dead ReLUs, vanishing, exploding, large values, NaN/inf)."""

import json
import math

import pytest

from microgpt.checks.health import DEAD_RELU_SHARE, VANISH_NORM, format_health_table, health_report
from microgpt.recording.step import record_step
from microgpt.recording.trace import Trace
from tests.tiny_model import tiny_model

DOC = 'emma'


def record(params, config, tok, doc=DOC):
    return record_step(params, config, tok, doc)


@pytest.fixture(scope='module')
def healthy():
    params, config, tok = tiny_model()
    trace = record(params, config, tok)
    return params, config, tok, trace


def test_healthy_model_has_no_flags(recorded_christopher):
    report = health_report(recorded_christopher)
    assert report.ok and report.flags == [], report.flags
    assert report.loss == recorded_christopher.loss
    relu = report.group('layer0/mlp/relu')
    assert (relu.relu_units, relu.dead_units) == (64, 0)


def test_param_figures_match_the_params(healthy):
    params, config, tok, trace = healthy
    report = health_report(trace)
    for name, matrix in params.items():
        g = report.group(f'params/{name}')
        grads = [p.grad for row in matrix for p in row]
        datas = [abs(p.data) for row in matrix for p in row]
        assert g.nodes == len(grads)
        assert g.grad_norm == pytest.approx(math.sqrt(sum(x * x for x in grads)), rel=1e-12)
        assert g.zero_grad == sum(1 for x in grads if x == 0) / len(grads)
        assert g.max_abs_grad == max(abs(x) for x in grads)
        assert g.max_abs_data == max(datas)
        assert trace.param_cell(g.max_data_node)[0] == name
        assert (g.nan, g.inf, g.reached) == (0, 0, True)
    # wte: only the rows of the tokens in the document get a gradient
    used = set(tok.encode(DOC)[:-1])
    assert report.group('params/wte').zero_grad == 1 - len(used) / config.vocab_size


def test_groups_merge_positions_unless_asked(healthy):
    *_, trace = healthy
    merged = health_report(trace)
    split = health_report(trace, by_position=True)
    assert not any(g.scope.startswith('pos') for g in merged.groups)
    fc1 = [g for g in split.groups if g.scope.endswith('layer0/mlp/fc1')]
    assert [g.scope for g in fc1] == [f'pos{p}/layer0/mlp/fc1' for p in range(5)]
    assert sum(g.nodes for g in fc1) == merged.group('layer0/mlp/fc1').nodes
    assert math.sqrt(sum(g.grad_norm ** 2 for g in fc1)) == pytest.approx(merged.group('layer0/mlp/fc1').grad_norm)
    # constants are left out
    consts = sum(1 for i in range(len(trace)) if trace.op_name(i) == 'const')
    assert sum(g.nodes for g in merged.groups) == len(trace) - consts


def dead_units_independently(trace, n_units, positions):
    alive = [False] * n_units
    for pos in range(positions):
        relus = trace.nodes(pos=pos, layer=0, role='relu')
        assert len(relus) == n_units
        for j, i in enumerate(relus):
            alive[j] = alive[j] or trace.data[i] > 0
    return sum(1 for a in alive if not a)


@pytest.mark.parametrize('rows_killed,flagged', [(32, True), (16, True), (8, False), (0, False)])
def test_dead_relus(rows_killed, flagged):
    """fc1 rows set to 0 make their ReLU units output 0 at every position."""
    params, config, tok = tiny_model()
    for row in params['layer0.mlp_fc1'][:rows_killed]:
        for p in row:
            p.data = 0.0
    trace = record(params, config, tok)
    report = health_report(trace)
    relu = report.group('layer0/mlp/relu')
    dead = dead_units_independently(trace, 32, 5)
    assert relu.dead_units == dead and relu.relu_units == 32
    assert dead >= rows_killed
    kinds = {(f.scope, f.kind) for f in report.flagged}
    assert (('layer0/mlp/relu', 'dead_relu') in kinds) == flagged == (dead >= DEAD_RELU_SHARE * 32)
    if rows_killed == 32:
        assert "layer0/mlp/relu: 32 of 32 ReLU units dead (output 0 at every position)" in report.flags
        flag = next(f for f in report.flagged if f.kind == 'dead_relu')
        assert sorted(flag.nodes) == trace.nodes(layer=0, role='relu')
        # nothing flows back through them: fc1's and fc2's weights get no gradient
        assert ('params/layer0.mlp_fc1', 'vanishing') in kinds and ('params/layer0.mlp_fc2', 'vanishing') in kinds
        assert 'params/layer0.mlp_fc1: grad norm 0 < 1e-07 (vanishing)' in report.flags
        assert report.group('layer0/mlp/fc1').zero_grad == 1.0


def test_large_values(healthy):
    params, config, tok = tiny_model()
    for row in params['wte']:
        for p in row:
            p.data *= 1e6
    report = health_report(record(params, config, tok))
    large = {f.scope for f in report.flagged if f.kind == 'large_data'}
    assert large == {'params/wte', 'embed/embed', 'embed/rmsnorm'}   # rmsnorm squares them first
    g = report.group('embed/embed')
    assert any(f"embed/embed: |data| {g.max_abs_data:.3g} at node {g.max_data_node} > 10000 (large values)" == s
               for s in report.flags)


def test_exploding_threshold(healthy):
    *_, trace = healthy
    report = health_report(trace, explode_grad=1.0)
    exploding = {f.scope for f in report.flagged if f.kind == 'exploding'}
    assert exploding == {g.scope for g in report.groups if g.max_abs_grad > 1.0}
    assert 'loss/loss' not in exploding      # its largest grad is exactly 1, the seed
    assert exploding and all(f.nodes and abs(trace.grad[f.nodes[0]]) > 1 for f in report.flagged)


def test_nan_and_inf(healthy):
    *_, trace = healthy
    t = Trace.from_json(trace.to_json())
    fc2 = [i for i in t.nodes(pos=1, layer=0, role='fc2') if t.op_name(i) != 'const']
    t.grad[fc2[0]] = math.nan
    t.data[fc2[1]] = math.inf
    report = health_report(t)
    g = report.group('layer0/mlp/fc2')
    assert (g.nan, g.inf) == (1, 1)
    assert 'layer0/mlp/fc2: 1 node with NaN' in report.flags
    assert 'layer0/mlp/fc2: 1 node with inf' in report.flags
    assert math.isfinite(g.grad_norm)


def test_to_dict_and_table(healthy):
    params, config, tok = tiny_model()
    for row in params['layer0.mlp_fc1']:
        for p in row:
            p.data = 0.0
    report = health_report(record(params, config, tok))
    d = json.loads(json.dumps(report.to_dict()))
    assert d['ok'] is False and d['thresholds']['vanish_norm'] == VANISH_NORM
    assert [f['message'] for f in d['flags']] == report.flags
    text = format_health_table(report, only_flagged=True)
    assert text.splitlines()[0] == f"gradient health: {len(report.flags)} flag(s); loss {report.loss:.6f}"
    assert '  ! layer0/mlp/relu: 32 of 32 ReLU units dead (output 0 at every position)' in text
    assert 'params/wte' not in text
    assert 'params/wte' in format_health_table(report)
