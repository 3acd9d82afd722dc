"""The indexes a binary trace of version 2 stores beside its columns (recording.indexes,
recording.aggregates), and the "made by" chains version 3 adds (recording.madeby), checked
on load like the columns are, so that loading one never builds them again (nor replays the
forward pass) and a damaged one is refused, not drawn.

Each is a typed array of a length the trace's own columns fix (n nodes, E edges, R runs of
one scope, K run records, J children the records name). The checks are whole-column
operations (lengths, min/max and order in numpy: whole.py), about ten milliseconds for 5
million nodes against the seconds building them costs: every id, offset and rank lies in
its range and every offset column runs forward, so a view can index with them and never
step outside the trace. Whether they are the ones these columns give is the writer's
promise (the body's checksums, zstd's per frame or zlib's, guard the bytes on the way); tests compare a stored set
with one built again.
"""

from itertools import islice
from operator import lt

from ..aggregates import RECORD_COLUMNS
from ..indexes import INDEX_COLUMNS
from ..shares import SHARE_COLUMNS, matrix_span
from ..uses import FIGURE_COLUMNS, USE_COLUMNS
from .validate import MAX_INT, TraceFormatError, good_text, show
from .whole import bounds, rising

CHAINS_COLUMN = ('made_by', 'i')    # version 3: per node, its made-by chain in the header's "chains" (or -1)
MAX_CHAIN = 64      # frames in one chain: the model's calls are a few deep
STORED_COLUMNS = INDEX_COLUMNS + RECORD_COLUMNS + SHARE_COLUMNS + USE_COLUMNS + FIGURE_COLUMNS
STORED_NAMES = tuple(name for name, _ in STORED_COLUMNS)
SHARE_NAMES = tuple(name for name, _ in SHARE_COLUMNS)     # added later: a file may lack all of them
SHARE_ADDED = ('share_mag',)    # added after the others: a file with the others but not these builds all again
USE_NAMES = tuple(name for name, _ in USE_COLUMNS)     # added after those: a file may lack all of them
FIGURE_NAMES = tuple(name for name, _ in FIGURE_COLUMNS)   # the records' figures, added after them: the same
_USE_LISTS = ('use_kids', 'use_scopes', 'use_scope_n')     # entries per record: behind an offset column


def fail(message):
    raise TraceFormatError(f"binary trace: stored index {message}")


def _length(cols, name, want):
    if len(cols[name]) != want:
        fail(f"{name!r} has {len(cols[name])} entries; this trace's columns need {want}")


def _below(cols, name, bound, what):
    col = cols[name]
    low, high = bounds(col) if col else (0, -1)
    if low < 0 or high >= bound:
        bad = low if low < 0 else high
        fail(f"{name!r} holds {bad}, which is not {what} (0..{bound - 1})")


def _offsets(cols, name, end, strict=False):
    """An offset column: starts at 0, ends at `end`, never goes back (nor stays, when strict)."""
    col = cols[name]
    if not col or col[0] != 0 or col[-1] != end or not rising(col, strict):
        fail(f"{name!r} must run {'up' if strict else 'forward'} from 0 to {end}")


