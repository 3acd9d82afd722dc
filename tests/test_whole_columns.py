"""codecs/whole.py: the whole-column facts a loaded trace is checked with, against their plain
Python definitions (random columns of every typecode the trace uses, piece boundaries of the
edges' pass included), and a damaged 5-piece edge column refused where the damage is."""

import random
from array import array
from itertools import accumulate

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microgpt.recording.codecs import whole
from microgpt.recording.codecs.validate import TraceFormatError, _edges

ints = st.lists(st.integers(-5, 40), max_size=60)


@given(ints, st.sampled_from('bhiqlBHIQL'))
def test_bounds_and_rising_are_min_max_and_order(values, code):
    if code in 'BHIQL':
        values = [abs(v) for v in values]
    if code in 'bB':
        values = [v % 100 for v in values]
    col = array(code, values)
    if values:
        assert whole.bounds(col) == (min(values), max(values))
        assert all(type(x) is int for x in whole.bounds(col))
    assert whole.rising(col) == all(a <= b for a, b in zip(values, values[1:]))
    assert whole.rising(col, strict=True) == all(a < b for a, b in zip(values, values[1:]))


@given(st.lists(st.integers(0, 2), max_size=40), st.integers(-1, 1), st.integers(0, 41))
def test_running_sum_is_the_offsets_of_the_counts(counts, nudge, at):
    ptr = array('q', accumulate(counts, initial=0))
    assert whole.running_sum(bytes(counts), ptr)
    if nudge and at < len(ptr):
        ptr[at] += nudge
        assert not whole.running_sum(bytes(counts), ptr)
    assert not whole.running_sum(bytes(counts) + b'\x01', array('q', accumulate(counts, initial=0)))


def _plain_before(ptr, child):
    n = len(ptr) - 1
    return all(0 <= c < n and ptr[c + 1] <= k for k, c in enumerate(child))


@settings(max_examples=200)
@given(st.data())
def test_children_before_is_every_child_earlier_in_every_piece(data):
    n = data.draw(st.integers(1, 30))
    counts = data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    ptr = array('q', accumulate(counts, initial=0))
    child = array('q', [data.draw(st.integers(-2, n + 1)) for _ in range(ptr[-1])])
    old = whole.PIECE
    try:
        whole.PIECE = data.draw(st.integers(1, 8))     # the pass in pieces: a bad child in any piece counts
        assert whole.children_before(ptr, child) == _plain_before(ptr, child)
    finally:
        whole.PIECE = old


def test_a_later_child_in_the_last_piece_is_refused_by_name(monkeypatch):
    """A chain of 5 pieces of edges (each node's child is the node before it): fine as made; one
    child pointing forward in the last piece is refused naming its node."""
    monkeypatch.setattr(whole, 'PIECE', 4)
    n = 20
    ptr = array('q', [0] + list(range(0, n)))        # node 0: no child; node p: one child, edge p - 1
    child = array('q', range(n - 1))
    _edges(ptr, child, n)
    assert whole.children_before(ptr, child)
    bad = array('q', child)
    bad[17] = 19                                      # node 18's child: node 19, which has a child
    with pytest.raises(TraceFormatError, match='node 18: child 19 is a later node'):
        _edges(ptr, bad, n)
    bad[17] = -1
    with pytest.raises(TraceFormatError, match=r'node 18: child -1 is not a node id \(0..19\)'):
        _edges(ptr, bad, n)


def test_a_big_random_column_agrees_with_python():
    rng = random.Random(7)
    col = array('q', sorted(rng.randrange(-10**12, 10**12) for _ in range(200_000)))
    assert whole.rising(col) and whole.bounds(col) == (col[0], col[-1])
    col[123_456], col[123_457] = col[123_457], col[123_456]
    assert not whole.rising(col) and whole.rising(col) == all(a <= b for a, b in zip(col, col[1:]))
