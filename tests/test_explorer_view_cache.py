"""The explorer's view cache at rest (graphviz_export.web.explorer.cache): a stored view keeps its
ids compact (arrays, runs as two arrays), answers every endpoint exactly as the view it was drawn
as, is sized as the memory it really holds, and what drawing it and answering freed goes back to
the system. The Api as the server and the notebook widget call it (answer), real traces."""

import gc
import json
import time
import tracemalloc
import weakref
from array import array

import pytest

import graphviz_export.web.explorer.cache as cache_module
import graphviz_export.web.explorer.server as server_module
from graphviz_export.view import View, build_view
from graphviz_export.web.explorer.api import Api
from graphviz_export.web.explorer.cache import Ids, Runs, compact, give_back
from graphviz_export.web.explorer.recordings import Recordings
from microgpt.recording import Trace, record_step
from microgpt.recording.runs import gather, id_runs, run_total
from microgpt.train import fresh_model
from tests.explorer_helpers import get_json, running_server

# a token at two levels, a layer, a matrix's scattered uses, one cell's uses, the
# whole document, a node's neighbourhood: every kind of id container a view holds
VIEWS = ('view=token&token=2', 'view=token&token=2&level=vector', 'view=layer&layer=0&token=3&level=vector',
         'view=param&param=layer0.mlp_fc1', 'view=param&param=layer0.attn_wq[3][5]', 'view=doc',
         'view=node&node=loss&level=scalar')
# a played run's steps drawn on its layout (its labels read the stored runs again): /api/play too
PLAYED = ('view=param&param=layer0.mlp_fc1&train=2&tdoc=emma', 'view=token&token=2&level=vector&train=3&tdoc=emma')
NAMES = 'emma\nolivia\nava\nisabella\nsophia\n'


@pytest.fixture(scope='module')
def recordings(tmp_path_factory):
    names = tmp_path_factory.mktemp('names') / 'names.txt'
    names.write_text(NAMES)
    got = Recordings(doc='emma', cache=False, data=str(names))
    got.get(got.key({}))
    return got


def _answer(api, endpoint, query):
    status, body, _, _ = api.answer(endpoint, query)
    assert status == 200, (endpoint, query, body[:300])
    if endpoint != 'view':
        return body
    got = json.loads(body)
    got.pop('ms')           # the time it took
    got.pop('cached')       # whether the LRU answered
    return got


def _node_ids(api, query):
    """A few ids the view draws: its scalars and the first id of each group."""
    nodes = _answer(api, 'view', query)['nodes']
    return sorted({d['id'] for d in nodes.values() if 'id' in d})[:6] or [0]


def _played(api, query):
    """A played step's view and the next steps' numbers on its layout."""
    return {'view': _answer(api, 'view', query), 'play': _answer(api, 'play', f'{query}&steps=2'),
            'again': _answer(api, 'view', query)}


def _everything(api, query):
    """Every answer of `query`'s view: the view (asked twice: drawn, then from the cache), its exports,
    its step-through both ways, a search outlined in it, and the side panel of some of its nodes."""
    got = {'view': _answer(api, 'view', query), 'again': _answer(api, 'view', query)}
    for fmt in ('json', 'dot', 'svg'):
        got[fmt] = _answer(api, 'export', f'{query}&fmt={fmt}')
    for mode in ('backward', 'forward'):
        got[mode] = _answer(api, 'frames', f'{query}&mode={mode}')
    got['hl'] = _answer(api, 'view', f'{query}&hl=max:grad')
    for i in _node_ids(api, query):
        got[f'node {i}'] = _answer(api, 'node', f'{query}&id={i}')
    return got


def _pair(x):
    return type(x) is tuple and len(x) == 2 and type(x[0]) is int and type(x[1]) is int


def _big_id_tuples(obj, seen=None):
    """Tuples or lists of more than 16 plain ints, or of id pairs (runs), reachable from `obj`
    (not through a Trace)."""
    seen, found, stack = set() if seen is None else seen, [], [obj]
    while stack:
        o = stack.pop()
        if id(o) in seen or isinstance(o, (Trace, str, bytes, int, float, type)):
            continue
        seen.add(id(o))
        if isinstance(o, (tuple, list)) and len(o) > 16 and (all(type(x) is int for x in o) or all(map(_pair, o))):
            found.append(len(o))
        elif isinstance(o, dict):
            stack.extend(o.values())
        elif isinstance(o, (tuple, list, set, frozenset)):
            stack.extend(o)
        elif hasattr(o, '__dict__'):
            stack.append(vars(o))
    return found


