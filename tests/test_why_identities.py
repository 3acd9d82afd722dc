"""Identity badges (microgpt.recording.identities): each identity recomputed here from the trace's
floats on 3 documents and 2 configs, and a bent derivative makes its badge fail (and leave the view)."""

import math
from bisect import bisect_left

import pytest

from microgpt.checks.faults import inject
from microgpt.recording import record_step
from microgpt.recording.identities import ROUND_TOL, identities
from microgpt.train import fresh_model

DOCS = ('emma', 'christopher', 'a')
CONFIGS = {'default': {}, 'two-layers': {'n_layer': 2, 'n_embd': 8}}


@pytest.fixture(scope='module', params=[(d, c) for c in CONFIGS for d in DOCS], ids=lambda p: f'{p[0]}-{p[1]}')
def trace(request):
    doc, config = request.param
    return record_step(*fresh_model(42, **CONFIGS[config]), doc)


def kinds(trace, kind):
    return [b for b in identities(trace) if b.kind == kind]


def values(trace, role, **where):
    """The values of each scope with `role` (and the given pos/layer/block): {scope: [node ids]}."""
    out = {}
    for sid, s in enumerate(trace.scopes):
        if s.role == role and all(getattr(s, k) == v for k, v in where.items()):
            got = trace.names().scope_values(sid)
            if got:
                out[s] = got
    return out


def test_the_logits_grad_is_probs_minus_onehot_over_n(trace):
    tokens, n = trace.meta['tokens'], len(trace.position_losses())
    badges = kinds(trace, 'logits')
    assert [b.scope for b in badges] == [f'pos{p}/lm_head/logits' for p in range(n)]
    for p, b in enumerate(badges):
        (logits,) = values(trace, 'logits', pos=p, layer=None).values()
        (probs,) = values(trace, 'probs', pos=p, layer=None).values()
        devs = [abs(trace.grad[lg] - (trace.data[pr] - (j == tokens[p + 1])) / n)
                for j, (lg, pr) in enumerate(zip(logits, probs))]
        assert b.holds and b.deviation == max(devs) <= ROUND_TOL and b.nodes == logits


def test_a_residual_passes_its_grad_unchanged_and_a_dead_relu_passes_nothing(trace):
    res = kinds(trace, 'residual')
    assert len(res) == 2 * trace.meta['config']['n_layer'] * len(trace.positions())     # attn and mlp, per position
    for b in res:
        assert b.holds and b.deviation == 0
        for i in b.nodes:
            lo, hi = trace.child_ptr[i], trace.child_ptr[i + 1]
            assert trace.op_name(i) == 'add' and list(trace.local[lo:hi]) == [1.0, 1.0]
            assert [trace.local[e] * trace.grad[i] for e in range(lo, hi)] == [trace.grad[i]] * 2
    dead = kinds(trace, 'dead-relu')
    want = {}
    for s, ids in values(trace, 'relu').items():
        d = [i for i in ids if trace.op_name(i) == 'relu' and trace.data[trace.children(i)[0]] <= 0]
        if d:
            want[s] = d
    assert [sorted(b.nodes) for b in dead] == [sorted(d) for d in want.values()] and dead
    for b in dead:
        assert b.holds and b.deviation == 0
        assert all(trace.local[trace.child_ptr[i]] == 0 and trace.grad[trace.children(i)[0]] == 0 for i in b.nodes
                   if len(trace.parents(trace.children(i)[0])) == 1)


def test_a_cached_keys_grad_is_the_sum_over_the_later_positions(trace):
    badges = kinds(trace, 'cached-kv')
    n_pos = len(trace.positions())
    assert len(badges) == 2 * trace.meta['config']['n_layer'] * n_pos            # k and v, per layer, per position
    for b in badges:
        pos = int(b.scope.split('/')[0][3:])
        assert b.holds and [d['position'] for d in b.detail] == list(range(pos, n_pos))
        for i in b.nodes:
            by = {}
            for user, _, c in trace.uses(i):
                by.setdefault(trace.scope_of(user).pos, []).append(c)
            assert sorted(by) == list(range(pos, n_pos))                       # never an earlier position
            assert abs(trace.grad[i] - math.fsum(math.fsum(v) for v in by.values())) <= b.deviation + 1e-18
        assert b.deviation <= ROUND_TOL


