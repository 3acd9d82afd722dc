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


def gather(column, runs):
    """column[a:b] for each run (a, b), concatenated: an array, in id order."""
    out = column[runs[0][0]:runs[0][1]]
    for a, b in runs[1:]:
        out += column[a:b]
    return out
