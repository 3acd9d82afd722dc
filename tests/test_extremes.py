"""recording.extremes: the k largest |values| (NaN first, ties by index), against the definition written here
(a sort of every index), on arrays where the sampled bound matters: ties at the k-th value, zeros, infinities,
negative values, a NaN, the largest values all between the sampled ones."""

import math
import random
from array import array

import pytest

from microgpt.recording.extremes import STRIDE, largest, largest_contribs, largest_grads


def _want(values, k):
    key = [(math.inf if v != v else abs(v)) for v in values]
    return sorted(range(len(values)), key=lambda i: (-key[i], i))[:k]


def _arrays():
    rng = random.Random(7)
    n = 50 * STRIDE
    yield 'gauss', array('d', (rng.gauss(0, 1) for _ in range(n)))
    yield 'ties', array('d', (rng.choice([0.0, 1.5, -1.5, 2.0, -2.0]) for _ in range(n)))
    yield 'zeros', array('d', [0.0] * n)
    big = array('d', (rng.random() for _ in range(n)))
    for j in range(1, n, STRIDE):       # the largest never sampled (every STRIDE-th from 0 is)
        big[j] = 10.0 + rng.random()
    yield 'largest-between-samples', big
    inf = array('d', (rng.uniform(-1, 1) for _ in range(n)))
    inf[5], inf[17], inf[64 * 3] = math.inf, -math.inf, -math.inf
    yield 'infinities', inf
    nan = array('d', (rng.uniform(-1, 1) for _ in range(n)))
    nan[900] = math.nan
    yield 'nan', nan
    yield 'short', array('d', [3.0, -4.0, 1.0])


@pytest.mark.parametrize('name,values', list(_arrays()), ids=[a for a, _ in _arrays()])
@pytest.mark.parametrize('k', [1, 10, 100])
def test_the_largest_are_those_of_the_definition(name, values, k):
    assert largest(values, k) == _want(values, k)


def test_largest_grads_and_contribs_of_a_step(recorded_christopher):
    t = recorded_christopher
    assert [i for i, _ in largest_grads(t, 20)] == _want(t.grad, 20)
    assert [e for _, _, e, _ in largest_contribs(t, 20)] == _want(t.contrib, 20)
