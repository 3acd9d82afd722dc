"""A group's values (fold.summary.group_values: slices of the sorted leaving nodes and the
trace's dangling index per run of the group) against the definition, node by node: its
non-constant members read by a node outside the group, or by none; all members if none is."""

import pytest

from graphviz_export.fold import fold
from graphviz_export.select import select
from microgpt.recording.ops import OP_CODE


@pytest.mark.parametrize('query,level', [({'token': 11}, 'vector'), ({'token': 3}, 'block'),
                                         ({'layer': 0, 'head': 1}, 'vector'), ({'document': True}, 'block'),
                                         ({'param': 'layer0.mlp_fc1'}, 'vector')])   # scattered groups: per id
def test_group_values_are_the_members_read_from_outside_or_by_nothing(recorded_christopher, query, level):
    tr = recorded_christopher
    folded = fold(tr, select(tr, **query), level=level, budget=5000, edge_budget=5000)
    groups = [v for v in folded.nodes if v.kind == 'group' and v.side == 'interior']
    assert len(groups) >= 3
    for v in groups:
        inside = set(v.ids)
        want = [i for i in v.ids if tr.op[i] != OP_CODE['const']
                and (not tr.parents(i) or any(p not in inside for p in tr.parents(i)))] or list(v.ids)
        assert list(v.values) == want, v.name


@pytest.mark.parametrize('query', [{'token': 11}, {'token': 0}, {'layer': 0, 'head': 1}, {'param': 'layer0.mlp_fc1'},
                                   {'param': 'wte'}, {'document': True}, {'node': 'loss', 'depth': 3}])
def test_a_selections_boundary_is_every_outside_child_and_parent(recorded_christopher, query):
    """select._make keeps, per run, only the ends outside it, then cuts those by the other runs
    (by bisection when the runs are few, by a set difference when they are scattered)."""
    tr = recorded_christopher
    sel = select(tr, **query)
    inside = set(sel.nodes)
    kids = {c for i in sel.nodes for c in tr.children(i)} - inside
    parents = {p for i in sel.nodes for p in tr.parents(i)} - inside - kids
    assert sel.inputs == tuple(sorted(kids)) and sel.outputs == tuple(sorted(parents))
    assert sel.positions == tuple(sorted({tr.scope_of(i).pos for i in sel.nodes} - {None}))
