"""What the applications need from the port, as functions of the recording package.

The exporter (graphviz_export: the explorer, the update panel) reads Traces and
never imports the port's model, training, optimizer, checkpoints or data; when it
needs them it calls these, as `diff --train-steps` and examples/05 do:

    models = Models()
    trace, _ = models.record('emma', checkpoint=None, seed=42)  # the model cached per (checkpoint, seed)
    state = optimizer_state('model.json')       # Adam's {'step', 'm', 'v'} from a checkpoint, or None
    run = train_and_record(docs, 'emma', 20)    # before, after 20 steps of the reference run, Adam's state
    run = train_and_record(docs, 'emma', 20, start='seed')  # the same 20 steps on fresh_model(seed)
    docs = training_docs(None)                  # the names data, found as `train` finds it (no download)

Errors are InputError; a `SessionError` says which input (`field`: 'doc',
'checkpoint' or 'data', the training documents) it is about, so a caller can name it.

Threads (the explorer serves requests in several): the port's engine is one per process, and
recording a step patches its ops process-wide (tape.record: an op of another thread made
meanwhile would land on the tape), so every use of the engine holds ENGINE: one at a time.
A recording holds it for the whole step; a training run only step by step (its model and
optimizer are its own: nothing else it touches is shared), and ENGINE serves its waiters in
the order they came, so a request that records another document meanwhile waits for one
training step, not for the run (threading.Lock promises no order: the training thread,
asking again at once, could take it back before the request wakes). A run stops at the
next step when `on_step` raises (how the explorer cancels one).
"""

import threading
from collections import OrderedDict, deque
from pathlib import Path
from typing import NamedTuple

from ..checkpoint import load_model, read_checkpoint
from ..data import default_data_path, read_docs
from ..errors import InputError
from ..train import NUM_STEPS, SEED, Run, fresh_model, start_run, train_step
from .budget import DEFAULT_MAX_NODES, check_budget
from .step import record_step
from .stepcache import cached_step


class EngineLock:
    """A lock handed to its waiters first come, first served. threading.Lock promises no order
    ("which one of the waiting threads proceeds is not defined"): a training run that releases
    it after a step and asks again at once may take it back before a waiting request wakes."""

    def __init__(self):
        self._mutex = threading.Lock()
        self._held = False
        self._waiting = deque()        # one Event per waiting thread, in the order they came

    def acquire(self, blocking=True, timeout=-1):
        """As threading.Lock.acquire: True once held; False when not blocking, or after `timeout` s."""
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            if not blocking:
                return False
            turn = threading.Event()
            self._waiting.append(turn)
        try:
            got = turn.wait(None if timeout < 0 else timeout)
        except BaseException:         # interrupted while waiting: leave the queue (or pass the lock on)
            if not self._give_up(turn):
                self.release()
            raise
        return got or not self._give_up(turn)   # release handed it over: _held stayed True

    def _give_up(self, turn):
        """Leave the queue; True when left without the lock, False when release had handed it over."""
        with self._mutex:
            if turn in self._waiting:
                self._waiting.remove(turn)
                return True
        return False

    def release(self):
        with self._mutex:
            if not self._held:
                raise RuntimeError("release of an engine lock that is not held")
            if self._waiting:
                self._waiting.popleft().set()
            else:
                self._held = False

    def locked(self):
        with self._mutex:
            return self._held

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


ENGINE = EngineLock()   # the one engine of the process: held while a step is recorded or trained


