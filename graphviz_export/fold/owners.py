"""Which drawn node stands for a node id, asked for a few ids of a view.

    owner = Owners(folded)      # folded: a Folding (View.folded)
    owner.get(4711)             # 'g4709491', or None when no drawn node (a reference never) holds it

The drawn nodes' ids lie in runs of consecutive ids (FNode.runs); a lookup is a bisection over
them. A dict of every id would cost as much as the view is big: a whole document's groups
hold 5 M ids at 4 x 64, ~1.2 s to fill for the side panel's few routes (issue 25). Where two
drawn nodes held the same id, the first in drawing order would answer (a dict of the same).
"""

from bisect import bisect_right


class Owners:
    def __init__(self, folded):
        runs = sorted((a, b, k) for k, n in enumerate(folded.nodes) if n.kind != 'ref' for a, b in n.runs)
        self._names = [n.name for n in folded.nodes]
        self._starts = [a for a, _, _ in runs]
        self._runs = runs
        self._table = None
        if any(runs[j][0] < runs[j - 1][1] for j in range(1, len(runs))):     # ids in two nodes: a dict, first wins
            self._table = {}
            for n in folded.nodes:
                if n.kind != 'ref':
                    for i in n.ids:
                        self._table.setdefault(i, n.name)

    def get(self, i, default=None):
        if self._table is not None:
            return self._table.get(i, default)
        j = bisect_right(self._starts, i) - 1
        if j < 0 or i >= self._runs[j][1]:
            return default
        return self._names[self._runs[j][2]]