def check_stored(cols, trace):
    """{name: array} of the stored indexes, each checked against `trace` (validate.check's
    `Trace(**columns)` keyword arguments); TraceFormatError names the first that is wrong."""
    missing = [name for name in STORED_NAMES if name not in cols]
    with_uses = not all(name in missing for name in USE_NAMES)     # none: written before them, built on first use
    with_figures = with_uses and not all(name in missing for name in FIGURE_NAMES)   # none: read from the values
    missing = [name for name in missing if (with_uses or name not in USE_NAMES) and (with_figures or name not in FIGURE_NAMES)]
    with_shares = missing not in (list(SHARE_NAMES), list(SHARE_ADDED))
    if not with_shares:      # written before the share records, or before share_mag: all built on first use
        missing = []
    if missing:
        fail(f"columns are incomplete: missing {', '.join(missing)} (a file stores all of them or none)")
    n, edges, scope = len(trace['op']), len(trace['child']), trace['scope']
    _offsets(cols, 'run_start', n, strict=True)
    runs = len(cols['run_start']) - 1
    _length(cols, 'run_scope', runs)
    if list(map(scope.__getitem__, islice(cols['run_start'], runs))) != cols['run_scope'].tolist():
        fail("'run_scope' does not name the scope of each run's first node")
    _length(cols, 'parent_ptr', n + 1)
    _offsets(cols, 'parent_ptr', edges)
    for name in ('parent', 'parent_edge'):
        _length(cols, name, edges)
    _below(cols, 'parent', n, 'a node id')
    _below(cols, 'parent_edge', edges, 'an edge')
    if len(cols['dangling']) > n or not rising(cols['dangling'], strict=True):
        fail("'dangling' must be node ids in increasing order")
    _below(cols, 'dangling', n, 'a node id')
    _length(cols, 'backward_rank', n)
    rank = cols['backward_rank']
    low, high = bounds(rank) if rank else (0, -1)
    if low < -1 or high >= len(trace['backward_order']):
        fail(f"'backward_rank' holds {low if low < -1 else high}, which is not a place in "
             f"the backward pass (-1..{len(trace['backward_order']) - 1})")
    _length(cols, 'value', n)
    _below(cols, 'value', 2, 'a flag')
    _length(cols, 'rec_ptr', runs + 1)
    records = len(cols['rec_scope'])
    _offsets(cols, 'rec_ptr', records)
    for name in ('rec_count', 'rec_local', 'rec_contrib', 'rec_norm'):
        _length(cols, name, records)
    _below(cols, 'rec_scope', len(trace['scopes']), 'a scope')
    _below(cols, 'rec_count', edges + 1, 'a number of edges')
    _length(cols, 'rec_kid_ptr', records + 1)
    _offsets(cols, 'rec_kid_ptr', len(cols['rec_kids']))
    _length(cols, 'rec_kid_sum', len(cols['rec_kids']))
    _below(cols, 'rec_kids', n, 'a node id')
    if with_shares:
        _check_shares(cols, trace)
    if with_uses:
        _check_uses(cols, trace, runs, with_figures)
    return {name: cols[name] for name in STORED_NAMES if name in cols and (with_shares or name not in SHARE_NAMES)
            and (with_uses or name not in USE_NAMES) and (with_figures or name not in FIGURE_NAMES)}


def _check_shares(cols, trace):
    """The share records (recording.shares): offsets forward, each record's count of cells at
    most its matrix's, its peak one of its cells, the peak's data inside its data range, its
    largest |share x data| between the peak's and the largest |share| x the largest |data|
    (NaN when the norm is), its uses' scopes real scopes: a record damaged in any of these is
    refused, not drawn."""
    names = trace['param_names']
    _length(cols, 'share_ptr', len(names) + 1)
    records = len(cols['share_pos'])
    _offsets(cols, 'share_ptr', records)
    for name in SHARE_NAMES[2:-2]:
        _length(cols, name, records)
    _length(cols, 'share_scope_ptr', records + 1)
    _offsets(cols, 'share_scope_ptr', len(cols['share_scopes']))
    _below(cols, 'share_scopes', len(trace['scopes']), 'a scope')
    data, ptr = trace['data'], cols['share_ptr']
    for m, name in enumerate(names):
        a, b = matrix_span(trace['param_shapes'], trace['param_base'], name)
        for k in range(ptr[m], ptr[m + 1]):
            n, peak = cols['share_n'][k], cols['share_peak'][k]
            lo, hi = cols['share_data_min'][k], cols['share_data_max'][k]
            if not (0 <= n <= b - a and a <= peak < b and cols['share_pos'][k] >= -2):
                fail(f"share record {k} of {name!r} holds {n} cells, peak {peak}: not within its cells {a}..{b - 1}")
            if n and not lo <= data[peak] <= hi and data[peak] == data[peak]:
                fail(f"share record {k} of {name!r}: its peak's data {data[peak]!r} is outside its range {lo!r} .. {hi!r}")
            _check_mag(cols, k, name, n, abs(data[peak]), max(abs(lo), abs(hi)))


def _check_mag(cols, k, name, n, at_peak, most):
    """Record k's share_mag, the largest |share x data| of its n cells (NaN when any is): 0 of no
    cells; NaN when a share is (its norm NaN); else, when a number, at least the peak's product
    (|share| largest there) and at most the largest |share| x the largest |data| (rounding is
    monotonic, so both bounds hold exactly)."""
    mag, norm = cols['share_mag'][k], cols['share_grad_norm'][k]
    top = max(abs(cols['share_grad_min'][k]), abs(cols['share_grad_max'][k]))
    if n == 0:
        ok = mag == 0
    elif norm != norm:
        ok = mag != mag
    else:
        ok = mag != mag or top * at_peak <= mag <= top * most
    if not ok:
        fail(f"share record {k} of {name!r}: its largest |share x data| {mag!r} is not that of its cells "
             f"(between {top * at_peak!r} and {top * most!r}, NaN when a share is)")