def test_a_stored_view_answers_every_endpoint_as_the_view_drawn_without_compacting(recordings, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(cache_module, 'compact', lambda entry: entry)         # the tuples kept as drawn
        plain = Api(recordings)
        want = {q: _everything(plain, q) for q in VIEWS} | {q: _played(plain, q) for q in PLAYED}
    api = Api(recordings)
    for q in VIEWS:
        assert _everything(api, q) == want[q], q
    for q in PLAYED:
        assert _played(api, q) == want[q], q
    # and they were compact once settled (the server's after each answer): no tuple of ids left in a stored
    # view, far fewer bytes than as drawn
    api.views.settle()
    for key, (entry, _own, _) in api.views._entries.items():
        assert _big_id_tuples(entry['view']) == [], key
    drawn, stored = (sum(cache_module.deep_bytes(entry['view'], traces={}) for entry, _, _ in a.views._entries.values())
                     for a in (plain, api))
    assert _big_id_tuples(next(iter(plain.views._entries.values()))[0]['view']) != []
    assert stored < 0.6 * drawn, (stored, drawn)


def test_the_bytes_the_cache_counts_are_the_bytes_its_entries_hold(recordings):
    api = Api(recordings)
    for q in VIEWS:             # the trace's own caches (names, indexes) made now, not while measuring
        api.answer('view', q)
    api.views.clear()
    api.views.limit = 1 << 40
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for q in VIEWS:
            api.answer('view', q)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    counted = api.views.bytes - sum(t[1] for t in api.views._traces.values())    # the entries' own
    assert len(api.views) == len(VIEWS) and held > 2_000_000
    assert 0.95 * held <= counted <= 1.15 * held, (counted, held)


def test_the_cache_keeps_at_most_its_bound_of_real_entries(recordings):
    api = Api(recordings)
    api.answer('view', VIEWS[0])
    api.views.settle()          # (the HTTP server's, once the answer is sent)
    (entry, own, _), = api.views._entries.values()
    api.views.limit = 3 * own          # the recording's trace is the recordings' to keep: not counted
    for q in VIEWS:
        api.answer('view', q)
        assert api.views.counted <= api.views.limit or len(api.views) == 1
    assert 1 <= len(api.views) < len(VIEWS)


def test_going_back_to_a_view_of_a_step_bigger_than_the_cache_answers_from_the_cache(recordings):
    """A trace the recordings keep is not counted against the cache's bound (an entry holding it frees
    none of it): a bound below the trace's own size still keeps views. Counted, a 5.1 M-node step's
    trace (~530 MB against 256 MiB) left room for the newest view alone: Back drew every view again."""
    api = Api(recordings)
    api.answer('view', VIEWS[0])
    trace_bytes = api.views.bytes - api.views._own
    api.views.limit = trace_bytes // 2
    answers = [json.loads(api.answer('view', q)[1]) for q in VIEWS[1:3]]
    assert not any(a['cached'] for a in answers) and api.views.counted < api.views.limit < api.views.bytes
    layouts = api.layouts
    again = json.loads(api.answer('view', VIEWS[0])[1])         # back to the first view
    assert again['cached'] and api.layouts == layouts and len(api.views) == 3


def test_a_trace_the_recordings_keep_is_measured_only_once_it_counts(recordings, monkeypatch):
    """Sizing a 5.1 M-node step's trace took ~0.3 s of its first view, for a number that counts for
    nothing while the recordings keep the trace: it is measured once they let it go, and then counted."""
    api = Api(recordings)
    sized = []
    real = cache_module.deep_bytes
    monkeypatch.setattr(cache_module, 'deep_bytes',
                        lambda obj, *a, **kw: sized.append(obj) or real(obj, *a, **kw))
    api.answer('view', VIEWS[0])
    api.views.settle()          # (the HTTP server's, once the answer is sent)
    (entry, own, _), = api.views._entries.values()
    trace = entry['trace']
    assert isinstance(trace, Trace) and trace in recordings.held()
    assert not any(o is trace for o in sized) and api.views.counted == own
    api.views._held = lambda: []           # the recordings let it go: it counts, measured now, once
    assert api.views.counted == own + real(trace) == api.views.counted
    assert sum(o is trace for o in sized) == 1


def test_runs_read_as_the_list_of_pairs_they_keep():
    ids = array('q', [3, 4, 5, 9, 12, 13])
    pairs = id_runs(list(ids))
    for runs in (Runs.of(pairs, ids), Runs(array('q', [a for a, _ in pairs]), array('q', [b for _, b in pairs]))):
        assert list(runs) == pairs == [(3, 6), (9, 10), (12, 14)] and len(runs) == 3
        assert runs[1] == (9, 10) and runs[-1] == (12, 14) and list(runs[1:]) == pairs[1:]
        assert run_total(runs) == 6 and list(gather(array('d', range(20)), runs)) == [3, 4, 5, 9, 12, 13]
    single = array('q', [2, 7, 11])                     # every run one id: the ids are the starts
    runs = Runs.of(id_runs(list(single)), single)
    assert runs.starts is single and runs.ends is None
    assert list(runs) == [(2, 3), (7, 8), (11, 12)] and runs[2] == (11, 12) and list(runs[:1]) == [(2, 3)]


def test_ids_read_as_the_tuple_they_keep():
    want = (*range(100, 140), 200, *range(300, 320))
    ids = Ids(id_runs(want))
    assert tuple(ids) == want and len(ids) == len(want) and ids == want and list(ids.runs) == id_runs(want)
    assert [ids[k] for k in range(-len(want), len(want))] == [*want, *want]
    assert ids[:1] == (100,) and ids[38:43] == want[38:43] and ids[::7] == want[::7]
    for x in (99, 100, 139, 140, 199, 200, 201, 300, 319, 320, None, 'n100'):
        assert (x in ids) == (x in want) and ids.count(x) == want.count(x), x
    assert [ids.index(x) for x in (100, 139, 200, 300, 319)] == [want.index(x) for x in (100, 139, 200, 300, 319)]
    for bad in (-len(want) - 1, len(want)):
        with pytest.raises(IndexError):
            ids[bad]
    with pytest.raises(ValueError):
        ids.index(150)
    assert set(ids) == set(want) and sorted(ids) == list(want) and min(ids) == 100 and max(ids) == 319


def test_a_long_tuple_is_kept_as_runs_or_as_an_array_and_never_reordered():
    from graphviz_export.web.explorer.cache import _ids
    runs_of_ids = tuple(range(1000, 1100))
    assert isinstance(_ids(runs_of_ids, ordered=True), Ids) and tuple(_ids(runs_of_ids, ordered=True)) == runs_of_ids
    scattered = tuple(range(1000, 1200, 2))
    assert isinstance(_ids(scattered, ordered=True), array) and tuple(_ids(scattered)) == scattered
    shuffled = (*range(1050, 1100), *range(1000, 1050))      # not ascending: its order kept
    assert tuple(_ids(shuffled)) == shuffled and tuple(_ids(shuffled, ordered=True)) == shuffled
    assert isinstance(_ids(shuffled, ordered=True), array)   # its runs' ends in place, but not ascending
    assert _ids((1, 2, 3)) == (1, 2, 3) and _ids(tuple('abcdefghijklmnopqrs')) == tuple('abcdefghijklmnopqrs')


def test_a_matrix_views_cells_then_scattered_uses_are_an_array_without_making_their_runs(monkeypatch):
    # a matrix view's selection: its cells (one run, the first ids) then its uses, scattered: the first
    # ids alone look like runs; their runs are counted in C, not made (a tuple each: 55 ms at 5.1 M nodes)
    from graphviz_export.web.explorer.cache import _ids
    cells_then_uses = (*range(1000, 1300), *range(5000, 5000 + 2 * 2000, 2))
    made = []
    monkeypatch.setattr(cache_module, 'id_runs', lambda xs: made.append(len(xs)) or id_runs(xs))
    got = _ids(cells_then_uses, ordered=True)
    assert isinstance(got, array) and tuple(got) == cells_then_uses
    assert made == [256, 256]       # the first and last ids' runs only (the probes), not all 2,300
    # a token's ids (a few long runs, some scattered ones between) end in a run: not counted (a document's 2.2 M
    # ids: 80 ms), their runs made by galloping as before; a matrix view's end scattered: counted once
    counted, real_count = [], cache_module._run_count
    monkeypatch.setattr(cache_module, '_run_count', lambda xs: counted.append(len(xs)) or real_count(xs))
    token = (*range(1000, 1300), *range(1400, 1500, 2), *range(2000, 3000))
    assert isinstance(_ids(token, ordered=True), Ids) and tuple(_ids(token, ordered=True)) == token and counted == []
    assert isinstance(_ids(cells_then_uses, ordered=True), array) and counted == [len(cells_then_uses)]
    few_runs = (*range(1000, 1300), *range(5000, 5400), *range(9000, 9002))      # a few long runs: Ids
    got = _ids(few_runs, ordered=True)
    assert isinstance(got, Ids) and tuple(got) == few_runs and list(got.runs) == id_runs(few_runs)
    one_short = (*range(1000, 1300), *range(5000, 5000 + 2 * 98, 2))      # 99 runs of 398 ids: as Ids still
    assert isinstance(_ids(one_short, ordered=True), Ids) and tuple(_ids(one_short, ordered=True)) == one_short
    over = (*range(1000, 1300), *range(5000, 5000 + 2 * 99, 2))     # 100 runs of 399 ids (> 1 in 4): an array
    assert isinstance(_ids(over, ordered=True), array) and tuple(_ids(over, ordered=True)) == over


def test_compacting_a_view_changes_no_number_it_shows(recordings):
    trace = recordings.get(recordings.key({}))
    for kw in ({'token': 2, 'level': 'vector'}, {'param': 'layer0.mlp_fc1'}):
        drawn, kept = build_view(trace, **kw), build_view(trace, **kw)
        assert isinstance(kept, View)
        before = [(tuple(n.ids), tuple(n.values), list(n.runs), list(n.value_runs)) for n in kept.folded.nodes]
        sel = kept.selection
        shared = [tuple(n.values) == tuple(n.ids) for n in kept.folded.nodes]  # a group's values its ids (or equal)
        compact({'view': kept})
        assert [n.values is n.ids for n in kept.folded.nodes] == shared and any(shared)      # kept once
        assert kept.folded.selection is kept.selection and kept.selection.title == sel.title
        assert tuple(kept.selection.nodes) == sel.nodes and tuple(kept.selection.inputs) == sel.inputs
        assert [(tuple(n.ids), tuple(n.values), list(n.runs), list(n.value_runs))
                for n in kept.folded.nodes] == before
        assert kept.to_json() == drawn.to_json() and kept.source == drawn.source


def test_a_matrix_views_single_uses_keep_no_pair_each_drawn_nor_stored(recordings):
    """The fold gives a use group of single ids (no two consecutive) its runs as Runs over its ids, no pair
    made each (393,000 of them at 5.1 M nodes); stored, they are Runs over its array, not over the tuple too."""
    trace = recordings.get(recordings.key({}))
    kept = build_view(trace, param='layer0.mlp_fc1')
    single = [n for n in kept.folded.nodes if n.kind == 'group' and len(n.ids) > 16 and len(id_runs(n.ids)) == len(n.ids)]
    assert len(single) >= 2 * len(trace.positions())       # each position's uses and outputs
    for n in single:
        assert isinstance(n.runs, Runs) and n.runs.ends is None and n.runs.starts is n.ids
        assert list(n.runs) == id_runs(n.ids) and n.value_runs is n.runs
    compact({'view': kept})
    for n in single:
        assert isinstance(n.ids, array) and n.values is n.ids
        assert n.runs.starts is n.ids and n.value_runs is n.runs and list(n.runs) == id_runs(list(n.ids))


def test_drawing_a_view_leaves_no_cycle_holding_its_ids(recordings):
    # draw's nested recursive function held its own closure: the whole view (its selection's ids)
    # stayed until Python's next full collection, resident meanwhile
    trace = recordings.get(recordings.key({}))
    gc.collect()
    gc.disable()
    try:
        view = build_view(trace, param='layer0.mlp_fc1')
        refs = [weakref.ref(view.selection), weakref.ref(view.folded), weakref.ref(view.digraph)]
        del view
        assert [r() for r in refs] == [None, None, None]
    finally:
        gc.enable()


def _rss_kb():
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) for line in f if line.startswith('VmRSS'))


