"""Health per matrix in the Adam panel (graphviz_export.steps.update_health): makemore part 3's
update:data ratio, the spreads and the flags, recomputed here with the statistics module and by
reading the ReLUs and softmaxes of the trace."""

import math
import statistics

import pytest

from graphviz_export.steps.update import adam_update
from graphviz_export.steps.update_health import SATURATED, health_html, update_health
from microgpt.recording import record_step
from microgpt.train import fresh_model


@pytest.fixture(scope='module')
def emma():
    trace = record_step(*fresh_model(42), 'emma')
    rows = adam_update(trace, [i for n in trace.param_names for i in trace.param_nodes(n)])['rows']
    return trace, rows, update_health(trace, rows)


def test_the_ratio_and_the_spreads_of_each_matrix(emma):
    trace, rows, health = emma
    assert [m['name'] for m in health] == list(trace.param_names)
    for m in health:
        ids = set(trace.param_nodes(m['name']))
        rs = [r for r in rows if r['id'] in ids]
        assert m['cells'] == len(ids) == len(rs)
        sd, sg, su = (statistics.stdev([r[k] for r in rs]) for k in ('data', 'grad', 'delta'))
        assert (m['std_data'], m['std_grad'], m['std_delta']) == pytest.approx((sd, sg, su), rel=1e-12)
        assert m['ratio'] == pytest.approx(math.log10(su / sd), rel=1e-12)
        assert m['zero_grad'] == sum(trace.grad[i] == 0 for i in ids) / len(ids)
    # Adam's first step moves each cell with a grad by about lr: wte's rows of letters not in 'emma'
    # do not move, so its ratio sits below the others'
    by = {m['name']: m for m in health}
    assert by['wte']['zero_grad'] == pytest.approx(1 - 4 / 27)       # BOS, e, m, a are read
    assert by['wte']['ratio'] < by['layer0.attn_wq']['ratio']


def test_dead_units_and_saturation_are_flagged(emma):
    trace, _, health = emma
    by = {m['name']: m for m in health}
    relus = [trace.names().scope_values(s) for s, sc in enumerate(trace.scopes) if sc.role == 'relu']
    dead = [j for j in range(len(relus[0])) if all(trace.data[r[j]] == 0 for r in relus)]
    assert dead
    shown = ', '.join(map(str, dead[:12])) + (' …' if len(dead) > 12 else '')
    assert f'{len(dead)} of {len(relus[0])} ReLU units dead at every position (rows {shown})' in by['layer0.mlp_fc1']['flags'][0]
    for j in dead:           # a dead unit's row of fc1 gets no grad
        cols = trace.param_shapes['layer0.mlp_fc1'][1]
        assert all(trace.grad[trace.param_nodes(f'layer0.mlp_fc1[{j}][{c}]')[0]] == 0 for c in range(cols))
    # a fresh model is nowhere near saturated: no position's probability reaches SATURATED
    probs = [trace.data[i] for s, sc in enumerate(trace.scopes) if sc.role == 'probs'
             for i in trace.names().scope_values(s)]
    assert max(probs) < SATURATED and by['lm_head']['flags'] == []
    html = health_html(health)
    assert html.count('<tr data-matrix=') == len(health) and f'{by["wte"]["ratio"]:.2f}' in html


def test_a_saturated_softmax_is_flagged_at_the_positions_it_saturates():
    """lm_head scaled 60x: the next-character softmax puts >= SATURATED on one character at some
    positions (found here), and the lm_head row of the table says exactly those."""
    params, config, tok = fresh_model(42)
    for row in params['lm_head']:
        for w in row:
            w.data *= 60
    trace = record_step(params, config, tok, 'emma')
    sure = sorted(sc.pos for s, sc in enumerate(trace.scopes) if sc.role == 'probs' and sc.block == 'loss'
                  and max(trace.data[i] for i in trace.names().scope_values(s)) >= SATURATED)
    assert sure and len(sure) < len(trace.positions())
    rows = adam_update(trace, trace.param_nodes('lm_head'))['rows']
    (m,) = update_health(trace, rows)
    assert m['name'] == 'lm_head' and m['flags'] == [
        f"saturated at positions {', '.join(map(str, sure))}: next-character probability >= {SATURATED}"]


def test_a_saturated_attention_head_is_flagged_on_its_query_and_key_matrices():
    """attn_wq and attn_wk scaled 12x: the heads whose softmax puts >= SATURATED on one position at
    every position reading two or more (found here) are flagged on both matrices, and only those."""
    params, config, tok = fresh_model(42)
    for name in ('layer0.attn_wq', 'layer0.attn_wk'):
        for row in params[name]:
            for w in row:
                w.data *= 12
    trace = record_step(params, config, tok, 'emma')
    heads = {}
    for s, sc in enumerate(trace.scopes):
        if sc.role == 'attn_weights' and sc.head is not None:
            ws = [trace.data[i] for i in trace.names().scope_values(s)]
            if len(ws) >= 2:
                heads.setdefault(sc.head, []).append(max(ws) >= SATURATED)
    saturated = sorted(h for h, rows in heads.items() if all(rows))
    assert saturated and len(saturated) < len(heads)
    ids = [i for n in ('layer0.attn_wq', 'layer0.attn_wk') for i in trace.param_nodes(n)]
    for m in update_health(trace, adam_update(trace, ids)['rows']):
        assert m['flags'] == [f'head {h} saturated: softmax weight >= {SATURATED} on one position at every position'
                              for h in saturated], m['name']


def test_grads_near_the_largest_double_give_an_infinite_spread_and_nan_gives_no_ratio(emma):
    """wte's grads ±1e308: the squares of the spread pass the largest double, so std(grad) is inf
    (a float's ** raised OverflowError there and the Adam panel answered 500); a nan Δw makes
    the ratio nan (unknown), not −∞ (nothing moves)."""
    trace, rows, _ = emma
    wte = set(trace.param_nodes('wte'))
    huge = [dict(r, grad=(1e308 if k % 2 else -1e308)) if r['id'] in wte else r for k, r in enumerate(rows)]
    by = {m['name']: m for m in update_health(trace, huge)}
    assert by['wte']['std_grad'] == math.inf
    assert by['layer0.attn_wq']['std_grad'] == pytest.approx(
        statistics.stdev([r['grad'] for r in rows if r['id'] in set(trace.param_nodes('layer0.attn_wq'))]), rel=1e-12)
    first = next(k for k, r in enumerate(rows) if r['id'] in wte)
    broken = [dict(r, delta=math.nan) if k == first else r for k, r in enumerate(rows)]
    by = {m['name']: m for m in update_health(trace, broken)}
    assert math.isnan(by['wte']['std_delta']) and math.isnan(by['wte']['ratio'])
    assert by['layer0.attn_wq']['ratio'] > -math.inf
    assert '<td data-k="ratio" data-v="nan" title="nan">nan</td>' in health_html([by['wte']])