def test_the_loss_at_initialisation_is_about_log_vocab(trace):
    (b,) = kinds(trace, 'loss-init')
    vocab = trace.meta['config']['vocab_size']
    assert b.holds and b.deviation == abs(trace.loss - math.log(vocab))
    assert f'−log(1/{vocab}) = {math.log(vocab):.4f}' in b.text and math.log(27) == pytest.approx(3.2958, abs=1e-4)


@pytest.mark.parametrize('fault,kind', [('exp-x2', 'logits'), ('exp-subtle', 'logits'), ('relu-flip', 'dead-relu'),
                                        ('add-drop', 'residual')])
def test_a_bent_derivative_fails_its_badge_with_its_deviation(fault, kind):
    with inject(fault):
        bent = record_step(*fresh_model(42), 'emma')
    badges = kinds(bent, kind)
    assert badges and any(not b.holds for b in badges)
    for b in badges:
        if not b.holds:
            assert b.deviation > ROUND_TOL and 'FAILS' in b.text


def test_the_view_shows_a_badge_only_where_its_identity_holds():
    """The page draws view.badges: with the correct engine the logits carry the logits badge; with
    softmax's exp doubled (exp-x2) the identity fails and the badge is gone from the same view."""
    from tests.explorer_helpers import get_json, running_server
    query = '/api/view?level=vector&token=4'

    def kinds_drawn():
        with running_server(doc='emma', seed=42) as s:
            status, v = get_json(s, query)
        assert status == 200
        return {name: {b['kind'] for b in bs} for name, bs in v['badges'].items()}, v['nodes']
    good, nodes = kinds_drawn()
    logits = {name for name, d in nodes.items() if d.get('path') == 'pos4/lm_head/logits'}
    assert logits and all('logits' in good.get(name, ()) for name in logits)
    with inject('exp-x2'):
        bent, _ = kinds_drawn()
    assert not any('logits' in k for k in bent.values())
    assert any('residual' in k for k in bent.values())      # the others still hold and still show


def test_view_badges_are_those_of_every_id_each_drawn_node_stands_for(recorded_christopher):
    """view_badges finds a node's badges per run of its ids: the same badges, in the same order,
    as a plain walk over every id of every drawn node (first id first, each badge once)."""
    from graphviz_export.view import build_view
    from graphviz_export.web.explorer.why import view_badges
    from microgpt.recording.identities import by_node, identities
    t = recorded_christopher
    badges, index = identities(t), by_node(t)
    seen_any = 0
    about = sorted(index)
    looked_up = skipped = 0     # nodes found by looking `about` up in their ids; badge nodes skipped there
    for q in ({'token': 11}, {'token': 3, 'level': 'vector'}, {'layer': 0}, {'document': True},
              {'token': 5, 'level': 'scalar', 'budget': 5000, 'edge_budget': 20000},
              {'param': 'lm_head'}, {'param': 'layer0.mlp_fc1'}):
        view = build_view(t, **q)
        for n in view.folded.nodes:     # the matrix's uses: fewer badge nodes in a group's span than runs
            span = about[bisect_left(about, n.ids[0]):bisect_left(about, n.ids[-1] + 1)]
            if n.kind != 'ref' and len(span) < len(n.runs):
                looked_up += 1
                skipped += len(set(span) - set(n.ids))
        want = {}
        for n in view.folded.nodes:
            if n.kind == 'ref':
                continue
            got = []
            for i in n.ids:
                got += [k for k in index.get(i, ()) if badges[k].holds and k not in got]
            if got:
                want[n.name] = [badges[k].kind for k in got]
        assert {name: [b['kind'] for b in bs] for name, bs in view_badges(t, view).items()} == want, q
        seen_any += len(want)
    assert seen_any > 10
    assert looked_up >= 24 and skipped > 0      # the look-up path ran, and had ids in its span to leave out
