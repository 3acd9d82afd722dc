"""The explorer's drawn views, kept in an LRU bounded in bytes, not entries.

A cached view is small for a token of one recording (its SVG, ~100 KB) and large for a
comparison (it holds three traces of the document: before, after and their differences,
~14 MB each for a 16-position name), so a bound in entries let 70 comparisons take a server
to 3 GB. Here every entry is measured when stored (and again when its frames are added):

- its own objects: sys.getsizeof of everything reachable from it (the SVG and DOT text, the
  View with its selection and folding, the nodes, clicks and frames), containers and objects
  walked, each object once (big containers of plain numbers sized in one pass: deep_bytes);
- the traces it reaches (a recording, a comparison's three) are measured the same way, with
  their columns and derived indexes, but counted once for the whole cache however many
  entries share one, and uncounted when the last entry holding it goes.

A drawn view is kept compact (`compact`, when stored): its selection's and its nodes' ids in a
few long runs (a token's ops) as `Ids` (the runs: a few bytes), scattered ones (a matrix's uses)
as array('q') (8 bytes an id, not a tuple's pointer and int object, ~40), its nodes' runs of ids
as `Runs` (two arrays; none of their own when every run is one id: the ids are its starts). The
answers read them as they read the tuples (index, iterate, len, `in`, slices; tests/
test_explorer_view_cache.py: every endpoint answers the same bytes). At 4 x 64 (5.1 M nodes) a
matrix's uses is 23 MB at rest, not 146 MB; storing a token view takes ~30 ms, not ~150-250
(no int of a million checked or sized one by one). After an entry is stored, and after the
server sends a big answer, the C heap's free pages go back to the system (`give_back`): what a
view's build, its answer's text and a recording freed stays resident otherwise (~100-125 MB
after the benchmark's views of a 5.1 M-node step).

The total stays at most `limit` bytes (CACHE_BYTES, 256 MiB; the oldest entries go first; an
entry larger than the limit alone is kept, alone, until the next); a trace an entry holds counts
once, and not at all while the server's recordings keep it anyway (`held`: nor is it measured until
it counts). The Recordings' own LRUs
(4 recordings, 4 comparisons) are bounded in entries beside this: a document is at most
state.MAX_DOC characters, so each of those has a size bound of its own.
"""

import ctypes
import sys
import threading
from _thread import LockType
from array import array
from collections import OrderedDict
from dataclasses import replace
from functools import cache
from itertools import chain, islice, repeat
from operator import lt, ne, sub
from types import BuiltinFunctionType, FunctionType, MethodType, ModuleType

from microgpt.recording import Trace
from microgpt.recording.runs import Ids, Runs, id_runs

from ...view import View

CACHE_BYTES = 256 * 1024 * 1024
_LEAVES = (str, bytes, bytearray, int, float, complex, bool, type(None), array, range)
_SKIP = (type, ModuleType, FunctionType, BuiltinFunctionType, MethodType, LockType)
# a container of more than _BULK plain numbers (a selection's sets of node ids: a million at 4 x 64) is
# sized in C, its numbers each counted (not checked against `seen`: a number object shared with another
# container is counted twice, an overestimate, never an underestimate; so is a container of more than
# _BULK tuples of plain numbers, a VNode's runs of ids); walked one by one, such sets made measuring a
# view's entry ~1 s of CPU of each new view of a 4 x 64 step
_BULK = 256
_NUMBERS = {int, float}
_INT_FLOOR = sys.getsizeof(1)       # the least an int other than 0 takes (0 takes less)


def _numbers_bytes(o, kinds):
    """The bytes of the numbers in container `o`, an upper bound (exact for floats), when all are plain
    ints or floats, else None. An int's size grows with its magnitude only: all of them at the size of
    the largest |x| (max and min, in C) is a bound without sizing each (a 5 M-node step's view holds
    1.4 M ids in its tuples: ~0.15 s to size one by one, ~0.05 s so)."""
    if kinds == {int}:
        return len(o) * max(sys.getsizeof(max(o)), sys.getsizeof(min(o)), _INT_FLOOR)
    if kinds == {float}:
        return len(o) * sys.getsizeof(0.0)
    return sum(map(sys.getsizeof, o)) if kinds <= _NUMBERS else None


