"""Use records (recording.uses: a matrix's uses per run, their inputs, outputs and the outputs' bundle)
against a plain walk of the edges one by one: for every matrix of a recorded step, at every position,
the same ids, counts, and sums bit for bit; the rows a record's ids are stored as against their
definition."""

import math
import random

import pytest

from microgpt.data import Tokenizer
from microgpt.model import GPTConfig, init_params
from microgpt.recording.step import record_step
from microgpt.recording.uses import expand, periodic, use_records


def plain(t, name):
    """Per run holding uses of matrix `name`, in run order: what a walk of each edge finds."""
    a = t.param_base[name]
    rows, cols = t.param_shapes[name]
    cells = set(range(a, a + rows * cols))
    uses = sorted({p for c in cells for p in t.parents(c)})
    interior = cells | set(uses)
    starts = list(t.index('run_start'))
    by_run = {}
    for u in uses:
        r = max(k for k in range(len(starts) - 1) if starts[k] <= u)
        by_run.setdefault(r, []).append(u)
    got = []
    for r, us in sorted(by_run.items()):
        kids = sorted({c for u in us for c in t.children(u)} - interior)
        scopes = {}
        for u in us:
            for c in t.children(u):
                if c not in uses:
                    scopes[t.scope[c]] = scopes.get(t.scope[c], 0) + 1
        outs = sorted({p for u in us for p in t.parents(u)} - interior)
        count, local, contrib, per_child = 0, 0.0, 0.0, {}
        for o in outs:
            for c, lg, cg in zip(t.children(o), t.local_grads(o), t.contributions(o)):
                if c in interior:
                    count += 1
                    local += lg
                    contrib += cg
                    per_child[c] = per_child.get(c, 0.0) + cg
        norm = math.sqrt(math.fsum(v * v for v in per_child.values()))
        got.append({'run': r, 'uses': us, 'inputs': kids, 'scopes': sorted(scopes.items()), 'outputs': outs,
                    'out': (count, local.hex(), contrib.hex(), norm.hex(), len(per_child),
                            set(per_child) <= set(us))})
    return got


def stored(u, m):
    """The records of matrix m (its index in param_names) from the columns, ids made from their rows."""
    pats = u['pattern_ptr']

    def ids(side, k):
        p = u[f'{side}_pattern'][k]
        assert p >= 0
        offsets = tuple(u['pattern'][pats[p]:pats[p + 1]])
        return expand(u[f'{side}_n'][k], u[f'{side}_first'][k], u[f'{side}_period'][k], offsets)
    got = []
    for k in range(u['use_ptr'][m], u['use_ptr'][m + 1]):
        kp, sp = u['use_kid_ptr'], u['use_scope_ptr']
        got.append({'run': u['use_run'][k], 'uses': ids('use', k), 'inputs': list(u['use_kids'][kp[k]:kp[k + 1]]),
                    'scopes': list(zip(u['use_scopes'][sp[k]:sp[k + 1]], u['use_scope_n'][sp[k]:sp[k + 1]])),
                    'outputs': ids('out', k),
                    'out': (u['out_edges'][k], u['out_local'][k].hex(), u['out_contrib'][k].hex(),
                            u['out_norm'][k].hex(), u['out_kids'][k], bool(u['out_inside'][k]))})
    return got


@pytest.fixture(scope='module')
def one_position():
    tok = Tokenizer([chr(c) for c in range(97, 123)])
    config = GPTConfig(vocab_size=tok.vocab_size)
    return record_step(init_params(config, random.Random(7)), config, tok, 'q')


def test_use_records_are_a_plain_walk_of_the_edges(recorded_christopher, one_position):
    for t in (recorded_christopher, one_position):
        u = use_records(t)
        assert len(u['use_ptr']) == len(t.param_names) + 1
        for m, name in enumerate(t.param_names):
            want = plain(t, name)
            assert stored(u, m) == want, name
            assert len(want) == len(t.positions()), name        # a record a position: a run each
        assert len(u['use_run']) == len(t.param_names) * len(t.positions())


def test_records_are_small(recorded_christopher):
    """A record a matrix and position and a pattern a matrix and side: never an entry per use."""
    t = recorded_christopher
    u = use_records(t)
    uses = sum(u['use_n'])
    assert uses > 40_000
    assert sum(map(len, u.values())) < uses // 8
    assert len(u['pattern_ptr']) - 1 <= 2 * len(t.param_names)


def test_periodic_rows_and_what_is_not():
    ids = [10, 13, 15, 17, 43, 46, 48, 50]
    assert periodic(ids, (4,)) == (8, 10, 33, (0, 3, 5, 7))
    assert expand(8, 10, 33, (0, 3, 5, 7)) == ids
    assert periodic(ids, (3, 2)) == (8, 10, 0, None)        # no width that fits
    assert periodic(ids[:7], (4,)) == (7, 10, 0, None)      # rows cut short
    assert periodic(ids, (8,)) == (8, 10, 41, tuple(i - 10 for i in ids))   # one row
    assert periodic([5, 6, 7, 9], (2,)) == (4, 5, 0, None)   # the second row differs
    assert periodic([], (2,)) == (0, 0, 0, None)
