"""fold.owners: the drawn node holding a node id, by bisection over the drawn nodes' runs (issue 25: a dict of
every id of a whole document's view took ~1.2 s for the side panel's few routes), against a dict of every id."""

import pytest

from graphviz_export.fold.owners import Owners
from graphviz_export.view import build_view

VIEWS = [{'document': True, 'level': 'block'}, {'token': 11, 'level': 'vector'}, {'token': 3, 'level': 'scalar',
                                                                                  'budget': 3000, 'edge_budget': 6000},
         {'param': 'layer0.mlp_fc1'}, {'param': 'wte'}, {'param': 'layer0.attn_wq[3][5]'}, {'node': 'loss', 'depth': 3},
         {'layer': 0, 'head': 1}, {'token': 2, 'expand': ('attn/head0/attn_weights',)}]


@pytest.mark.parametrize('kw', VIEWS, ids=[','.join(map(str, kw.values())) for kw in VIEWS])
def test_the_owner_of_every_id_is_the_drawn_node_holding_it(kw, recorded_christopher):
    folded = build_view(recorded_christopher, **kw).folded
    first, last = {}, {}
    for n in folded.nodes:
        if n.kind != 'ref':
            for i in n.ids:
                first.setdefault(i, n.name)
                last[i] = n.name
    assert first == last            # no id in two drawn nodes: first or last in drawing order is the same
    owner = Owners(folded)
    assert owner._table is None     # found by bisection, not a dict of every id
    for i in range(len(recorded_christopher)):
        assert owner.get(i) == first.get(i), i
    assert owner.get(-1) is None and owner.get(len(recorded_christopher)) is None


def test_ids_held_twice_are_answered_by_the_first_node_in_drawing_order():
    class N:
        def __init__(self, name, ids, kind='group'):
            self.name, self.ids, self.kind = name, ids, kind
            self.runs = [(ids[0], ids[-1] + 1)]

    class F:
        nodes = [N('r', [1, 2, 3], 'ref'), N('a', [5, 6, 7]), N('b', [6, 7, 8]), N('c', [10])]

    owner = Owners(F())
    assert [owner.get(i) for i in range(12)] == [None] * 5 + ['a', 'a', 'a', 'b', None, 'c', None]
