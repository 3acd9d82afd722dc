"""Whole-column facts the checks of a loaded trace ask (validate.py, stored.py), each one pass of
numpy over a column's own bytes (no copy): a Python-level pass (min, max, all over a map) costs
15-60 ns an entry, and those passes were 2.1 of the 2.8 CPU seconds a 5.1 M-node step's load took.
Only the yes or no is asked here; a check that gets a no looks for the first bad entry in Python, to
name it in its one line.

Columns are array.array (their typecode is numpy's dtype character)."""

PIECE = 1 << 20     # edges a pass of children_before (its temporaries: 16 MB, not 16 bytes an edge)


def load_numpy():
    import numpy  # ~0.1 s to import: paid when a trace is checked, not by every command's start
    return numpy


def numpy_view(col):
    """The column (an array.array) as a numpy array over its own bytes: no copy."""
    return load_numpy().frombuffer(col, dtype=col.typecode)


def bounds(col):
    """(least, greatest) entry of a non-empty column."""
    v = numpy_view(col)
    return v.min().item(), v.max().item()


def rising(col, strict=False):
    """Each entry at least (strict: more than) the one before it."""
    v = numpy_view(col)
    return bool((v[1:] > v[:-1] if strict else v[1:] >= v[:-1]).all())


def running_sum(counts, ptr):
    """ptr is 0 then the running sum of `counts` (bytes: one count a node)."""
    np, v = load_numpy(), numpy_view(ptr)
    return (len(v) == len(counts) + 1 and v[0] == 0
            and bool(np.array_equal(np.cumsum(np.frombuffer(counts, np.uint8), dtype=np.int64), v[1:])))


def children_before(ptr, child):
    """Every child c of edge k is a node id with ptr[c + 1] <= k (validate._edges: c is an earlier node,
    or a leaf with no children of its own)."""
    np, after, kids = load_numpy(), numpy_view(ptr)[1:], numpy_view(child)
    for a in range(0, len(kids), PIECE):
        part = kids[a:a + PIECE]
        if part.min() < 0 or part.max() >= len(after) or not (after[part] <= np.arange(a, a + len(part))).all():
            return False
    return True
