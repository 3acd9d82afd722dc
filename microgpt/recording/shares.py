"""Share records: a parameter matrix's *share figures* (recording.figures) for each position
that used it and for all of them, computed once (while recording, or on the first load of a
file written without them) and stored with the indexes (codecs/stored.py), so that a view
whose interior is whole scopes (a token, a layer, a head, the whole document) reads the
figures of its boundary matrices as a record, not by checking each reverse edge of each
matrix against the view (a token view of a 4 x 64 model: a million edges).

Per matrix m (trace.param_names order) the records share_ptr[m]..share_ptr[m + 1]:
    share_pos            -1 (every use of the matrix), the position of the uses summed, or -2
                         (OWN, the last record: the cells' own grads, not a share; no scopes)
    share_n ... share_peak   the Figures of the cells those uses read (their grads: each
                         cell's share, the fsum of those uses' contributions: figures.cell_shares)
    share_mag            the largest |share x data| of those cells (figures.largest_magnitude: NaN
                         when any is), the explorer's overlay's second magnitude (added later: a
                         file without it builds every share column again, codecs/stored.py)
    share_scope_ptr, share_scopes   the scopes of those uses (sorted): a view whose interior
                         holds exactly these of the matrix's use scopes reads this record
"""

import math
from array import array
from bisect import bisect_left, bisect_right
from itertools import chain, islice, repeat
from operator import lt, mul, sub

from .figures import cell_shares, figures_of, largest_magnitude
from .runs import scopes_in

SHARE_COLUMNS = (('share_ptr', 'q'), ('share_pos', 'i'), ('share_n', 'q'), ('share_data_min', 'd'),
                 ('share_data_max', 'd'), ('share_grad_min', 'd'), ('share_grad_max', 'd'),
                 ('share_grad_norm', 'd'), ('share_peak', 'q'), ('share_mag', 'd'), ('share_scope_ptr', 'q'),
                 ('share_scopes', 'I'))
FIELDS = ('n', 'data_min', 'data_max', 'grad_min', 'grad_max', 'grad_norm')
OWN = -2        # share_pos of a matrix's last record: the figures of its cells' own data and grads


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
        whole = range(a, b)
        groups.append((OWN, whole, None, ()))
        for pos, c, p, s in groups:
            if pos == OWN:      # the cells' own grads: what the matrix's group shows in any view holding all of it
                ids, gs = list(whole), trace.grad[a:b]
            else:
                shares = cell_shares(c, p)
                ids, gs = list(shares), array('d', shares.values())
            ds = data[a:b] if pos == OWN else array('d', map(data.__getitem__, ids))
            fig = figures_of(ids, ds, gs) if ids else None
            out['share_pos'].append(pos)
            for f in FIELDS:
                out[f'share_{f}'].append(getattr(fig, f) if fig else 0)
            out['share_peak'].append(fig.grad_peak if fig else a)
            out['share_mag'].append(largest_magnitude(map(mul, gs, ds)))
            out['share_scopes'].extend(sorted(set(s)))
            out['share_scope_ptr'].append(len(out['share_scopes']))
        out['share_ptr'].append(len(out['share_pos']))
    return out


def whole_scopes(trace, runs, n, sids=None):
    """The scope ids of the nodes in the id ranges `runs` (n ids in all; `sids`: their scopes, when
    known) when those nodes are every node of those scopes (a token, layer, head or document view),
    else None."""
    sids = scopes_in(trace, runs) if sids is None else sids
    held = trace.runs_of_scope()
    if sum(b - a for s in sids for a, b in held[s]) != n:
        return None
    return frozenset(sids)


def share_record(trace, name, ids, scopes):
    """(True, k or None): the index k of the record of matrix `name` for an interior made of the
    scopes `scopes`, whose boundary group of that matrix is `ids` (None: nothing of the matrix
    flowed back from it); (False, None) when no record is that interior's (its uses split
    between positions another way) or `ids` are not all the cells it read. `ids`: ascending (a
    folded node's), so its ends are its first and last (no pass over a 16,384-cell group)."""
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
    if col('share_n')[k] != len(ids) or not a <= ids[0] <= ids[-1] < b:
        return False, None
    return True, k


def stored_share(trace, name, ids, scopes):
    """(True, figure fields or None) from the record of matrix `name` for an interior made of
    the scopes `scopes` (share_record), or (False, None) when no record is that interior's."""
    found, k = share_record(trace, name, ids, scopes)
    if k is None:
        return found, None
    col = trace.index
    return True, {**{f: col(f'share_{f}')[k] for f in FIELDS}, 'grad_peak': col('share_peak')[k]}


def stored_magnitudes(trace, name, ids, scopes):
    """(largest |share|, largest |share x data|) of the boundary group `ids` of matrix `name` for an
    interior made of the scopes `scopes`, from its share record (share_record; (0.0, 0.0): nothing
    flowed back), NaN each when a share is NaN; None when no record is that interior's. The first
    is the larger |grad_min|, |grad_max| of the record (its NaN-free range), NaN iff its norm is:
    the largest |share| over the cells, as the overlay takes it from the shares themselves."""
    found, k = share_record(trace, name, ids, scopes)
    if not found:
        return None
    if k is None:
        return 0.0, 0.0
    col = trace.index
    norm = col('share_grad_norm')[k]
    top = math.nan if math.isnan(norm) else max(abs(col('share_grad_min')[k]), abs(col('share_grad_max')[k]))
    return top, col('share_mag')[k]


def stored_figures(trace, ids):
    """The figure fields of the cells' own data and grads when `ids` (sorted, without repeats)
    are every cell of one matrix (a boundary group of a token view: 16,384 cells of mlp_fc1),
    from the matrix's OWN record; else None."""
    if not ids or trace.op_names[trace.op[ids[0]]] != 'param':
        return None
    name = trace.scopes[trace.scope[ids[0]]].role
    a, b = matrix_span(trace.param_shapes, trace.param_base, name)
    if len(ids) != b - a or ids[0] != a or ids[-1] != b - 1 or not all(map(lt, ids, islice(ids, 1, None))):
        return None
    k = trace.index('share_ptr')[trace.param_names.index(name) + 1] - 1
    col = trace.index
    return {**{f: col(f'share_{f}')[k] for f in FIELDS}, 'grad_peak': col('share_peak')[k]}
