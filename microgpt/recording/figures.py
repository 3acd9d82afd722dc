"""The figures a summary node shows (min/max of data and grad, the grads' L2 norm, the value
of largest |grad|) and the share rule of a parameter's grad: computed here once for the view
(graphviz_export.fold.summary) and for the stored share records (recording.shares), so that a
record and the figures it stands for are the same numbers by construction."""

import math
from array import array
from dataclasses import dataclass
from itertools import chain, compress, count, filterfalse, islice, repeat
from operator import add, eq, lt, mul, ne, or_

from .sums import fsum


@dataclass(frozen=True)
class Figures:
    n: int              # values summarised
    data_min: float
    data_max: float
    grad_min: float
    grad_max: float
    grad_norm: float    # L2 norm of the grads (math.fsum of squares)
    grad_peak: int      # id of the value with the largest |grad| (its colour is the node's)
    over: str = ''      # '' (the group's values), or what else they are of ('in its 166 ops')

    def to_dict(self):
        return {k: getattr(self, k) for k in ('n', 'data_min', 'data_max', 'grad_min', 'grad_max',
                                              'grad_norm', 'grad_peak')}


def figures_of(ids, ds, gs, ordered=False):
    """Figures of values `ids` whose data are `ds` and grads `gs` (in the same order), with
    whole-column operations (in C, not a Python step per value). The peak is the value with
    the largest |grad| (NaN counts as infinite), the smallest id among equals: with `ordered`
    (ids ascending), the first place holding it."""
    try:    # math.fsum on the squares as they come; where it raises, sums.fsum's answer
        norm = math.sqrt(math.fsum(map(mul, gs, gs)))
    except (ValueError, OverflowError):
        norm = math.sqrt(fsum(map(mul, gs, gs)))
    # a finite norm: every grad is finite (an inf or NaN makes the sum of squares inf or NaN); an
    # infinite one may be an overflow of finite grads: then read (a matrix's uses: 196,000 values)
    finite = math.isfinite(norm) or all(map(math.isfinite, gs))
    if not finite:
        g_min, g_max = _min(gs), _max(gs)
        top = compress(ids, map(or_, map(math.isnan, gs), map(math.isinf, gs)))
    else:
        # |g| is the largest, m, only where g is the largest grad (m) or the smallest (-m): those
        # values' places found by equality, not |g| made for every value
        g_min, g_max = min(gs), max(gs)
        m = max(abs(g_min), abs(g_max))
        ends = [g for g in ((g_max,) if g_min == g_max else (g_min, g_max)) if abs(g) == m]
        top = (map(ids.__getitem__, map(gs.index, ends)) if ordered else
               chain.from_iterable(compress(ids, map(eq, gs, repeat(g))) for g in ends))
    clean = not any(map(math.isnan, ds))
    return Figures(n=len(ids), data_min=min(ds) if clean else _min(ds), data_max=max(ds) if clean else _max(ds),
                   grad_min=g_min, grad_max=g_max, grad_norm=norm, grad_peak=min(top))


def _min(xs):
    if not any(map(math.isnan, xs)):
        return min(xs)
    ys = list(filterfalse(math.isnan, xs))
    return min(ys) if ys else math.nan


def _max(xs):
    if not any(map(math.isnan, xs)):
        return max(xs)
    ys = list(filterfalse(math.isnan, xs))
    return max(ys) if ys else math.nan


def largest_magnitude(xs):
    """The largest |x| of `xs` (0.0 if none); NaN if any is NaN: a broken value wins, it is what
    the explorer's overlay must show (its magnitudes, and the share records' share_mag)."""
    mags = array('d', map(abs, xs))
    return math.nan if any(map(math.isnan, mags)) else max(mags, default=0.0)


def magnitudes_of(fig, gs, ds):
    """(largest |grad|, largest |grad x data|) of values whose Figures are `fig`, grads `gs` and data `ds`
    (NaN if any is: largest_magnitude), what the explorer's overlay colours a group by. When the grads are
    all finite (a finite L2 norm: the larger |grad_min|, |grad_max| is the largest |grad|) and the data too,
    no product is NaN (finite x finite never is): the largest |grad x data| is taken as they come."""
    if math.isfinite(fig.grad_norm) and all(map(math.isfinite, ds)):
        return max(abs(fig.grad_min), abs(fig.grad_max)), max(map(abs, map(mul, gs, ds)), default=0.0)
    return largest_magnitude(gs), largest_magnitude(map(mul, gs, ds))


def cell_shares(cells, parts):
    """{cell: share} in the order of `cells` (ascending, each cell's parts together): each
    cell's parts summed (fsum), one part as itself but a negative zero as 0.0 (what fsum
    gives: -0.0 + 0.0 is 0.0, any other x + 0.0 is x)."""
    if all(map(lt, cells, islice(cells, 1, None))):
        # one part a cell (a token view reads each cell once): the parts themselves, in C
        return dict(zip(cells, map(add, parts, repeat(0.0))))
    bounds = [0, *compress(count(1), map(ne, islice(cells, 1, None), cells)), len(cells)]
    starts = islice(bounds, 0, len(bounds) - 1)
    try:    # math.fsum of each cell's slice of parts, in C (of one part: itself, -0.0 as 0.0)
        return dict(zip(map(cells.__getitem__, starts),
                        map(math.fsum, map(parts.__getitem__, map(slice, bounds, islice(bounds, 1, None))))))
    except (ValueError, OverflowError):     # inf + -inf, or past the largest double: sums.fsum's answer
        return {cells[a]: fsum(parts[a:b]) for a, b in zip(bounds, islice(bounds, 1, None))}