def check_chains(table, per_node, trace):
    """(chain id per node, [chain]) of "made by" (recording.madeby: the model.py lines behind each op)
    as a version 3 file stores them: the header's "chains" ([[function, line], ...] each, outermost
    first) and the column 'made_by' (per node an index into them, -1 for none). TraceFormatError
    names what is wrong: a made_by answer is never read out of a damaged table."""
    def bad(message):
        raise TraceFormatError(f"binary trace: made-by chains {message}")
    if (table is None) != (per_node is None):
        bad("need both the header's \"chains\" and the 'made_by' column, or neither")
    if not isinstance(table, list):
        bad(f"must be a list, got {show(table)}")
    chains = []
    for k, chain in enumerate(table):
        if not (isinstance(chain, list) and 0 < len(chain) <= MAX_CHAIN and all(
                isinstance(f, list) and len(f) == 2 and good_text(f[0]) and 0 < len(f[0]) <= 200
                and isinstance(f[1], int) and not isinstance(f[1], bool) and 0 < f[1] < MAX_INT for f in chain)):
            bad(f"entry {k} must be 1 to {MAX_CHAIN} [function, line] pairs, got {show(chain)}")
        chains.append(tuple((fn, line) for fn, line in chain))
    n = len(trace['op'])
    if len(per_node) != n:
        bad(f"'made_by' has {len(per_node)} entries; this trace's columns need {n}")
    low, high = bounds(per_node) if per_node else (0, -1)
    if low < -1 or high >= len(chains):
        bad(f"'made_by' holds {low if low < -1 else high}, which is not a chain "
            f"(-1..{len(chains) - 1})")
    return per_node, chains


def _check_uses(cols, trace, runs, figures):
    """The use records (recording.uses): offsets forward; each record's run a run, its uses rows of a
    stored pattern lying in that run, its outputs such rows inside the trace, its inputs node ids, its
    scopes scopes, its counts within the edges: a view reads ids from them without looking again; with
    `figures`, theirs: one a record, each peak -1 or a node id."""
    n, edges, starts = len(trace['op']), len(trace['child']), cols['run_start']
    _length(cols, 'use_ptr', len(trace['param_names']) + 1)
    records = len(cols['use_run'])
    _offsets(cols, 'use_ptr', records)
    for name in FIGURE_NAMES if figures else ():
        _length(cols, name, records)
        low, high = bounds(cols[name]) if name.endswith('_peak') and cols[name] else (-1, -1)
        if low < -1 or high >= n:
            fail(f"{name!r} holds {low if low < -1 else high}, which is not -1 nor a node id (0..{n - 1})")
    for name in USE_NAMES:
        if name.startswith(('use_', 'out_')) and name not in ('use_ptr', *_USE_LISTS) and not name.endswith('_ptr'):
            _length(cols, name, records)
    for name, items in (('use_kid_ptr', 'use_kids'), ('use_scope_ptr', 'use_scopes')):
        _length(cols, name, records + 1)
        _offsets(cols, name, len(cols[items]))
    _length(cols, 'use_scope_n', len(cols['use_scopes']))
    _offsets(cols, 'pattern_ptr', len(cols['pattern']), strict=True)
    _below(cols, 'use_run', runs, 'a run')
    _below(cols, 'use_kids', n, 'a node id')
    _below(cols, 'use_scopes', len(trace['scopes']), 'a scope')
    for name in ('use_scope_n', 'out_edges'):
        _below(cols, name, edges + 1, 'a number of edges')
    _below(cols, 'out_inside', 2, 'a flag')
    ptr, pattern = cols['pattern_ptr'], cols['pattern']
    for k in range(records):
        for side in ('use', 'out'):
            m, first, period, p = (cols[f'{side}_{f}'][k] for f in ('n', 'first', 'period', 'pattern'))
            lo, hi = (starts[cols['use_run'][k]], starts[cols['use_run'][k] + 1]) if side == 'use' else (0, n)
            offsets = pattern[ptr[p]:ptr[p + 1]] if 0 <= p < len(ptr) - 1 else None
            if p == -1 and (m == 0 or lo <= first < hi):
                continue        # not rows: the view walks the edges
            if not (offsets and offsets[0] == 0 and all(map(lt, offsets, islice(offsets, 1, None)))
                    and m > 0 and m % len(offsets) == 0 and period > offsets[-1]
                    and lo <= first and first + (m // len(offsets) - 1) * period + offsets[-1] < hi):
                fail(f"use record {k} holds {m} {side}s from {first} in rows of pattern {p}, period {period}: "
                     f"not rows of a stored pattern within {lo}..{hi - 1}")
