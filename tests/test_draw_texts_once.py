"""Each node's texts are made once per view (issue 25): measuring the labels to choose the
direction (draw.digraph._rankdir) and drawing them share one making of each node's fields,
tooltip and title; only the record's layout differs by direction. Counted, not timed."""

from collections import Counter

import pytest

import graphviz_export.draw.labels as labels
from graphviz_export import build_view
from microgpt.checkpoint import load_model
from microgpt.recording import record_step


@pytest.fixture(scope='module')
def christopher():
    params, config, tok = load_model(None, 42)
    return record_step(params, config, tok, 'christopher')


def counted(monkeypatch, name):
    made = Counter()
    real = getattr(labels, name)

    def counting(*args, **kwargs):
        node = args[1] if name != 'group_title' else args[0]
        if name != 'group_title' or len(args) > 2 or 'trace' in kwargs:     # a view's own node, not a ref's name
            made[node.name] += 1
        return real(*args, **kwargs)
    monkeypatch.setattr(labels, name, counting)
    return made


@pytest.mark.parametrize('view', [dict(token=11), dict(token=11, aspect='4:3'), dict(level='scalar', token=1,
                                                                                      layer=0, head=1)])
def test_every_node_text_is_made_once(christopher, monkeypatch, view):
    titles, groups = counted(monkeypatch, 'group_title'), counted(monkeypatch, 'group_fields')
    scalars, tips = counted(monkeypatch, 'scalar_fields'), counted(monkeypatch, 'scalar_tooltip')
    v = build_view(christopher, **view)
    drawn = {n.name for n in v.folded.nodes if n.kind in ('scalar', 'group')}
    assert set(groups) | set(scalars) == drawn and drawn
    assert set(groups.values()) | set(scalars.values()) | set(tips.values()) == {1}
    assert set(titles.values()) == {1}