@pytest.mark.skipif(cache_module._malloc_trim() is None, reason='give_back needs glibc (malloc_trim)')
def test_give_back_returns_freed_heap_pages_to_the_system():
    # blocks of 2 KB (the C heap, not Python's small-object arenas), all freed but the last one,
    # which keeps the heap's top where it was: freed, they stay resident until given back
    blocks = [bytearray(2000) for _ in range(60_000)]
    for b in blocks:
        b[::512] = b'\x01' * len(b[::512])         # touched: really resident
    keep = blocks[-1]
    del blocks
    gc.collect()
    before = _rss_kb()
    give_back()
    after = _rss_kb()
    assert before - after > 60_000, (before, after)  # > 60 MB of the ~120 MB freed
    assert keep[0] == 1


def test_the_server_gives_back_after_a_big_answer_only(monkeypatch):
    calls = []
    monkeypatch.setattr(server_module, 'give_back', lambda: calls.append(1))
    monkeypatch.setattr(server_module, 'BIG_ANSWER', 50_000)
    with running_server(doc='emma') as s:
        status, body = get_json(s, '/api/view?view=param&param=layer0.mlp_fc1')
        assert status == 200 and len(json.dumps(body)) > 50_000
        # given back once the answer is sent: the request's thread may still be on it when the client has read it all
        deadline = time.monotonic() + 5
        while not calls and time.monotonic() < deadline:
            time.sleep(0.01)
        assert calls == [1]
        status, _ = get_json(s, '/api/progress')
        assert status == 200 and calls == [1]


