"""The recordings a server can show: (doc, checkpoint, seed) -> Trace, kept in a small LRU.

Changing the document, checkpoint or seed from the page records that step on the
server (about 0.2 s for a 12-character name) instead of restarting it. A server
started on a saved trace (--trace, or a script's trace) shows that trace only.

Before/after (`compare`): "before" is always the model the page shows, so every
number of the compare panel's before column is the number the page showed before
compare was asked for; "after" is a second checkpoint, or that same model after N
training steps of the reference run (its documents in its order, Adam, its
schedule: session.train_and_record(start='seed'); that needs the names data:
`data=`). Training gives a real optimizer state (Adam's m and v after N steps),
which the update panel uses for the step after them. A page on a checkpoint cannot
be trained here (a checkpoint does not say which documents its run would read next).

A saved trace given as a file opens in the background (`open`: a job, like a recording; the
server serves meanwhile and answers 503 with how far it is: Api._trace), so a big file's load
shows its progress in the page as well as in the terminal.

A step recorded now (not read from the user cache) is stored there once a view of it is drawn, in a
job of its own (`drawn`: its use records, then the file, ~13 s at 5 M nodes), so its first view
does not wait for the store; the page and the terminal show the store's progress, Cancel spares it,
a failure is told in one line, and the trace in memory gains its use records when they are built. A step of
APART nodes or more is recorded and stored in a process of its own (microgpt.recording.apart): the server
keeps none of the recording's leftovers (~200 MB of Python's arenas at 5 M nodes), the child builds the use
records on the other core while the server draws the first view, and hands them over before it writes the
entry; close() ends such a child when the server stops.

Recording and training are jobs (work.py): done outside the lock of these caches, so
every other request goes on meanwhile, each done once however many requests ask,
reporting its phase and step, and cancellable between training steps. Both use the one
engine (session.ENGINE); a training takes it a step at a time, so a new recording asked
meanwhile waits for one step, not for the run.
"""

import sys
import threading
from collections import OrderedDict
from contextlib import nullcontext
from pathlib import Path

from microgpt.errors import InputError
from microgpt.recording import DEFAULT_DOC, NUM_STEPS, SEED, paths
from microgpt.recording.budget import DEFAULT_MAX_NODES
from microgpt.recording.extremes import largest_contribs, ranked
from microgpt.recording.madeby import needs_replay, replay
from microgpt.recording.session import ENGINE, Models, SessionError, optimizer_state, train_and_record, training_docs

from ...steps.diff import DiffError, delta_trace, loss_lines
from ...steps.update import every_cell, stepped
from .state import StateError
from .work import Opening, Work

OPENING = ('open',)     # the key of the job opening a saved trace (Recordings.open)
STORE = 'store'         # the kind of the jobs storing a step recorded now in the user cache (Recordings.drawn)
ROUTES = 'routes'       # the kind of the jobs walking a big step's routes from the loss (Recordings.drawn)
EXTREMES = 'extremes'   # ... ranking its contributions for search max:contrib (extremes.largest_contribs)
ADAM = 'adam'           # ... stepping Adam on each of its parameters for the update panel (update.every_cell)
WARM_ROUTES = 500_000   # nodes from which a step walks them in the background after its first view (~0.5 s)
APART = 500_000         # nodes from which a step recorded now is recorded and stored in a process of its own
# the phase of opening a file without "made by" chains (written before binary files held them)
REPLAYING_OLD = 'replaying the forward pass (the file stores no made-by lines)'
# the work after a big step's first view (drawn): (kind, what the page and terminal say, its phase, done(trace),
# work(trace, pause)): each a figure of the step that a request would otherwise make in seconds
AFTER_VIEW = ((ROUTES, "finding the routes from the loss (for why)", 'nodes walked', lambda t: paths.walked(t),
               lambda t, pause: paths.whole_walk(t, pause)),
              (EXTREMES, "ranking the contributions (for search max:contrib)", 'nodes ranked', lambda t: ranked(t),
               lambda t, pause: largest_contribs(t, pause=pause)),      # (looked up when called: a test replaces them)
              # a fresh optimizer's (a page's moments unless it names a checkpoint that stores some: Api._moments)
              (ADAM, "Adam's step on every parameter (for the update panel)", 'cells stepped',
               lambda t: stepped(t, None, NUM_STEPS), lambda t, pause: _stepped(t, pause)))