_COMPACT = 16       # a tuple of more ids than this is kept compact
_FEW = 4            # ids per run at least, kept as runs (Ids) rather than an array
_PROBE = 256        # ids whose runs tell a scattered tuple at once


def _ids(xs, runs=None, ordered=False):
    """`xs` (a tuple of node ids) kept compact when long: as Ids when it is a few long runs (`runs`,
    its runs if known; `ordered`: ascending by construction, its runs' ends checked, else all of it
    checked in C), else as array('q'); short, or not all ints: itself."""
    if not isinstance(xs, tuple) or len(xs) <= _COMPACT:
        return xs
    try:
        if ordered and runs is None and (_scattered(xs[:_PROBE]) or
                                         _scattered(xs[-_PROBE:]) and _run_count(xs) * _FEW > len(xs)):
            return array('q', xs)       # scattered (a matrix's uses, after its cells: counted): no runs made
        runs = id_runs(xs) if ordered and runs is None else runs
        if runs is not None and len(runs) * _FEW > len(xs):
            return array('q', xs)       # scattered: an array, whatever their order
        if not (ordered and _ends_match(xs, runs)):
            runs = id_runs(xs) if all(map(lt, xs, islice(xs, 1, None))) else None
        return Ids(runs) if runs is not None and len(runs) * _FEW <= len(xs) else array('q', xs)
    except (TypeError, OverflowError):
        return xs


def _scattered(xs):
    """Whether the ascending ids `xs` (a few hundred: a probe) make more than one run in _FEW."""
    return len(id_runs(xs)) * _FEW > len(xs)


def _run_count(xs):
    """How many runs of consecutive ids the ascending ids `xs` make, counted in C without making them (a
    matrix view's 16,384 cells then 196,608 scattered uses: 8 ms, not 30 for id_runs' tuples)."""
    return 1 + sum(map(ne, map(sub, islice(xs, 1, None), xs), repeat(1)))


def _ends_match(xs, runs):
    """Whether the runs (a, b) ascend and each is where it says in `xs` (its first and last id): a
    check per run, not per id, of ids ascending by construction."""
    k, last = 0, None
    for a, b in runs:
        if (last is not None and a < last) or xs[k] != a or xs[k + b - a - 1] != b - 1:
            return False
        k, last = k + b - a, b
    return k == len(xs)


def compact(entry):
    """Keep a drawn view's ids compact (the module's note): its selection's ids and each node's ids
    and values as Ids or arrays, their runs as Runs. In place; the view reads the same after."""
    view = entry.get('view') if isinstance(entry, dict) else None
    if not isinstance(view, View):
        return entry
    sel = view.selection
    view.selection = view.folded.selection = replace(
        sel, **{f: _ids(getattr(sel, f), ordered=True) for f in ('nodes', 'inputs', 'outputs', 'focus')})
    for n in view.folded.nodes:
        known = vars(n)                 # runs found while drawing (VNode.runs, value_runs: cached)
        # a node's ids are ascending but a reference's (those of the nodes it refers to, in their order)
        # a boundary group's values are its ids, a matrix's use group's equal them (fold): kept once
        same = n.values is n.ids or (type(n.values) is type(n.ids) and n.values == n.ids)
        before = {'runs': n.ids, 'value_runs': n.values}
        n.ids = _ids(n.ids, known.get('runs'), ordered=n.kind != 'ref')
        n.values = n.ids if same else _ids(n.values, known.get('value_runs'))
        for name, ids in (('runs', n.ids), ('value_runs', n.values)):
            runs = known.get(name)
            if isinstance(ids, Ids):
                known[name] = ids.runs
            elif isinstance(runs, Runs) and runs.ends is None and runs.starts is before[name] and isinstance(ids, array):
                # single ids whose starts are the ids themselves (fold/pieces.py): the array now, not the tuple too
                shared = same and name == 'value_runs' and isinstance(known.get('runs'), Runs)
                known[name] = known['runs'] if shared else Runs(ids)
            elif isinstance(runs, list) and isinstance(ids, array) and len(runs) > _COMPACT:
                shared = same and name == 'value_runs' and isinstance(known.get('runs'), Runs)
                known[name] = known['runs'] if shared else Runs.of(runs, ids)
    return entry


