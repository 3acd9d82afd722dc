"""Share records: a parameter matrix's *share figures* (recording.figures) for each position
that used it and for all of them, computed once (while recording, or on the first load of a
file written without them) and stored with the indexes (codecs/stored.py), so that a view
whose interior is whole scopes (a token, a layer, a head, the whole document) reads the
figures of its boundary matrices as a record, not by checking each reverse edge of each
matrix against the view (a token view of a 4 x 64 model: a million edges).

Per matrix m (trace.param_names order) the records share_ptr[m]..share_ptr[m + 1]:
    share_pos            -1 (every use of the matrix) or the position of the uses summed
    share_n ... share_peak   the Figures of the cells those uses read (their grads: each
                         cell's share, the fsum of those uses' contributions: figures.cell_shares)
    share_scope_ptr, share_scopes   the scopes of those uses (sorted): a view whose interior
                         holds exactly these of the matrix's use scopes reads this record
"""

from array import array
from bisect import bisect_left, bisect_right
from itertools import chain, repeat
from operator import sub

from .figures import cell_shares, figures_of
from .runs import scopes_in

SHARE_COLUMNS = (('share_ptr', 'q'), ('share_pos', 'i'), ('share_n', 'q'), ('share_data_min', 'd'),
                 ('share_data_max', 'd'), ('share_grad_min', 'd'), ('share_grad_max', 'd'),
                 ('share_grad_norm', 'd'), ('share_peak', 'q'), ('share_scope_ptr', 'q'), ('share_scopes', 'I'))
FIELDS = ('n', 'data_min', 'data_max', 'grad_min', 'grad_max', 'grad_norm')


def matrix_span(param_shapes, param_base, name):
    """(first cell id, last + 1) of matrix `name` (a trace's param_shapes, param_base)."""
    rows, cols = param_shapes[name]
    a = param_base[name]
    return a, a + rows * cols


def share_records(trace):
    """The SHARE_COLUMNS of `trace`, from its reverse edges and contributions."""
    out = {name: array(code) for name, code in SHARE_COLUMNS}
    pptr, parent, pedge = trace.parents_index()
    contrib, scope, data = trace.contrib, trace.scope, trace.data
    pos_of = array('i', (-1 if s[0] is None else s[0] for s in trace.scopes))
    out['share_ptr'].append(0)
    out['share_scope_ptr'].append(0)
    for name in trace.param_names:
        a, b = matrix_span(trace.param_shapes, trace.param_base, name)
        k0, k1 = pptr[a], pptr[b]
        cells = array('q', chain.from_iterable(map(repeat, range(a, b), map(sub, pptr[a + 1:b + 1], pptr[a:b]))))
        used = array('I', map(scope.__getitem__, parent[k0:k1]))
        parts = array('d', map(contrib.__getitem__, pedge[k0:k1]))
        poses = array('i', map(pos_of.__getitem__, used))
        # the uses ordered by position (a stable sort: by cell, then parent, within one): each
        # position's uses one slice, found by bisection
        order = sorted(range(len(poses)), key=poses.__getitem__)
        by_pos = array('i', map(poses.__getitem__, order))
        groups = [(-1, cells, parts, used)]
        for pos in sorted(set(by_pos) - {-1}):
            picked = order[bisect_left(by_pos, pos):bisect_right(by_pos, pos)]
            groups.append((pos, array('q', map(cells.__getitem__, picked)), array('d', map(parts.__getitem__, picked)),
                           map(used.__getitem__, picked)))
        for pos, c, p, s in groups:
            shares = cell_shares(c, p)
            ids = list(shares)
            fig = figures_of(ids, array('d', map(data.__getitem__, ids)), array('d', shares.values())) \
                if ids else None
            out['share_pos'].append(pos)
            for f in FIELDS:
                out[f'share_{f}'].append(getattr(fig, f) if fig else 0)
            out['share_peak'].append(fig.grad_peak if fig else a)
            out['share_scopes'].extend(sorted(set(s)))
            out['share_scope_ptr'].append(len(out['share_scopes']))
        out['share_ptr'].append(len(out['share_pos']))
    return out


def whole_scopes(trace, runs, n):
    """The scope ids of the nodes in the id ranges `runs` (n ids in all) when those nodes are
    every node of those scopes (a token, layer, head or document view), else None."""
    sids = scopes_in(trace, runs)
    held = trace.runs_of_scope()
    if sum(b - a for s in sids for a, b in held[s]) != n:
        return None
    return frozenset(sids)


def stored_share(trace, name, ids, scopes):
    """(True, figure fields or None) from the record of matrix `name` for an interior made of
    the scopes `scopes`, whose boundary group of that matrix is `ids` (None: nothing of the
    matrix flowed back from it); (False, None) when no record is that interior's (its uses
    split between positions another way) or `ids` are not all the cells it read."""
    m = trace.param_names.index(name)
    col = trace.index
    k0, k1 = col('share_ptr')[m], col('share_ptr')[m + 1]
    sptr, sc = col('share_scope_ptr'), col('share_scopes')
    wanted = [s for s in sc[sptr[k0]:sptr[k0 + 1]] if s in scopes]     # record k0: every use
    if not wanted:
        return True, None
    for k in range(k0, k1):
        if sc[sptr[k]:sptr[k + 1]].tolist() == wanted:
            break
    else:
        return False, None
    a, b = matrix_span(trace.param_shapes, trace.param_base, name)
    if col('share_n')[k] != len(ids) or not a <= min(ids) <= max(ids) < b:
        return False, None
    return True, {**{f: col(f'share_{f}')[k] for f in FIELDS}, 'grad_peak': col('share_peak')[k]}
