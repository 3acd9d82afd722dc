"""recording.runs: the runs of consecutive ids (found per run by galloping, not per id), the
scopes of a set of id ranges (read from the trace's runs of one scope), and the CSR entries of
rows (spans, repeats: strided copies when every row has as many), against brute force."""

import random
from array import array

from microgpt.recording.runs import SCATTERED, Runs, gather, id_runs, repeats, run_total, scopes_in, spans


def brute_runs(ids):
    out = []
    for i in ids:
        if out and out[-1][1] == i:
            out[-1][1] = i + 1
        else:
            out.append([i, i + 1])
    return [tuple(r) for r in out]


def test_id_runs_are_the_maximal_ranges_of_consecutive_ids():
    rng = random.Random(7)
    for _ in range(2000):
        n = rng.randrange(0, 80)
        ids = sorted(rng.sample(range(rng.randrange(n, 3 * n + 2)), n))
        assert id_runs(ids) == brute_runs(ids), ids
    assert id_runs(list(range(5, 1005)) + [2000]) == [(5, 1005), (2000, 2001)]
    assert id_runs((3, 4, 6)) == [(3, 5), (6, 7)] and id_runs([]) == []
    # many short runs (a matrix's scattered uses), then long ones: the breaks found in C take over
    for _ in range(200):
        ids = sorted(rng.sample(range(400), 150)) + list(range(1000, 1000 + rng.randrange(1, 50))) + [5000]
        assert id_runs(ids) == brute_runs(ids), ids


def test_scopes_in_are_the_scopes_of_the_ranges_nodes(recorded_christopher):
    tr = recorded_christopher
    rng = random.Random(3)
    for _ in range(50):
        ids = sorted(rng.sample(range(len(tr)), rng.randrange(1, 400)))
        runs = id_runs(ids) + [(rng.randrange(0, 1000), 1000 + rng.randrange(0, 20000))]
        want = {tr.scope[i] for a, b in runs for i in range(a, b)}
        assert scopes_in(tr, runs) == want
        assert scopes_in(tr, id_runs(ids)) == {tr.scope[i] for i in ids}     # scattered: read per node


def test_gather_is_each_runs_slice_concatenated():
    # few runs: slices added; many (a matrix's scattered uses): read in C, one id each or slices;
    # every way the same array, of the column's own type
    rng = random.Random(5)
    for typecode, make in (('d', lambda k: k * 0.5 - 3), ('l', lambda k: 7 * k - 1000), ('B', lambda k: k % 256)):
        column = array(typecode, map(make, range(3000)))
        for n in (1, 3, SCATTERED, SCATTERED + 1, 250):
            for longest in (1, 2, 9):
                starts = sorted(rng.sample(range(0, 3000 - 10, 10), n))
                runs = [(a, a + rng.randrange(1, longest + 1)) for a in starts]
                got = gather(column, runs)
                assert isinstance(got, array) and got.typecode == typecode
                assert got.tolist() == [column[i] for a, b in runs for i in range(a, b)], (typecode, n, longest)


def test_runs_of_single_ids_over_the_ids_read_as_their_pairs(recorded_christopher):
    # Runs(ids): a matrix's single uses at a position, no pair made each; gather, run_total and scopes_in
    # read them from the ids, the same as the pairs (many and few of them, a tuple or an array of ids)
    tr = recorded_christopher
    rng = random.Random(7)
    for n in (3, SCATTERED + 1, 500):
        ids = sorted(rng.sample(range(0, len(tr), 2), n))       # no two consecutive
        pairs = [(i, i + 1) for i in ids]
        for held in (tuple(ids), array('q', ids)):
            runs = Runs(held)
            assert list(runs) == pairs and run_total(runs) == n == run_total(pairs)
            for column in (tr.data, tr.op, tr.scope):
                got = gather(column, runs)
                assert got.typecode == column.typecode and got.tolist() == [column[i] for i in ids], n
            assert scopes_in(tr, runs) == {tr.scope[i] for i in ids} == scopes_in(tr, pairs)


