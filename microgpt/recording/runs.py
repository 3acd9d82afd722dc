"""Runs of consecutive node ids: a view is mostly a few long runs (a position's ops are made
one after another), and a run's edges are one slice of each of the trace's edge columns."""

from array import array
from bisect import bisect_left, bisect_right
from itertools import accumulate, chain, compress, count, islice, repeat, starmap
from operator import add, itemgetter, lt, ne, or_, sub


def id_runs(ids):
    """[(a, b)]: the maximal ranges a..b-1 of consecutive ids in `ids`, sorted without repeats.
    In such a list ids[j] - ids[k] >= j - k, with equality exactly while the run from k
    lasts: each run's end is found by galloping then bisection, so the work is per run (a
    few steps for a run of one), not per id (a token view of a 4 x 64 model: 440,000 ids
    in a few hundred runs)."""
    if isinstance(ids, Ids):
        return ids.runs         # kept as runs (a whole document's 4.9 M ids): none found again
    out, k, n = [], 0, len(ids)
    while k < n:
        if len(out) >= 16 and k < 8 * len(out):    # short runs (a matrix's scattered uses): breaks found in C
            return out + _runs_by_breaks(ids[k:])
        a = ids[k]
        lo, step = k, 1
        while lo + step < n and ids[lo + step] - a == lo + step - k:
            lo += step
            step *= 2
        hi = min(lo + step, n) - 1
        while lo < hi:          # the last j with ids[j] - a == j - k
            mid = (lo + hi + 1) // 2
            if ids[mid] - a == mid - k:
                lo = mid
            else:
                hi = mid - 1
        out.append((a, ids[lo] + 1))
        k = lo + 1
    return out


def runs_of(ids):
    """id_runs of any ids: a view's node ids are sorted without repeats (checked in C, no sort);
    others (a set, a list in another order) are sorted first."""
    if isinstance(ids, Ids):
        return ids.runs
    ids = ids if isinstance(ids, (list, tuple)) else list(ids)
    if all(map(lt, ids, islice(ids, 1, None))):
        return id_runs(ids)
    return id_runs(sorted(set(ids)))


def _runs_by_breaks(ids):
    """id_runs of `ids` from where consecutive ids differ by more than 1: one pass in C."""
    bounds = [0, *compress(count(1), map(ne, map(sub, islice(ids, 1, None), ids), repeat(1))), len(ids)]
    firsts = map(ids.__getitem__, islice(bounds, len(bounds) - 1))
    ends = map(add, map(ids.__getitem__, map(sub, islice(bounds, 1, None), repeat(1))), repeat(1))
    return list(zip(firsts, ends))


def run_total(runs):
    """How many ids the runs (a, b) hold, summed in C (equal to len(runs): single ids, scattered)."""
    if isinstance(runs, Runs) and runs.ends is None:
        return len(runs)                # single ids, known so (a matrix's uses at a position)
    return -sum(starmap(sub, runs))     # a - b per run, one map (half the time of three)


def scopes_in(trace, runs):
    """The scope ids of `trace`'s nodes in the id ranges `runs`: from the trace's runs of one
    scope (recording.indexes.scope_runs), a slice of run_scope per range, not a look-up per
    node; for scattered ranges (most of one node) the scope column itself, read in C."""
    total = run_total(runs)
    if total == len(runs):      # single ids (a matrix's uses)
        return set(map(trace.scope.__getitem__, runs.starts if isinstance(runs, Runs) else map(itemgetter(0), runs)))
    if total < 4 * len(runs):
        return set(map(trace.scope.__getitem__, chain.from_iterable(starmap(range, runs))))
    run_start, run_scope = trace.scope_runs()
    out = set()
    for a, b in runs:
        out.update(run_scope[bisect_right(run_start, a) - 1:bisect_left(run_start, b)])
    return out


def all_single(ids):
    """Whether no two of the sorted ids `ids` are consecutive (every run is one id), found in C
    without making the runs (a matrix's 196,000 outputs)."""
    if isinstance(ids, Ids):
        return len(ids.runs) == len(ids)
    return all(map(ne, map(add, ids, repeat(1)), islice(ids, 1, None)))


def scattered(ids):
    """Whether the sorted ids `ids` are spread thin (a matrix's 196,000 uses over 5 M ids): read
    per id in C then, without finding their runs first (a tuple each)."""
    return bool(ids) and ids[-1] - ids[0] >= 4 * len(ids)


