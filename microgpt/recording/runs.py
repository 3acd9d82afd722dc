"""Runs of consecutive node ids: a view is mostly a few long runs (a position's ops are made
one after another), and a run's edges are one slice of each of the trace's edge columns."""

from itertools import count, groupby
from operator import sub


def id_runs(ids):
    """[(a, b)]: the maximal ranges a..b-1 of consecutive ids in the sorted list `ids`
    (ids[k] - k is constant along a run: grouped in C, not per id in Python)."""
    out, k = [], 0
    for _, run in groupby(map(sub, ids, count())):
        n = len(list(run))
        out.append((ids[k], ids[k] + n))
        k += n
    return out
