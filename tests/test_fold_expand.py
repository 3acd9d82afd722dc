"""fold.expand: the ids a view's expand patterns open, against the definition written here (every selected id
whose scope path matches a pattern as a scope or a part of one), and read once per selection (issue 25: a token
view's 400,000 ids were read per id in Python three times a view, and once per scope the too-big fallback tried)."""

from fnmatch import fnmatchcase

import pytest

from graphviz_export.fold import expanded_ids
from graphviz_export.select import select
from microgpt.recording.cells import TraceQueryError

CASES = [({'token': 11}, ['pos11/layer0/attn/rmsnorm']), ({'token': 11}, ['attn/head2', 'mlp']),
         ({'token': 2}, ['attn/head0/attn_weights']), ({'layer': 0}, ['head1/*']), ({'document': True}, ['loss']),
         ({'param': 'layer0.mlp_fc1'}, ['mlp']), ({'node': 'loss', 'depth': 3}, ['*'])]


def _want(trace, sel, patterns):
    def hit(path):
        return any(fnmatchcase(path, f) for p in patterns for f in (p, p + '/*', '*/' + p, '*/' + p + '/*'))
    return {i for i in sel.nodes + sel.inputs + sel.outputs if hit(trace.scope_path(i))}


@pytest.mark.parametrize('query,patterns', CASES, ids=[f'{q}-{p}' for q, p in CASES])
def test_the_expanded_ids_are_those_of_the_definition(query, patterns, recorded_christopher, monkeypatch):
    t = recorded_christopher
    sel = select(t, **query)
    want = _want(t, sel, patterns)
    assert want
    assert expanded_ids(t, sel, patterns) == want
    assert expanded_ids(t, sel, patterns[:1]) == _want(t, sel, patterns[:1])
    # the scope of each selected id read once per selection: asked again, the scope column is not read
    monkeypatch.setattr(type(t), 'scope', property(lambda self: pytest.fail('scopes read again')), raising=False)
    assert expanded_ids(t, sel, patterns) == want


def test_a_pattern_matching_no_scope_is_one_line_naming_the_views_scopes(recorded_christopher):
    sel = select(recorded_christopher, token=3)
    with pytest.raises(TraceQueryError, match=r"expand pattern 'head9' matches no scope in this view; its scopes: "
                                              r"pos3/embed/embed, "):
        expanded_ids(recorded_christopher, sel, ['head9'])
    assert expanded_ids(recorded_christopher, sel, []) == set()


@pytest.mark.parametrize('query,pattern', [({'token': 11}, 'pos11/layer0/attn'), ({'token': 11}, 'mlp'),
                                           ({'document': True}, 'attn'), ({'layer': 0}, 'head2')])
def test_the_scopes_a_pattern_opens_are_in_the_order_the_model_made_them(query, pattern, recorded_christopher):
    """expanded_scopes (the too-big fallback's scopes, opened one by one): each scope path of the pattern's ids
    once, in the order of their ids, as the fallback read them per id (fallback._scopes before issue 25)."""
    from graphviz_export.fold.expand import expanded_scopes

    t = recorded_christopher
    sel = select(t, **query)
    want = list(dict.fromkeys(t.scope_path(i) for i in sorted(_want(t, sel, [pattern]))))
    assert len(want) > 1
    assert expanded_scopes(t, sel, pattern) == want