def scopes_of(trace, ids):
    """scopes_in of the sorted ids `ids`: scattered ones from their pieces (run_pieces) when they lie
    in few of the trace's runs (a matrix's 196,000 uses in 12), else read from the scope column in C."""
    if scattered(ids):
        pieces = run_pieces(trace, ids, len(ids) // 64)
        if pieces is not None:
            return set(map(trace.index('run_scope').__getitem__, map(itemgetter(0), pieces)))
        return set(map(trace.scope.__getitem__, ids))
    return scopes_in(trace, id_runs(ids))


def edges_of(trace, ids):
    """(edge indexes, counts): the edges of the nodes `ids` in id order, each one's edges in order, and
    how many each has, read in C (a matrix's 196,608 single uses: not a slice per node)."""
    return spans(trace.child_ptr, ids)


def spans(ptr, ids):
    """(positions, counts): the entries ptr[i]..ptr[i + 1] - 1 of a CSR's rows `ids`, in order, a list, and
    how many each row has. Read in C; when every row has the same count c (a matrix's uses: 2 children
    each, 1 parent), as c strided copies of the rows' k-th entries (an array op each), not a range a row."""
    e0 = array('q', map(ptr.__getitem__, ids))
    counts = list(map(sub, map(ptr.__getitem__, map(add, ids, repeat(1))), e0))
    c = _same(counts)
    if c is None:
        return list(chain.from_iterable(map(range, e0, map(add, e0, counts)))), counts
    return _interleave([array('q', map(add, e0, repeat(k))) if k else e0 for k in range(c)]), counts


def repeats(ids, counts):
    """Each of `ids` `counts` times, in order, a list (the owner of each entry spans gives). When every
    count is c or 0 (a run of ops with its sums' constant 0s: a linear's 16,000 muls and adds and 256
    zeros), the ids counted c times are interleaved c times (strided copies), not repeated one by one."""
    c = _same(counts)
    if c is None:
        kinds = set(counts)
        if len(kinds) == 2 and 0 in kinds:
            return _interleave([array('q', compress(ids, counts))] * max(kinds))
        return list(chain.from_iterable(map(repeat, ids, counts)))
    return _interleave([array('q', ids)] * c)


def _same(counts):
    """The count every row has, or None."""
    c = counts[0] if counts else 0
    return c if counts.count(c) == len(counts) else None


def _interleave(columns):
    """[columns[0][0], columns[1][0], ..., columns[0][1], columns[1][1], ...], a list: a strided copy a column."""
    if len(columns) < 2:
        return columns[0].tolist() if columns else []
    c = len(columns)
    out = array('q', bytes(8 * c * len(columns[0])))
    for k, col in enumerate(columns):
        out[k::c] = col
    return out.tolist()


def holds(ids, i):
    """Whether the sorted ids `ids` hold `i` (by bisection)."""
    j = bisect_left(ids, i)
    return j < len(ids) and ids[j] == i


def run_pieces(trace, ids, most=None):
    """[(r, lo, hi)]: the sorted ids `ids` cut where the trace's runs of one scope change (ids[lo:hi]
    lie in run r), in id order; two bisections a piece, none an id (a matrix's 196,000 scattered
    uses lie in 12 runs, one a position). None when there are more than `most` pieces."""
    starts, out, lo, n = trace.index('run_start'), [], 0, len(ids)
    while lo < n:
        if most is not None and len(out) >= most:
            return None
        r = bisect_right(starts, ids[lo]) - 1
        hi = bisect_left(ids, starts[r + 1], lo)
        out.append((r, lo, hi))
        lo = hi
    return out


def not_single(runs, firsts, special):
    """The indexes of the runs longer than one id or whose id is in the set `special` (`firsts`:
    each run's first id), found in C: between them lie the single ids (a matrix's 196,000 uses)."""
    lengths = map(sub, map(itemgetter(1), runs), firsts)
    return compress(count(), map(or_, map(ne, lengths, repeat(1)), map(special.__contains__, firsts)))


def slices_of(held, runs):
    """The ids of `runs` as a tuple of slices of `held` (sorted, holding every id of each run); as
    Ids when `held` is (a whole document's: its groups' 4.9 M ids kept as their runs)."""
    if run_total(runs) == len(runs):
        return tuple(map(itemgetter(0), runs))      # single ids (a matrix's uses): no bisection each
    if isinstance(held, Ids):
        return Ids(runs if isinstance(runs, Runs) else Runs(array('q', map(itemgetter(0), runs)),
                                                             array('q', map(itemgetter(1), runs))))
    parts = []
    for a, b in runs:
        lo = bisect_left(held, a)
        parts.append(held[lo:lo + b - a])
    return parts[0] if len(parts) == 1 else tuple(chain.from_iterable(parts))


SCATTERED = 64      # more runs than this: scattered ids (a matrix's uses), read in C (gather, select)


def gather(column, runs):
    """column[a:b] for each run (a, b), concatenated: an array, in id order. Many runs (a
    matrix's scattered uses, one id each) are read in C, not a slice each."""
    if len(runs) > SCATTERED and isinstance(column, array):
        if isinstance(runs, Runs) and runs.ends is None:
            return array(column.typecode, map(column.__getitem__, runs.starts))     # single ids: no pair made each
        if run_total(runs) == len(runs):
            return array(column.typecode, map(column.__getitem__, map(itemgetter(0), runs)))
        return array(column.typecode, chain.from_iterable(map(column.__getitem__, starmap(slice, runs))))
    out = column[runs[0][0]:runs[0][1]]
    for a, b in runs[1:]:
        out += column[a:b]
    return out


class Runs:
    """Runs (a, b) of ids, a..b-1, kept as two arrays (starts, ends), or one when every run is
    one id (ends None: b = a + 1; the starts may then be the ids themselves, a tuple: a matrix's 16,384
    scattered uses at a position, no pair made for each). Read as the list of pairs it replaces
    (iterate, len, index, slice). The explorer's view cache keeps a drawn view's runs so."""
    __slots__ = ('starts', 'ends')

    def __init__(self, starts, ends=None):
        self.starts, self.ends = starts, ends

    @classmethod
    def of(cls, runs, ids):
        """The Runs of `runs` (a list of pairs), the runs of `ids` (an array('q')): `ids` itself as
        the starts when every run is one id (a matrix's scattered uses)."""
        if len(runs) == len(ids) and all(map(lt, ids, islice(ids, 1, None))):
            return cls(ids)
        return cls(array('q', map(itemgetter(0), runs)), array('q', map(itemgetter(1), runs)))

    def __len__(self):
        return len(self.starts)

    def __iter__(self):
        return zip(self.starts, self.ends if self.ends is not None else map(add, self.starts, repeat(1)))

    def __getitem__(self, k):
        if isinstance(k, slice):
            return Runs(self.starts[k], None if self.ends is None else self.ends[k])
        a = self.starts[k]
        return a, (a + 1 if self.ends is None else self.ends[k])

    def __eq__(self, other):
        return list(self) == list(other)

    __hash__ = None

    def __repr__(self):
        return f'Runs({list(self)!r})'


class Ids:
    """Ascending distinct node ids kept as their runs (a Runs): a few long runs (a token's ops) in a
    few bytes, not 8 an id. Read as the tuple it replaces: iterate, len, index, a slice (a tuple),
    `in` and index() by bisection, + (a tuple)."""
    __slots__ = ('runs', '_at')

    def __init__(self, runs):
        self.runs = runs if isinstance(runs, Runs) else Runs.of(runs, ())
        self._at = array('q', accumulate(map(sub, self.runs.ends, self.runs.starts), initial=0))   # ids before run r

    def __len__(self):
        return self._at[-1]

    def __iter__(self):
        return chain.from_iterable(map(range, self.runs.starts, self.runs.ends))

    def __getitem__(self, k):
        if isinstance(k, slice):
            lo, hi, step = k.indices(len(self))
            if step != 1:
                return tuple(map(self.__getitem__, range(lo, hi, step)))
            if lo >= hi:
                return ()
            r, (starts, ends) = bisect_right(self._at, lo) - 1, (self.runs.starts, self.runs.ends)
            s = bisect_right(self._at, hi - 1)      # runs r..s-1 hold the slice: the first and last cut
            firsts = [starts[r] + lo - self._at[r], *starts[r + 1:s]]
            lasts = [*ends[r:s - 1], starts[s - 1] + hi - self._at[s - 1]]
            return tuple(chain.from_iterable(map(range, firsts, lasts)))
        k = k + len(self) if k < 0 else k
        if not 0 <= k < len(self):
            raise IndexError('Ids index out of range')
        r = bisect_right(self._at, k) - 1
        return self.runs.starts[r] + k - self._at[r]

    def _run(self, x):
        """The run holding `x`, or None."""
        if not isinstance(x, int):
            return None
        r = bisect_right(self.runs.starts, x) - 1
        return r if r >= 0 and x < self.runs.ends[r] else None

    def __contains__(self, x):
        return self._run(x) is not None or (not isinstance(x, int) and x in tuple(self))

    def index(self, x):
        r = self._run(x)
        if r is None:
            raise ValueError(f'{x!r} is not in the ids')
        return self._at[r] + x - self.runs.starts[r]

    def count(self, x):
        return int(x in self)

    def __add__(self, other):
        return tuple(self) + tuple(other) if isinstance(other, (tuple, Ids)) else NotImplemented

    def __radd__(self, other):
        return other + tuple(self) if isinstance(other, tuple) else NotImplemented

    def __eq__(self, other):
        if not isinstance(other, (tuple, list, array, Ids)):
            return NotImplemented
        if len(self) != len(other):
            return False
        if isinstance(other, Ids) and self.runs == other.runs:
            return True     # the same runs (a node's ids and values): no id made
        return tuple(self) == tuple(other)

    __hash__ = None

    def __repr__(self):
        return f'Ids({self.runs!r})'