def test_a_view_put_later_counts_once_settled_and_is_evicted_then():
    """put(later=True) keeps the entry at once but measures it at the next settle() or later put: until then it
    counts for nothing; settling measures it and drops the oldest entries while over the limit."""
    cache = cache_module.ViewCache(limit=3_500_000)
    for k in range(4):
        cache.put(k, {'svg': 'x' * 1_000_000 + str(k)}, later=True)
    # each later put measured the one before it: three measured (3 MB, within the limit), the newest not yet
    assert [own is None for _, own, _ in cache._entries.values()] == [False, False, False, True]
    assert list(cache) == [0, 1, 2, 3]
    cache.settle()
    assert list(cache) == [1, 2, 3] and 3_000_000 < cache.bytes <= cache.limit
    assert all(own is not None for _, own, _ in cache._entries.values())


def test_the_server_measures_a_view_it_drew_once_its_answer_is_sent():
    """A view drawn for a request is put in the cache unmeasured (walking a 5.1 M-node step's folded view costs
    30-70 ms) and measured by the server once the answer is written, not left for the next view."""
    with running_server(doc='emma') as s:
        status, _ = get_json(s, '/api/view?view=token&token=2')
        assert status == 200
        deadline = time.monotonic() + 5
        while any(own is None for _, own, _ in s.api.views._entries.values()) and time.monotonic() < deadline:
            time.sleep(0.01)
        owns = [own for _, own, _ in s.api.views._entries.values()]
        assert len(owns) >= 1 and all(own is not None and own > 10_000 for own in owns), owns


