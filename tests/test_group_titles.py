"""A summary's title says what its numbers are.

A role's formula ('logits = lm_head·x', 'q = Wq·x') names the role's values (the 27 logits);
a group whose figures are the ops computing toward them (a parameter's uses: the 432 products
lm_head[i][j]·x[j]; a boundary's partial sums) says 'products …' or 'partial sums …', and a
group holding both says both. Which members are a role's values is worked out here from the
trace's edges (a member used outside its scope, or by nothing), not by the code under test.
"""

import re

import pytest
from click.testing import CliRunner

import cli
from graphviz_export import build_view
from graphviz_export.draw.labels import ROLE_TEXT, group_title
from tests.svg_read import read_svg

VIEWS = [dict(token=3), dict(token=3, level='block'), dict(token=0), dict(layer=0, token=3),
         dict(layer=0, head=1, token=3), dict(param='lm_head'), dict(param='layer0.attn_wq'),
         dict(param='layer0.mlp_fc2', level='block'), dict(param='layer0.attn_wo'), dict(param='wte'),
         dict(param='layer0.attn_wq[3][5]'), dict(param='lm_head[3][5]', depth=2), dict(node='loss', depth=3, level='vector')]
FORMULAS = sorted({text for text in ROLE_TEXT.values() if '=' in text or '\u00b7' in text}, key=len, reverse=True)


def role_value(t, i):
    """Node i is one of its role's values: a non-constant member of its scope used outside the
    scope or by nothing (what the model code assigns: q[2], not a product or partial sum of it)."""
    parents = t.parents(i)
    return t.op_name(i) != 'const' and (not parents or any(t.scope[p] != t.scope[i] for p in parents))


def titled_groups(t):
    for q in VIEWS:
        view = build_view(t, **q)
        for n in view.folded.nodes:
            if n.kind == 'group' and n.scope.role is not None and n.values:
                yield q, n, group_title(n, view.folded.level, t)


@pytest.fixture(scope='module')
def groups(recorded_christopher):
    return list(titled_groups(recorded_christopher))


def test_a_role_formula_titles_only_the_roles_values(recorded_christopher, groups):
    t = recorded_christopher
    formula_titled = 0
    for q, n, title in groups:
        if any(f in title for f in FORMULAS) and not title.startswith('\u03a3 loss_t'):
            formula_titled += 1
            assert all(role_value(t, i) for i in n.values), (q, title)
    assert formula_titled > 20


def test_products_and_partial_sums_are_called_so(recorded_christopher, groups):
    t = recorded_christopher
    seen = set()
    for q, n, title in groups:
        inner = [i for i in n.values if not role_value(t, i)]
        ops = {t.op_name(i) for i in inner}
        if not inner or len({t.scopes[t.scope[i]].role for i in n.values}) != 1:
            continue
        if title.startswith('\u03a3 loss_t'):    # the mean's running sum says it is one
            assert ops == {'add'} and 'running sum' in title
            continue
        m = re.fullmatch(r'(products?|partial sums?|log)(?: (\S+))? \u2192 (\S+)', title)
        if len(inner) == len(n.values):         # only ops toward the values: which ops, toward what
            assert m, (q, title)
            assert ops == {{'product': 'mul', 'partial sum': 'add'}.get(m[1].rstrip('s'), m[1])}, (q, title)
            # toward the vector the ops' own names point at ('* \u2192 attn_logits[h1][t0]@pos3')
            toward = {re.sub(r'\[[^\]]*\]$', '', t.name(i).split(' \u2192 ')[1].split('@')[0]) for i in inner}
            assert toward == {m[3]} or all(v.startswith(m[3] + '[') for v in toward), (q, title, toward)
            seen.add(m[1].rstrip('s'))
        else:                                   # both: the values and how many ops toward them
            m = re.fullmatch(r'(\S+) and (\d+) (products?|partial sums?)', title)
            assert m and int(m[2]) == len(inner), (q, title)
            seen.add('both')
    assert seen == {'product', 'partial sum', 'log', 'both'}


def test_render_param_lm_head_calls_its_uses_products(tmp_path, monkeypatch):
    """The issue's picture: each position's use node holds the 432 products lm_head[i][j]·x[j]
    (its figures are theirs), and says so; the 27 logits are not what it shows."""
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(cli.main, ['render', '--param', 'lm_head', '-o', 'lm.svg'])
    assert r.exit_code == 0, r.output
    from microgpt.recording import record_step
    from microgpt.train import fresh_model
    params, config, tok = fresh_model(42)
    t = record_step(params, config, tok, 'emma')
    svg = read_svg((tmp_path / 'lm.svg').read_bytes())
    uses = [item for item in svg['nodes'].values() if item['texts'] and item['texts'][0].startswith('products ')]
    assert [u['texts'][0] for u in uses] == ['products lm_head[i][j]\u00b7x[j] \u2192 logits'] * 5
    assert not [item for item in svg['nodes'].values() if item['texts'][:1] == ['logits = lm_head\u00b7x']]
    cells = set(t.param_nodes('lm_head'))
    by_pos = {}
    for i in range(len(t)):
        if t.op_name(i) == 'mul' and cells & set(t.children(i)):
            by_pos.setdefault(t.scopes[t.scope[i]].pos, []).append(t.data[i])
    assert sorted(len(v) for v in by_pos.values()) == [432] * 5
    want = sorted(f'data {x:.4g} \u2026 {y:.4g}' for x, y in ((min(v), max(v)) for v in by_pos.values()))
    assert sorted(u['texts'][2] for u in uses) == want
    assert all(u['texts'][1] == '432 values \u00b7 432 ops' for u in uses)
