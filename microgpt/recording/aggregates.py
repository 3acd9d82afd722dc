"""Per-run edge records of a trace, computed once from its columns and indexes
(recording.indexes) and stored with them in the binary file, so that folding a view
(graphviz_export.fold.bundles) costs a step per run of one scope, not one per edge.

Per run of one scope (recording.indexes.run_start) and child scope: the edges from the
run's nodes into that scope, summed as fold bundles them
    rec_ptr (R + 1), rec_scope, rec_count
    rec_local, rec_contrib  the local derivatives and contributions added up from 0.0 in
                            edge order, as fold adds them (the same sums, bit for bit)
    rec_norm                sqrt(fsum(s * s)) over the children, s the sum of what each
                            received along the run's edges (0.0 for edges inside the scope)
    rec_kid_ptr, rec_kids   the children read (sorted), for edges that leave the scope
    rec_kid_sum             what each of them received along the run's edges (from 0.0, in edge order)
"""

import math
from array import array
from bisect import bisect_left
from functools import reduce
from itertools import compress, repeat
from operator import add, eq, mul

from .sums import fsum

RECORD_COLUMNS = (('rec_ptr', 'q'), ('rec_scope', 'I'), ('rec_count', 'q'), ('rec_local', 'd'),
                  ('rec_contrib', 'd'), ('rec_norm', 'd'), ('rec_kid_ptr', 'q'), ('rec_kids', 'I'),
                  ('rec_kid_sum', 'd'))

def _empty(columns):
    return {name: array(code) for name, code in columns}


def run_records(trace):
    """The RECORD_COLUMNS of `trace`: per run, per child scope, its edges summed."""
    out = _empty(RECORD_COLUMNS)
    starts, sids = trace.scope_runs()
    child, local, ptr = trace.child, trace.local, trace.child_ptr
    contrib = trace.contrib
    pptr, parent, pedge = trace.parents_index()
    cscope = array('I', map(trace.scope.__getitem__, child))      # each edge's child scope, in one pass
    out['rec_ptr'].append(0)
    out['rec_kid_ptr'].append(0)
    for r, own in enumerate(sids):
        a, b = starts[r], starts[r + 1]
        e0, e1 = ptr[a], ptr[b]
        if e0 == e1:
            out['rec_ptr'].append(len(out['rec_scope']))
            continue
        scopes = cscope[e0:e1]
        kinds = [scopes[0]] if min(scopes) == max(scopes) else sorted(set(scopes))
        for C in kinds:
            if len(kinds) == 1:
                sel_c, sel_l, sel_g = child[e0:e1], local[e0:e1], contrib[e0:e1]
            else:
                mask = bytes(map(eq, scopes, repeat(C)))
                sel_c = array('q', compress(child[e0:e1], mask))
                sel_l = array('d', compress(local[e0:e1], mask))
                sel_g = array('d', compress(contrib[e0:e1], mask))
            out['rec_scope'].append(C)
            out['rec_count'].append(len(sel_c))
            out['rec_local'].append(reduce(add, sel_l, 0.0))
            out['rec_contrib'].append(reduce(add, sel_g, 0.0))
            if C == own:        # edges inside the scope: fold counts them, never draws them
                out['rec_norm'].append(0.0)
            else:
                kids = sorted(set(sel_c))
                if len(kids) == len(sel_c):     # each child read once: its sum is 0.0 + its part
                    order = sorted(range(len(sel_c)), key=sel_c.__getitem__)
                    sums = array('d', map(add, repeat(0.0), map(sel_g.__getitem__, order)))
                else:           # a child read several times: its parents in the run, in edge order
                    sums = array('d')
                    for c in kids:
                        k0, k1 = pptr[c], pptr[c + 1]
                        ps = parent[k0:k1]
                        lo, hi = k0 + bisect_left(ps, a), k0 + bisect_left(ps, b)
                        sums.append(reduce(add, map(contrib.__getitem__, pedge[lo:hi]), 0.0))
                out['rec_norm'].append(math.sqrt(fsum(map(mul, sums, sums))))
                out['rec_kids'].extend(kids)
                out['rec_kid_sum'].extend(sums)
            out['rec_kid_ptr'].append(len(out['rec_kids']))
        out['rec_ptr'].append(len(out['rec_scope']))
    return out
