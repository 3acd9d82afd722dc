"""A matrix's uses folded per piece (pieces.py) read their bundles from the matrix's use records
(recording.uses) where a key holds exactly one record's uses or outputs: no walk of the 393,000 child
edges of a 4 x 64 model's mlp_fc1 uses, nor of their outputs'.

The same bundles, bit for bit, as pieces._bundles adds up: a record's outputs' bundle was added up
from 0.0 in the same edge order while indexing (the outputs in id order, each one's edges in order),
and a key of uses takes the run records (aggregates.run_records) pieces._bundles would take, found from
the record's edge count per child scope instead of the edges themselves. Anything else (no records, a
key of parts of records, a child scope split between keys) is left to pieces._bundles.
"""

from itertools import repeat
from operator import add, sub

from microgpt.recording.uses import held, record_ids

from .bundles import Bundle, _from_record, _kids, _record_of
from .summary import record_strides


class UseBundles:
    """The use records of a matrix view's keys: `add` a parent key's bundles from them when it can."""

    def __init__(self, trace, matrix, sides, members, kid, sole):
        self.trace, self.sides, self.kid, self.sole = trace, sides, kid, sole
        self.by_first = ({}, {})        # the first use, the first output -> the record
        if matrix is None or not held(trace):
            return
        col = trace.index
        m = trace.param_names.index(matrix)
        for k in range(col('use_ptr')[m], col('use_ptr')[m + 1]):
            for side, got in zip(('use', 'out'), self.by_first):
                if col(f'{side}_n')[k] and col(f'{side}_pattern')[k] >= 0:
                    got[col(f'{side}_first')[k]] = k
        # the child keys of the uses: the input keys and the cells' key, each of one scope
        self.of_scope = {}
        for j, sid in sole.items():
            if sides[j] != 'output':
                self.of_scope[sid] = None if sid in self.of_scope else j     # None: two keys of it

    def add(self, kp, ids, bundles, leaving):
        """Add the bundles of parent key kp (its members `ids`) to `bundles` and their children to `leaving`
        from the records; False (nothing added) when they are not one record's."""
        side = self.sides[kp]
        k = self.by_first[side == 'output'].get(ids[0])
        if k is None or self.trace.index(f"{'out' if side == 'output' else 'use'}_n")[k] != len(ids):
            return False
        if list(ids) != record_ids(self.trace, 'out' if side == 'output' else 'use', k):
            return False
        got = self._outputs(k) if side == 'output' else self._uses(k, ids)
        if got is None:
            return False
        for kc, b, kids in got:
            bundles[kc, kp] = b
            leaving.update(kids)
        return True

    def _uses(self, k, ids):
        """[(child key, Bundle, its children)] of record k's uses `ids`, sorted by child key: a run record each
        (pieces._bundles' _record_of), or None when some child scope has none of exactly their edges or a use
        reads a use (an edge inside the key, or into another)."""
        trace, col = self.trace, self.trace.index
        ptr = trace.child_ptr
        sp = col('use_scope_ptr')
        scopes, counts = col('use_scopes')[sp[k]:sp[k + 1]], col('use_scope_n')[sp[k]:sp[k + 1]]
        if sum(counts) != _edge_count(ptr, ids, record_strides(trace, 'use', k)):
            return None
        run, got = (col('use_run')[k], self.sole), []
        for sid, n in zip(scopes, counts):
            kc = self.of_scope.get(sid)
            rec = None if kc is None else _record_of(trace, run, kc, n)
            if rec is None:
                return None
            got.append((kc, _from_record(trace, rec), _kids(trace, rec)))
        return sorted(got, key=lambda g: g[0])

    def _outputs(self, k):
        """[(the uses' key, Bundle, the uses)] of record k's outputs, when their edges into the interior all go
        to record k's uses and reach each of them (so the bundle's children are those uses); else None."""
        col = self.trace.index
        if not col('out_inside')[k] or col('out_kids')[k] != col('use_n')[k]:
            return None
        uses = record_ids(self.trace, 'use', k)
        kc = self.kid.of(uses[0])
        if kc < 0 or self.kid.of(uses[-1]) != kc:
            return None
        b = Bundle()
        b.count, b.local, b.contrib, b.norm = (col(f'out_{f}')[k] for f in ('edges', 'local', 'contrib', 'norm'))
        return [(kc, b, uses)]


def _edge_count(ptr, ids, strides):
    """How many edges the nodes `ids` have (child pointers `ptr`): per progression of them (strides: two sums
    of a slice of ptr each, in C), else per id."""
    if strides is None:
        return sum(map(sub, map(ptr.__getitem__, map(add, ids, repeat(1))), map(ptr.__getitem__, ids)))
    starts, stops, steps = strides
    ends = map(ptr.__getitem__, map(slice, map(add, starts, repeat(1)), map(add, stops, repeat(1)), steps))
    return sum(map(sum, ends)) - sum(map(sum, map(ptr.__getitem__, map(slice, starts, stops, steps))))