def _stepped(trace, pause):
    """every_cell of a fresh optimizer, once no request is being answered (one piece: ~0.5 s at 4 x 64)."""
    pause(0, 1)
    every_cell(trace, None, NUM_STEPS)


FIELDS = {'doc': 'doc', 'checkpoint': 'ckpt', 'data': 'cmp'}    # a SessionError's field -> the page's name for it


class Recordings:
    def __init__(self, *, doc=DEFAULT_DOC, checkpoint=None, seed=SEED, trace=None, data=None, keep=4,
                 max_nodes=DEFAULT_MAX_NODES, work=None, lines=True, cache=True, tell=None, note=None,
                 warm_routes=WARM_ROUTES, apart=APART):
        self.default = {'doc': doc, 'ckpt': checkpoint, 'seed': seed}
        self.fixed = trace              # a Trace loaded from a file: the only one shown
        self.opening = None             # the Job opening the first step in the background (open), or None
        self.opening_key = None         # the key of the step it opens: ('trace',) for a file
        self.met = threading.Event()    # a request asked for the trace while it was opening (a page waits)
        self.told = threading.Event()   # a request was answered that the opening failed (serve then stops)
        self._local = threading.local()  # .job: the opening, in its own thread
        self.data = data                # the names file, for compare after N training steps
        self.keep = keep
        self.max_nodes = max_nodes      # a step estimated above this is refused (--max-nodes)
        # record with the chains of "made by" (recording.madeby; ~+45% recording time), so the side panel
        # never replays the forward pass under the engine's lock; without (the notebook widget: its cell's
        # first view first), the first "made by" asked of a recording replays it once (engine_for)
        self.lines = lines
        self.work = work if work is not None else Work()
        self.cache = cache              # steps read from / stored in the user cache (stepcache; --no-cache)
        self.tell = tell                # progress(phase, done, total) of every recording too (the terminal's)
        self.note = note                # note(text): what the terminal says of a recording (a reused step)
        self.warm_routes = warm_routes  # a step of this many nodes walks its routes after its first view (drawn)
        # a step of this many nodes, recorded now, is recorded and stored in a child process (recording.apart: the
        # server keeps none of the recording's leftovers, and the use records are built on the other core)
        self.apart = apart
        self._docs = None
        self._compares = OrderedDict()  # (key, cmp) -> Comparison
        self._models = Models(keep)     # (ckpt, seed) -> the model, loaded once (used under session.ENGINE)
        self._traces = OrderedDict()    # key -> Trace
        self._moments = {}              # (checkpoint, its time, size) -> its Adam state or None (moments)
        self._stores = OrderedDict()    # key -> store(progress) of a step recorded now: made once a view is drawn (drawn)
        self._storing = {}              # key -> the store a job makes now (_store): ended by close
        self._closed = False            # close was called: a store ended by it is not told as a failure
        self._lock = threading.Lock()   # guards the dictionaries only, never held while working
        if data is not None:            # a names file given: read now, so a bad one fails at start
            self.names()

    def key(self, state):
        """The recording a state names, defaults filled in: (doc, ckpt, seed)."""
        if self.fixed is not None or self.opening_key == ('trace',):
            asked = [f for f in ('doc', 'ckpt', 'seed') if state.get(f) is not None]
            if asked:
                raise StateError(f"this server shows a saved trace (--trace); {asked[0]} cannot be changed")
            return ('trace',)
        doc = state.get('doc') or self.default['doc']
        ckpt = state.get('ckpt') or self.default['ckpt']
        seed = state.get('seed') if state.get('seed') is not None else self.default['seed']
        if ckpt is not None:
            seed = None         # a checkpoint's parameters do not depend on the seed
        return (doc, ckpt, seed)

    @classmethod
    def engine_for(cls, trace):
        """The engine's lock when reading `trace`'s "made by" replays its forward pass
        (madeby.needs_replay), else nothing to hold: a recording made with its chains (`lines`)
        or replayed once already never waits for a training that holds the engine."""
        return cls.engine() if needs_replay(trace) else nullcontext()

    @staticmethod
    def engine():
        """The lock every use of the port's engine holds (session.ENGINE): what records (a played
        run's step, a lab, a replay of the forward pass for recording.madeby too) swaps the
        engine's ops for the whole process, so one runs at a time (a played run takes it step by step)."""
        return ENGINE

    def held(self):
        """The traces this keeps alive whatever the view cache does (the shown file, the recordings and
        comparisons it keeps): the cache does not count them against its bound (ViewCache's `held`)."""
        with self._lock:
            compared = [t for c in self._compares.values() for t in (c.before, c.after, c.delta)]
            return [t for t in (self.fixed, *self._traces.values(), *compared) if t is not None]

    def key_text(self, key):
        return '|'.join('' if k is None else str(k) for k in key)

    def get(self, key):
        """The Trace of `key`, recorded on first use. StateError for a bad doc or checkpoint;
        Opening while the server opens it (open)."""
        self._opened(key)
        if key == ('trace',):
            return self.fixed
        with self._lock:
            trace = self._traces.get(key)
            if trace is not None:
                self._traces.move_to_end(key)
                return trace
        return self.work.run(('record', key), f"recording {key[0][:40]!r}", lambda job: self._record(job, key))

    def check(self, key):
        """Refuse now what recording `key` would refuse before any work (a checkpoint or document it
        cannot read, a step over max_nodes: session.Models.check), so a server that records its
        first step in the background (open) fails before it serves, as when it recorded first."""
        doc, ckpt, seed = key
        try:
            with ENGINE:
                self._models.check(doc, ckpt, seed, self.max_nodes)
        except SessionError as e:
            raise StateError(f"{FIELDS[e.field]}: {e}") from None

    def open(self, what, then=None, load=None):
        """Open the first step in the background (a job: work.py; the server serves meanwhile):
        the saved trace `load(progress)` returns (progress(phase, done, total): the loader's
        phases), its forward pass then replayed for "made by" and its indexes built if the file
        lacks them; or, without `load`, the default document recorded (as `get` records it).
        Each phase is told to the job and to `tell` (the terminal's line); then `then(progress)`
        (the server's first view, in this job's thread). Until the job is done, asking for that
        step raises Opening (the job: how far it is, or its error), but from the job's own thread.
        Not cancellable (/api/cancel spares it): without it there is nothing to show; Ctrl-C
        stops the server."""
        self.opening_key = ('trace',) if load is not None else self.key({})
        self.opening = self.work.start(OPENING, what, lambda job: self._open(job, load, then))
        return self.opening

    def _open(self, job, load, then):
        self._local.job = job           # this thread may read the step before the job is done (get)
        progress = self._progress(job)
        if load is None:
            self._record(job, self.opening_key)
        else:
            trace = load(progress)
            if needs_replay(trace):     # written before binary files stored the chains (codecs.binary 3), or JSON
                if self.note is not None:
                    self.note("this trace file has no made-by lines (written by an older version, or JSON): "
                              "replaying its forward pass; `export --trace FILE -o NEW.mgtrace` writes one "
                              "that opens without it")
                with self.engine():     # the replay swaps the engine's ops
                    replay(trace, progress, REPLAYING_OLD)
            # only what the file lacks (a version 1 or JSON file): now, not in the first view, silently
            trace.build_indexes(lambda done, total: progress('building indexes', done, total))
            self.fixed = trace
        if then is not None:
            then(progress)

    def _opened(self, key):
        """Raise Opening when `key` is the step being opened (until its first view is drawn, which
        the opening's own thread asks for) or the one whose opening failed."""
        job = self.opening
        if job is None or key != self.opening_key or job is getattr(self._local, 'job', None):
            return
        if not job.done.is_set() or job.error is not None:
            (self.told if job.done.is_set() else self.met).set()
            raise Opening(job)

    def _progress(self, job):
        """progress(phase, done, total) of a job: told to the terminal (`tell`) and to the job
        (where it stops when cancelled)."""
        def progress(phase, done, total):
            if self.tell is not None:
                self.tell(phase, done, total)
            job.at(phase, done, total)
        return progress

    def start(self, key):
        """The recording of `key` in the background (the page asks, then polls: Work.start): its Job,
        running or just ended, or None when it is recorded already. One recording at a time: asked
        while another runs, work.Busy naming that one (the page's 409), since a second would only
        wait for the engine, and a user who asked for one document expects that one next."""
        self._opened(key)
        if key == ('trace',) or self.has(key):
            return None
        return self.work.start(('record', key), f"recording {key[0][:40]!r}", lambda job: self._record(job, key),
                               alone=True)

    def has(self, key):
        with self._lock:
            return key in self._traces

    def _record(self, job, key):
        doc, ckpt, seed = key
        progress = self._progress(job)          # job.at raises Cancelled when cancelled: the recording stops
        try:
            # with the line of model.py that made each op: "made by" (recording.madeby), unless not wanted
            # now; a step recorded before comes from the user cache, its chains with it (stepcache)
            trace, reused = self._models.record(doc, ckpt, seed, max_nodes=self.max_nodes, lines=self.lines,
                                                cache=self.cache, progress=progress,
                                                later=lambda store: self._later(key, store), apart=self.apart)
        except SessionError as e:
            raise StateError(f"{FIELDS[e.field]}: {e}") from None
        if reused is not None and self.note is not None:
            self.note(f"reused the recorded step from {reused}")
        with self._lock:
            self._traces[key] = trace
            while len(self._traces) > self.keep:
                self._traces.popitem(last=False)
        return trace

    def _later(self, key, store):
        with self._lock:
            self._stores[key] = store

    def drawn(self):
        """A view was drawn: start storing each step recorded since (stepcache.store: its use records, ~7 s of CPU
        at 5 M nodes, then the file) in the background, a job of its own (STORE), so the first view of a step
        recorded now is shown as soon as it is drawn, not after the store; its use records are attached to the
        trace in memory at once when built (uses.with_uses: a view reads them all or none)."""
        with self._lock:
            stores, self._stores = list(self._stores.items()), OrderedDict()
        for key, store in stores:
            self.work.start((STORE, key), f"storing {key[0][:40]!r} in the user cache",
                            lambda job, key=key, store=store: self._store(job, key, store))
        for kind, what, phase, done, work in AFTER_VIEW:
            for key, trace in self._big(done):
                self.work.start((kind, key), what,
                                lambda job, trace=trace, work=work, phase=phase: work(trace, self._pausing(job, phase)))

    def _big(self, done):
        """(key, trace) of each big step held (warm_routes nodes or more) whose `done(trace)` is false."""
        with self._lock:
            held = ([(('trace',), self.fixed)] if self.fixed is not None else []) + list(self._traces.items())
        return [(key, t) for key, t in held if len(t) >= self.warm_routes and not done(t)]

    def _pausing(self, job, phase):
        """pause(done, total) of a job walking a step in pieces: where it is, then requests first (Work.quiet)."""
        def pause(done, total):
            job.at(phase, done, total)
            self.work.quiet()
        return pause

    def routes_for(self, key, trace, node):
        """Before `node`'s why: when its paths walk the whole trace and a background job walks it now, wait for
        that walk rather than make a second one beside it (two walks of ~5 s sharing one core)."""
        if paths.needs_whole_walk(trace, node):
            self.work.join((ROUTES, key))

    def contribs_for(self, key, trace, q):
        """Before a search (or a view's highlight) `q`: for max:contrib, when a background job ranks the step's
        contributions now, wait for it rather than rank them a second time beside it."""
        if q == 'max:contrib' and not ranked(trace):
            self.work.join((EXTREMES, key))

    def adam_for(self, key, trace, opt, num_steps):
        """Before an update panel or search max:dw on moments `opt`: when a background job steps Adam on every
        cell for those now, wait for it rather than step them a second time beside it."""
        if opt is None and not stepped(trace, opt, num_steps):
            self.work.join((ADAM, key))

    def _store(self, job, key, store):
        """Make the store, yielding to every request between its pieces (Work.quiet); a failure told in one line
        (the terminal), the server going on: the step is shown, only not kept for the next start."""
        told = self._progress(job)

        def progress(phase, done, total):      # between its pieces: requests first (Work.quiet)
            told(phase, done, total)
            self.work.quiet()
        with self._lock:
            self._storing[key] = store
        try:
            return store(progress)
        except Exception as e:      # noqa: BLE001 -- told, not raised: nothing waits for this job
            if self._closed:        # ended by close: the server stops, and says so (serve)
                return None
            what = ' '.join(f"{type(e).__name__}: {e}".split())
            (self.note or (lambda text: print(text, file=sys.stderr)))(
                f"could not store the step of {key[0][:40]!r} in the user cache ({what}); it is shown, not kept")
            return None
        finally:
            with self._lock:
                self._storing.pop(key, None)

    def close(self):
        """End the processes recording.apart left storing steps (the server stops): what they have not written is
        not kept. A store made in this process has nothing to end."""
        with self._lock:
            stores, self._closed = [*self._stores.values(), *self._storing.values()], True
        for store in stores:
            getattr(store, 'close', lambda: None)()

    # -- before/after --------------------------------------------------------------------------
    def compare(self, key, cmp):
        """The Comparison of recording `key` with `cmp` (state.compare_of: ('ckpt', path) or
        ('steps', N)). StateError (HTTP 400) when it cannot be made, with what to do."""
        ck = (key, cmp)
        with self._lock:
            got = self._compares.get(ck)
            if got is not None:
                self._compares.move_to_end(ck)
                return got
        if key == ('trace',):
            raise StateError("this server shows a saved trace (--trace); compare needs recordings of a document")
        if cmp[0] == 'steps' and key[1] is not None:
            raise StateError("cmp steps:N trains the fresh seeded model a page without a checkpoint shows; "
                             "clear the checkpoint, or compare with a second checkpoint (ckpt:PATH)")
        what = f"training {cmp[1]} steps for compare" if cmp[0] == 'steps' else 'comparing with a checkpoint'
        return self.work.run(('compare', key, cmp), what, lambda job: self._compare(job, key, cmp))

    def _compare(self, job, key, cmp):
        doc, ckpt, seed = key
        kind, arg = cmp
        optimizer = None
        shown = Path(ckpt).name if ckpt else f'fresh seed {seed}'
        if kind == 'ckpt':
            before = self.get(key)
            after = self.get((doc, arg, None))
            labels = (shown, Path(arg).name)
            how = f'the checkpoint {Path(arg).name}'
            made = f'the model saved in {arg}'
        else:
            docs = self.names()
            job.at('training', 0, arg)
            try:
                # the page's own model trained; Adam's moments after `arg` steps: the update panel's next step
                before, after, optimizer = train_and_record(docs, doc, arg, seed=seed, start='seed',
                                                            max_nodes=self.max_nodes,
                                                            on_step=lambda k, n, _loss: job.at('training', k, n))
            except SessionError as e:
                raise StateError(f"{FIELDS[e.field]}: {e}") from None
            labels = (shown, f'after {arg} training steps')
            how = f'{shown} after {arg} training steps'
            made = (f"the model this page shows, trained on the reference run's first {arg} names in its order "
                    f"with Adam, the learning rate decaying over {NUM_STEPS} steps")
        job.at('differences')
        try:
            delta = delta_trace(before, after)
        except DiffError as e:
            raise StateError(f"cmp: {e}") from None
        models = (f'{shown}, the model this page shows', how, made)
        got = Comparison(before, after, delta, labels, loss_lines(before, after, labels), optimizer, models)
        with self._lock:
            self._compares[(key, cmp)] = got
            while len(self._compares) > self.keep:
                self._compares.popitem(last=False)
        return got

    def names(self, what='cmp steps:N'):
        """The training documents (the names file): --data, else what `train` finds
        without downloading ($MICROGPT_DATA, ./input.txt, the downloaded copy)."""
        if self._docs is None:
            try:
                self._docs = training_docs(self.data)
            except InputError as e:
                if self.data is not None:
                    raise InputError(f"data: {e}") from None
                raise StateError(f"{what} needs the names data (start explore with --data FILE or set "
                                 f"MICROGPT_DATA): {e}") from None
        return self._docs

    def moments(self, path):
        """The Adam state checkpoint `path` stores (session.optimizer_state), or None: read once per version
        of the file (its size and time), not at every update panel's request (0.3-0.5 s for a 4 x 64 one)."""
        try:
            stat = Path(path).stat()
        except OSError:
            return optimizer_state(path)    # its one-line error
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if key in self._moments:
                return self._moments[key]
        got = optimizer_state(path)
        with self._lock:
            self._moments = {key: got}      # the checkpoint shown: one at a time
        return got

    def model_of(self, key):
        """(params, config, tokenizer) of a recording's model (loaded when it was recorded)."""
        doc, ckpt, seed = key
        with ENGINE:        # Models keeps its models for the engine's users
            return self._models.model(ckpt, seed)


class Comparison:
    """Two recordings of one document and their difference (graphviz_export.steps.diff.delta_trace)."""

    def __init__(self, before, after, delta, labels, notes, optimizer=None, models=None, first=None):
        self.before, self.after, self.delta = before, after, delta
        self.labels, self.notes = labels, notes
        # (before, after, how after was made): which model each is, in words (the compare bar)
        self.models = models or (*labels, labels[1])
        self.optimizer = optimizer      # {'step', 'm', 'v'} after the training steps, or None
        self.first = first              # the first node whose grad differs (outlined), or None
