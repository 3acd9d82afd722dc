"""A matrix's uses folded per position (issue 25), fold's scattered-id paths against the definition,
id by id: keys walked only at long or special runs (runs.not_single; none on a side of single ids:
runs.all_single), each key's segments joined in C
(bundles.joined), a use group's value runs taken from its runs, the heat-map's edges leaving from the row a
use group reads (draw.heatmap.row_anchor, read up to the second row). Bundled sums: test_fold_bundles."""

import re

from graphviz_export.fold import fold
from graphviz_export.fold.bundles import joined
from graphviz_export.select import select
from graphviz_export.view import build_view
from microgpt.recording.runs import all_single, id_runs, not_single


def test_a_matrix_views_groups_are_its_ids_by_side_and_scope(recorded_christopher):
    """At vector level every selected id is in exactly one drawn node: the matrix node holds the cells,
    each group the ids of one side and one scope (all of them); value runs are the values' runs."""
    t = recorded_christopher
    for name in t.param_names:
        sel = select(t, param=name)
        folded = fold(t, sel, 'vector', budget=5000, edge_budget=5000)
        want = {}
        for sd, ids in (('interior', sel.nodes), ('input', sel.inputs), ('output', sel.outputs)):
            for i in ids:
                if i not in sel.focus:
                    want.setdefault((sd, t.scope[i]), set()).add(i)
        drawn = [n for n in folded.nodes if n.kind != 'ref']
        (matrix,) = [n for n in drawn if n.kind == 'matrix']
        assert list(matrix.ids) == sorted(sel.focus), name
        groups = [n for n in drawn if n.kind == 'group']
        assert sorted(sorted(n.ids) for n in groups) == sorted(sorted(ids) for ids in want.values()), name
        assert all(list(n.ids) == sorted(n.ids) for n in groups), name
        assert all(n.value_runs == id_runs(sorted(n.values)) and n.runs == id_runs(sorted(n.ids)) for n in drawn), name
        assert sum(len(n.ids) for n in groups) > 1000 or name in ('wte', 'wpe'), name     # scattered: many uses


def test_runs_walked_and_segments_joined_are_the_plain_ones():
    runs = [(1, 2), (4, 9), (10, 11), (12, 13), (20, 22), (30, 31)]
    firsts = [a for a, _ in runs]
    assert list(not_single(runs, firsts, {12})) == [1, 3, 4]      # long runs, and the special single 12
    assert list(not_single(runs, firsts, set())) == [1, 4]
    assert all_single([1, 3, 5]) and all_single([7]) and all_single([]) and not all_single([1, 3, 4, 9])
    segs = [(1, 2, 0, 'interior'), (2, 5, 0, 'interior'), (7, 8, 0, 'interior'), (8, 9, 0, 'interior'), (11, 12, 0, 'interior')]
    assert joined(segs) == [(1, 5), (7, 9), (11, 12)]
    assert joined(segs[2:3] + segs[4:]) == [(7, 8), (11, 12)]


def test_each_use_groups_edge_leaves_from_the_row_it_reads(recorded_christopher):
    """An edge from the heat-map to a use group leaves from the grad row of the matrix the group reads
    when it reads one row (wte at each position: the token's row), else from the middle row."""
    t = recorded_christopher
    for name in ('wte', 'wpe', 'layer0.mlp_fc1', 'lm_head'):
        view = build_view(t, param=name)
        (m,) = [n for n in view.folded.nodes if n.kind == 'matrix']
        rows, cols = t.param_shapes[name]
        base = t.param_base[name]
        by_name = {n.name: n for n in view.folded.nodes}
        starts = {dst: int(r) for r, dst in re.findall(rf'^\t+{m.name}_g(\d+) -> (\w+) ', view.source, re.M)
                  if dst in by_name and by_name[dst].kind == 'group'}     # not the rows' invisible order
        assert starts, name
        for dst, row in starts.items():
            read = {(c - base) // cols for i in by_name[dst].ids for c in t.children(i) if base <= c < base + rows * cols}
            assert row == (read.pop() if len(read) == 1 else rows // 2), (name, dst)
        if name == 'wte':
            assert len(set(starts.values())) > 1      # the positions read different rows
        if name == 'layer0.mlp_fc1':
            assert set(starts.values()) == {rows // 2}
