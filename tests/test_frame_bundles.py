"""The backward frames' bundles read per run in C (steps.frame_bundles) are the plain edge walk's: the same
counts, last edges, local sums, parts in the same order and per-child sums, bit for bit, on views of every
level; and the frames are built from them."""

import json
import math
import struct

import pytest

from graphviz_export.steps import frame_bundles
from graphviz_export.steps import frames as frames_mod
from graphviz_export.steps.frames import _owner, frames, visible_graph
from graphviz_export.view import build_view

VIEWS = [
    {'token': 11, 'level': 'block'},
    {'token': 11, 'level': 'vector'},
    {'token': 3},
    {'layer': 0},
    {'layer': 0, 'head': 2, 'token': 5},
    {'layer': 0, 'head': 1, 'token': 4, 'level': 'scalar', 'budget': 2000, 'edge_budget': 4000},
    {'param': 'wte'},
    {'param': 'layer0.attn_wq[3][5]'},
    {'node': 'loss', 'depth': 4, 'level': 'scalar'},
]
IDS = [','.join(f'{k}={v}' for k, v in kw.items()) for kw in VIEWS]


def edge_walk(trace, folded, names, owner, raw=False):
    """The plain edge walk the frames once did (one Python step per scalar edge), as the reference; `raw`:
    each bundle's parts as (rank, parent, contribution), else their contributions (what frames read)."""
    nodes = {n.name: n for n in folded.nodes}
    rank, ptr, child, local = trace.backward_rank, trace.child_ptr, trace.child, trace.local
    bundles = {}
    for name in names:
        n = nodes[name]
        if n.side == 'input':
            continue
        for a, z in n.runs:
            contrib, base = trace.contrib_slice(a, z), ptr[a]
            for p in range(a, z):
                rp = rank[p]
                for e in range(ptr[p], ptr[p + 1]):
                    c = child[e]
                    src = owner.get(c)
                    if src is None or src == name:
                        continue
                    b = bundles.get((src, name))
                    if b is None:
                        b = bundles[(src, name)] = [0, 0.0, [], None, {}]
                    b[0] += 1
                    b[1] += local[e]
                    b[3] = (p, e)
                    if rp >= 0:
                        b[2].append((rp, p, contrib[e - base]))
                        b[4][c] = b[4].get(c, 0.0) + contrib[e - base]
    for key, b in bundles.items():
        b[2].sort()
        if not raw:
            bundles[key] = figures_of(b[0], b[1], [c for _, _, c in b[2]], b[4].values(), b[3])
    return bundles


def figures_of(count, local, parts, per_child, last):
    """The Figures a frame reads, from a bundle's parts in the engine's order and what each child received,
    the plain way: their sum from 0.0, the norm of the per-child sums, the signs from every part."""
    total = 0.0
    for c in parts:
        total += c
    values = list(per_child)
    if any(map(math.isnan, parts)):
        signs = 'nan'
    elif all(c == 0 for c in parts):
        signs = '0'
    elif all(c >= 0 for c in parts):
        signs = '+'
    elif all(c <= 0 for c in parts):
        signs = '-'
    else:
        signs = 'mixed'
    return frame_bundles.Figures(count, local, total, math.sqrt(math.fsum(v * v for v in values)), signs,
                                 len(parts), last)


def bits(x):
    return struct.pack('<d', x)


def exact(b):
    """A bundle's Figures with every float as its bytes (0.0 and -0.0 differ)."""
    return tuple(bits(x) if isinstance(x, float) else x for x in b.as_tuple())


@pytest.mark.parametrize('kw', VIEWS, ids=IDS)
def test_bundles_read_per_run_are_the_edge_walks_bit_for_bit(kw, recorded_christopher):
    trace = recorded_christopher
    folded = build_view(trace, **kw).folded
    names, _, _ = visible_graph(folded)
    owner = _owner(folded)
    want = edge_walk(trace, folded, names, owner)
    got = frame_bundles.edge_bundles(trace, folded, names, owner)
    assert want, kw
    assert sorted(got) == sorted(want)
    for key, b in want.items():
        assert exact(got[key]) == exact(b), key