def test_a_recording_keeps_no_contribution_column_and_every_answer_that_read_it_is_the_same():
    # the run and share records read the whole column while the indexes are built (8 bytes an edge,
    # ~80 MB at 5 M nodes); kept, a recorded step held it and a step from the user cache did not
    params, config, tok = fresh_model(42)
    lean = record_step(params, config, tok, 'emma')
    assert 'contrib' not in lean._cache
    full = Trace.from_binary(lean.to_binary())
    assert len(full.contrib) == len(full.child) and 'contrib' in full._cache       # the column, kept
    i = lean.meta['loss_id'] - 1
    assert lean.uses(i) == full.uses(i)             # the side panel's uses: each edge's own product
    apis = [Api(Recordings(trace=t)) for t in (lean, full)]
    views = [_answer(api, 'view', 'view=token&token=2&level=vector') for api in apis]
    assert views[0] == views[1] and 'contrib' not in lean._cache   # a view's edges: their own products
    for q in ('view=token&token=2&level=vector', 'view=param&param=layer0.mlp_fc1'):
        got = [_everything(api, q) for api in apis]     # the step-through makes the column again
        assert got[0] == got[1], q
    searched = [_answer(api, 'search', 'q=max:contrib') for api in apis]
    assert searched[0] == searched[1] and b'"rows": []' not in searched[0]
    assert lean.contributions(i) == full.contributions(i)