def test_spans_and_repeats_are_each_rows_entries_in_order_whatever_the_counts(recorded_christopher):
    rng = random.Random(11)
    for _ in range(500):
        rows = rng.randrange(0, 30)
        same = rng.random()       # every row as many entries (the strided path), c or none (strided too), or any number
        c = rng.randrange(0, 4)
        counts = [c if same < 0.4 else rng.choice((0, c)) if same < 0.7 else rng.randrange(0, 4) for _ in range(rows + 5)]
        ptr = array('q', [0])
        for n in counts:
            ptr.append(ptr[-1] + n)
        ids = sorted(rng.sample(range(rows + 5), rows)) if rng.random() < 0.8 else rng.sample(range(rows + 5), rows)
        want = [k for i in ids for k in range(ptr[i], ptr[i + 1])]
        got, got_counts = spans(ptr, ids)
        assert (got, got_counts) == (want, [ptr[i + 1] - ptr[i] for i in ids]) and type(got) is list, (ptr, ids)
        assert repeats(ids, got_counts) == [i for i in ids for _ in range(ptr[i + 1] - ptr[i])]
    # a matrix's uses in a real trace: 2 children each (strided), their parents (any number)
    t = recorded_christopher
    a = t.param_base['layer0.mlp_fc1']
    pptr, parent, _ = t.parents_index()
    uses = sorted(set(parent[pptr[a]:pptr[a + 64]]))
    edges, counts = spans(t.child_ptr, uses)
    assert set(counts) == {2} and edges == [k for u in uses for k in range(t.child_ptr[u], t.child_ptr[u + 1])]
    assert spans(pptr, uses)[0] == [k for u in uses for k in range(pptr[u], pptr[u + 1])]


def test_ids_kept_as_runs_read_as_the_tuple_of_their_ids():
    """Ids (a whole document's selection, its groups' members) answer what the tuple of their ids
    answers: len, iteration, every slice, `in`, index, equality; id_runs, runs_of and all_single give
    its runs without walking its ids, slices_of of Ids held gives Ids of the same ids. Runs at id 0, at
    the last id, of one id, and one run of everything."""
    from microgpt.recording.runs import Ids, all_single, runs_of, slices_of
    shapes = [[(0, 3), (5, 6), (7, 12), (20, 21)], [(4, 5)], [(0, 40)], [(1, 2), (3, 4), (5, 6)],
              [(2, 9), (10, 11), (30, 64)]]
    for pairs in shapes:
        want = tuple(i for a, b in pairs for i in range(a, b))
        ids = Ids(Runs(array('q', [a for a, _ in pairs]), array('q', [b for _, b in pairs])))
        assert len(ids) == len(want) and tuple(ids) == want and ids == want and ids == list(want)
        n = len(want)
        for lo in range(-n - 1, n + 2):
            for hi in range(-n - 1, n + 2):
                assert ids[lo:hi] == want[lo:hi], (pairs, lo, hi)
            assert ids[lo::2] == want[lo::2] and ids[:lo] == want[:lo] and ids[lo:] == want[lo:]
        assert [ids[k] for k in range(-n, n)] == [want[k] for k in range(-n, n)]
        for i in range(-1, want[-1] + 3):
            assert (i in ids) == (i in want)
            assert i not in want or ids.index(i) == want.index(i)
        assert id_runs(ids) == id_runs(want) == runs_of(ids) and id_runs(ids) is ids.runs
        assert all_single(ids) == all_single(want)
        assert ids != want[:-1] and ids != (*want[:-1], want[-1] + 1)
        # the same ids as other runs (one cut in two) are equal; other ids of as many are not
        a, b = pairs[-1]
        if b - a > 1:
            cut = Ids([*pairs[:-1], (a, a + 1), (a + 1, b)])
            assert cut == ids and ids == cut
        # a key's members: slices of its side's ids (held), here of runs inside the held ones
        inner = [(a, b - 1) if b - a > 1 else (a, b) for a, b in pairs]
        got, plain = slices_of(ids, inner), slices_of(want, inner)
        assert tuple(got) == plain and (isinstance(got, Ids) or len(inner) == sum(b - a for a, b in inner))
    ids = Ids([(2, 4), (7, 8)])
    assert ids + (9,) == (2, 3, 7, 9) and (0,) + ids == (0, 2, 3, 7) and ids + ids == (2, 3, 7) * 2