def test_the_check_tells_the_engine_order_from_edge_order(recorded_christopher):
    """The sums compared above would differ if added in edge order, not backward's: the data can tell."""
    trace = recorded_christopher
    folded = build_view(trace, token=11, level='block').folded
    names, _, _ = visible_graph(folded)
    differ = 0
    for (_src, _dst), (_, _, parts, _, _) in edge_walk(trace, folded, names, _owner(folded), raw=True).items():
        engine = 0.0
        for _, _, c in parts:
            engine += c
        by_edge = 0.0
        for _, _, c in sorted(parts, key=lambda t: t[1]):      # parent id order: the edges' order
            by_edge += c
        differ += bits(engine) != bits(by_edge)
    assert differ > 0


def test_every_way_of_splitting_a_run_among_its_sources_are_exercised_and_used(recorded_christopher, monkeypatch):
    """Frames build on edge_bundles (not a walk of their own), and the views above take both of its ways to
    split a run's edges (all of one source, the crossing ones of one source, a mask per source or, for many, one
    loop), so each is checked."""
    seen, calls = set(), []
    split, bundles = frame_bundles._split, frame_bundles.edge_bundles

    def spy_split(srcs, keys, name):
        seen.add('all' if len(keys) == 1 and srcs.count(next(iter(keys))) == len(srcs) else
                 'one' if len(keys) == 1 else 'masked' if len(keys) <= frame_bundles.MASKS else 'looped')
        return split(srcs, keys, name)

    def spy_bundles(*args):
        calls.append(1)
        return bundles(*args)

    monkeypatch.setattr(frame_bundles, '_split', spy_split)
    monkeypatch.setattr(frames_mod, 'edge_bundles', spy_bundles)
    for kw in ({'token': 11, 'level': 'block'}, {'token': 11, 'level': 'vector'},
               {'layer': 0, 'head': 1, 'token': 4, 'level': 'scalar', 'budget': 2000, 'edge_budget': 4000}):
        fr = frames(build_view(recorded_christopher, **kw))
        assert any(f['edges'] for f in fr['frames'])
    assert len(calls) == 3
    assert seen == {'all', 'one', 'masked', 'looped'}


@pytest.mark.parametrize('kw', VIEWS[:3] + VIEWS[5:7], ids=IDS[:3] + IDS[5:7])
def test_frames_are_those_of_the_edge_walk(kw, recorded_christopher, monkeypatch):
    view = build_view(recorded_christopher, **kw)
    got = json.dumps(frames(view), sort_keys=True)
    monkeypatch.setattr(frames_mod, 'edge_bundles', edge_walk)
    assert got == json.dumps(frames(view), sort_keys=True)


def test_per_child_sums_are_the_loops_whether_children_repeat_in_one_order_or_not():
    """fold.bundles.add_to's per-child sums (each child's parts in edge order, from what it held): the
    children read again and again in one order (a matrix product's input) as strided slices, others
    sorted; both the plain loop's, bit for bit."""
    import random
    from array import array

    from graphviz_export.fold import bundles as fold_bundles
    rng = random.Random(5)
    periodic = 0
    for _ in range(300):
        p = rng.randrange(1, 9)
        first = rng.sample(range(100, 200), p)
        reps = rng.randrange(1, 6)
        cs = first * reps
        if rng.random() < 0.3:      # not periodic: one child changed, or a tail
            cs = cs + first[:rng.randrange(1, p + 1)] if rng.random() < 0.5 else cs[:-1] + [cs[0]]
        periodic += bool(fold_bundles._period(cs))
        gs = [rng.choice((1e16, -1e16, 1.0, -0.0, 0.1 * rng.random())) for _ in cs]
        held = {c: rng.random() for c in rng.sample(first, rng.randrange(0, p + 1))}
        want = dict(held)
        for c, g in zip(cs, gs):
            want[c] = want.get(c, 0.0) + g
        for col in (list, tuple, lambda xs: array('q', xs)):
            got = dict(held)
            fold_bundles._add_per_child(got, col(cs), gs)
            assert {c: bits(v) for c, v in got.items()} == {c: bits(v) for c, v in want.items()}, (cs, gs)
    assert 100 < periodic < 300