@cache
def _malloc_trim():
    """glibc's malloc_trim (called without the GIL), or None: another C library has none. Looked up
    once (a CDLL made per call would be cyclic garbage each time)."""
    return getattr(ctypes.CDLL(None), 'malloc_trim', None)


def give_back():
    """Return the C heap's free pages to the system (malloc_trim(0)): Python's freed blocks (a view's
    id tuples and answer text, a recording's tape) otherwise stay in the process's resident memory.
    A few ms (11 ms for 100 MB freed at 5 M nodes); nothing when there is nothing to give."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def deep_bytes(obj, seen=None, traces=None):
    """sys.getsizeof of `obj` and of everything reachable from it, each object once (`seen`: ids
    already counted). With `traces` (a dict), a Trace met is not walked but put there by id."""
    seen = set() if seen is None else seen
    total, stack = 0, [obj]
    while stack:
        o = stack.pop()
        if id(o) in seen or isinstance(o, _SKIP):
            continue
        seen.add(id(o))
        if traces is not None and isinstance(o, Trace):
            traces[id(o)] = o
            continue
        total += sys.getsizeof(o)
        if isinstance(o, _LEAVES):
            continue
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, (list, tuple, set, frozenset)):
            kinds = set(map(type, o)) if len(o) > _BULK else None
            numbers = _numbers_bytes(o, kinds) if kinds is not None else None
            if numbers is None and kinds == {tuple}:
                # runs of ids (a, b): a group of a matrix's scattered uses holds 16,384 (the same rule)
                flat = list(chain.from_iterable(o))
                inner = _numbers_bytes(flat, set(map(type, flat)))
                numbers = None if inner is None else sum(map(sys.getsizeof, o)) + inner
            if numbers is not None:
                total += numbers        # a view's node ids: sized in C, not walked
            else:
                stack.extend(o)
        else:
            if hasattr(o, '__dict__'):
                stack.append(o.__dict__)
            for cls in type(o).__mro__:
                for name in getattr(cls, '__slots__', ()):
                    if hasattr(o, name):
                        stack.append(getattr(o, name))
    return total


class ViewCache:
    """key -> entry (a dict), least recently used first out, at most `limit` bytes in all."""

    def __init__(self, limit=CACHE_BYTES, held=None):
        self.limit = limit
        # held(): the traces something else keeps alive (the server's recordings): an entry holding one
        # frees nothing of it, so it does not count against the limit (a 5.1 M-node step's trace, ~530 MB,
        # counted, left room for one view only: going back drew every view again)
        self._held = held
        self._entries = OrderedDict()   # key -> (entry, its own bytes, ids of the traces it holds)
        self._traces = {}               # id -> [trace, bytes, entries holding it]
        self._own = 0
        self._lock = threading.Lock()
        self._settling = threading.Lock()

    def __len__(self):
        return len(self._entries)

    def __iter__(self):
        with self._lock:
            return iter(list(self._entries))

    @property
    def bytes(self):
        """What the cache holds now, as measured: the entries' own bytes and each trace once."""
        self.settle()
        self._size_traces()
        with self._lock:
            return self._own + sum(t[1] for t in self._traces.values())

    @property
    def counted(self):
        """What counts against the limit: `bytes` less the traces something else keeps (`held`)."""
        self.settle()
        kept = self._kept()
        self._size_traces(skip=kept)
        with self._lock:
            return self._total(kept)

    def clear(self):
        """Forget every entry (a benchmark's cold view: benchmarks/bench_notebook.py)."""
        with self._lock:
            self._entries.clear()
            self._traces.clear()
            self._own = 0

    def get(self, key):
        with self._lock:
            got = self._entries.get(key)
            if got is None:
                return None
            self._entries.move_to_end(key)
            return got[0]

    def put(self, key, entry, later=False):
        """Store `entry`, then make it compact, measure it and drop the oldest entries while over the limit: now, or
        with `later` at the next settle() (the explorer's once the answer that drew it is sent: compacting and
        measuring a view of a 5.1 M-node step walk its folded nodes, 30-80 ms) or put. Compact or not, it answers
        the same (compact)."""
        if later:
            self.settle()       # what an earlier put left, if no settle came since
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = (entry, None, ())      # not measured yet: counts for nothing until settle()
        if not later:
            self.settle()

    def settle(self):
        """Measure the entries put (later) since the last settle, then drop the oldest while over the limit (the
        newest of them kept). One settle at a time (the server's after an answer, `bytes` asked meanwhile): a
        second waits until the first has measured and evicted, so what it then counts is within the limit."""
        with self._settling:
            self._settle()

    def _settle(self):
        with self._lock:
            todo = [(key, got[0]) for key, got in self._entries.items() if got[1] is None]
        if not todo:
            return
        for key, entry in todo:
            own, held = self._measure(compact(entry))
            with self._lock:
                got = self._entries.get(key)
                if got is None or got[0] is not entry or got[1] is not None:
                    continue        # dropped or put again meanwhile
                self._entries[key] = (entry, own, tuple(held))
                self._own += own
                for i, trace in held.items():
                    if i in self._traces:
                        self._traces[i][2] += 1
                    else:
                        self._traces[i] = [trace, None, 1]
        self._evict(keep=todo[-1][0])
        give_back()

    def grew(self, key, part):
        """`part` was added to the entry of `key` (its frames): measure it and evict if over the limit (an entry not
        measured yet is measured whole, `part` with it, by settle)."""
        size = deep_bytes(part, traces={})
        with self._lock:
            got = self._entries.get(key)
            if got is None or got[1] is None:
                return
            self._entries[key] = (got[0], got[1] + size, got[2])
            self._own += size
        self._evict(keep=key)

    @staticmethod
    def _measure(entry):
        traces = {}
        return deep_bytes(entry, traces=traces), traces

    def _size_traces(self, skip=()):
        """Measure the traces held by entries and not yet measured, but those in `skip` (kept by the
        recordings: they count for nothing, and a 5.1 M-node step's took ~0.3 s of its first view).
        Outside the lock: ~0.1 s for 100,000 nodes."""
        with self._lock:
            todo = [(i, slot[0]) for i, slot in self._traces.items() if slot[1] is None and i not in skip]
        for i, trace in todo:
            size = deep_bytes(trace)
            with self._lock:
                if i in self._traces and self._traces[i][1] is None:
                    self._traces[i][1] = size

    def _evict(self, keep):
        kept = self._kept()         # outside our lock: held() takes the recordings' lock
        self._size_traces(skip=kept)
        with self._lock:
            while len(self._entries) > 1 and self._total(kept) > self.limit:
                oldest = next(iter(self._entries))
                if oldest == keep:
                    self._entries.move_to_end(keep)
                    oldest = next(iter(self._entries))
                self._drop(oldest)

    def _kept(self):
        """The ids of the traces `held` names (kept by something else: not counted)."""
        return {id(t) for t in self._held()} if self._held is not None else set()

    def _total(self, kept=()):
        return self._own + sum(t[1] or 0 for i, t in self._traces.items() if i not in kept)

    def _drop(self, key):
        _entry, own, held = self._entries.pop(key)
        self._own -= own or 0
        for i in held:
            slot = self._traces[i]
            slot[2] -= 1
            if slot[2] == 0:
                del self._traces[i]