class SessionError(InputError):
    """A document or checkpoint that cannot be recorded; `field` names which."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field


class Models:
    """Records documents on models loaded once: (checkpoint, seed) -> model, the `keep`
    most recently used kept. Not thread-safe: the caller holds its own lock."""

    def __init__(self, keep=4):
        self.keep = keep
        self._models = OrderedDict()    # (checkpoint, seed) -> (params, config, tokenizer)

    def __iter__(self):
        """The (checkpoint, seed) of each model loaded, oldest first."""
        return iter(list(self._models))

    def record(self, doc, checkpoint=None, seed=SEED, max_nodes=DEFAULT_MAX_NODES, lines=False, cache=False,
               progress=None, later=None, apart=None):
        """(Trace, Path it was reused from or None): `doc`'s step on the checkpoint's model (or the fresh
        seeded one); a step estimated above `max_nodes` nodes is refused (budget.BudgetError) before it
        is built; `lines`: with the line of model.py that made each op (record_step). `cache`: read the
        step from the user cache when it was recorded before, and store it there (stepcache, as
        `render` does; its "made by" chains with it). `progress(phase, done, total)`: told what
        record_step and the cache tell (raising there stops the recording: the explorer's Cancel); `later`:
        the store handed to it instead of made now, `apart`: from how many nodes such a step is recorded and
        stored in a process of its own (stepcache.cached_step)."""
        with ENGINE:
            params, config, tokenizer = self.check(doc, checkpoint, seed, max_nodes)
            return cached_step(params, config, tokenizer, doc, max_nodes=max_nodes, lines=lines, use=cache,
                               progress=progress, later=later, apart=apart)

    def check(self, doc, checkpoint=None, seed=SEED, max_nodes=DEFAULT_MAX_NODES):
        """(params, config, tokenizer) of the model `record` would record `doc` on, after what it
        refuses before any work is refused here (in a moment: the model loaded and kept): a
        checkpoint or document it cannot read (SessionError), a step over `max_nodes` (BudgetError).
        The explorer checks so before it serves, then records in the background (Recordings.open).
        The caller holds ENGINE (as record does: the models are the engine's users')."""
        params, config, tokenizer = self.model(checkpoint, seed)
        try:
            tokens = tokenizer.encode(doc)
        except InputError as e:
            raise SessionError('doc', str(e)) from None
        check_budget(config, len(tokens) - 1, max_nodes, what=f"recording {doc[:40]!r}")
        return params, config, tokenizer

    def model(self, checkpoint, seed):
        key = (checkpoint, seed)
        model = self._models.get(key)
        if model is None:
            if checkpoint is not None and not Path(checkpoint).is_file():
                raise SessionError('checkpoint', f"no checkpoint file {checkpoint!r}")
            try:
                model = load_model(checkpoint, seed)
            except InputError as e:
                raise SessionError('checkpoint', str(e)) from None
            self._models[key] = model
            while len(self._models) > self.keep:
                self._models.popitem(last=False)
        else:
            self._models.move_to_end(key)
        return model


def optimizer_state(checkpoint):
    """The Adam state a checkpoint stores ({'step', 'm', 'v'}, microgpt.checkpoint), or None."""
    return read_checkpoint(checkpoint).optimizer


class BeforeAfter(NamedTuple):
    before: object       # the Trace on the fresh model
    after: object        # the Trace after the training steps
    optimizer: dict      # Adam's {'step', 'm', 'v'} after them: the state the next step starts from


STARTS = ('run', 'seed')     # which model train_and_record trains: see there


def train_and_record(docs, doc, steps, seed=SEED, num_steps=NUM_STEPS, on_step=None, start='run',
                     max_nodes=DEFAULT_MAX_NODES):
    """`doc`'s step recorded on a fresh model and again after its first `steps` training
    steps of the reference run (its documents: `docs` shuffled by Random(seed), one per
    step; Adam; the learning rate decaying over `num_steps`, as in the reference's
    1000-step run), with Adam's moments after them. The fresh model (`start`):

        'run'   the reference run's own: drawn from the stream that shuffled the documents,
                after the shuffle, its vocabulary the documents' (what `train` trains)
        'seed'  train.fresh_model(seed), vocabulary a-z: the model `render`, `record` and the
                explorer show for a seed without a checkpoint (the explorer's compare trains
                the model its page shows); a SessionError('data') when a training document
                has a character outside that vocabulary

    `on_step(step, steps, loss)` after each training step (300 steps take about a minute),
    called without the engine; an exception it raises stops the run there (and is raised here).
    The run's model and optimizer are its own: ENGINE is held for each recording and each step,
    not for the run, so other users of the engine take turns with it."""
    if start not in STARTS:
        raise ValueError(f"start must be one of {STARTS}, got {start!r}")
    with ENGINE:        # the model is made of the engine's Values, as a step is
        run = start_run(docs, seed=seed)
        if start == 'seed':
            params, config, tokenizer = fresh_model(seed)
            run = Run(config, tokenizer, params, run.rng, run.docs)
    if start == 'seed':
        for k in range(min(steps, len(run.docs))):
            try:
                tokenizer.encode(run.docs[k])
            except InputError as e:
                raise SessionError('data', f"training document {k + 1} of {steps}: {e}") from None
    try:
        run.tokenizer.encode(doc)
    except InputError as e:
        raise SessionError('doc', str(e)) from None
    with ENGINE:
        before = record_step(run.params, run.config, run.tokenizer, doc, max_nodes=max_nodes)
    for k in range(steps):
        with ENGINE:
            loss = train_step(run, k, num_steps)
        if on_step is not None:
            on_step(k + 1, steps, loss)
    with ENGINE:
        after = record_step(run.params, run.config, run.tokenizer, doc, max_nodes=max_nodes)
    return BeforeAfter(before, after, {'step': steps, 'm': list(run.optimizer.m), 'v': list(run.optimizer.v)})


def training_docs(path=None):
    """The training documents: `path`, else what `train` finds without downloading
    ($MICROGPT_DATA, ./input.txt, the downloaded copy). DataError if there are none."""
    return read_docs(default_data_path(download=False) if path is None else path)
