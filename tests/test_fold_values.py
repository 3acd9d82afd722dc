"""A group's values (fold.summary.group_values: slices of the sorted leaving nodes and the
trace's dangling index per run of the group) against the definition, node by node: its
non-constant members read by a node outside the group, or by none; all members if none is."""

import pytest

from graphviz_export.fold import fold
from graphviz_export.select import select
from microgpt.recording.ops import OP_CODE


@pytest.mark.parametrize('query,level', [({'token': 11}, 'vector'), ({'token': 3}, 'block'),
                                         ({'layer': 0, 'head': 1}, 'vector'), ({'document': True}, 'block')])
def test_group_values_are_the_members_read_from_outside_or_by_nothing(recorded_christopher, query, level):
    tr = recorded_christopher
    folded = fold(tr, select(tr, **query), level=level, budget=5000, edge_budget=5000)
    groups = [v for v in folded.nodes if v.kind == 'group' and v.side == 'interior']
    assert len(groups) > 5
    for v in groups:
        inside = set(v.ids)
        want = [i for i in v.ids if tr.op[i] != OP_CODE['const']
                and (not tr.parents(i) or any(p not in inside for p in tr.parents(i)))] or list(v.ids)
        assert list(v.values) == want, v.name
