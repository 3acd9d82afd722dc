"""The recordings a server can show: (doc, checkpoint, seed) -> Trace, kept in a small LRU.

Changing the document, checkpoint or seed from the page records that step on the
server (about 0.2 s for a 12-character name) instead of restarting it. A server
started on a saved trace (--trace, or a script's trace) shows that trace only.

Before/after (`compare`): the same document under a second checkpoint, or on the
reference run's model before and after N training steps (that needs the names
data: `data=`). The second gives a real optimizer state (Adam's m and v after N
steps), which the update panel uses for the step after them.
"""

import threading
from collections import OrderedDict
from pathlib import Path

from microgpt.errors import InputError
from microgpt.recording import DEFAULT_DOC, SEED
from microgpt.recording.session import Models, SessionError, train_and_record, training_docs

from ...steps.diff import DiffError, delta_trace, loss_lines
from .state import StateError

FIELDS = {'doc': 'doc', 'checkpoint': 'ckpt'}    # a SessionError's field -> the page's name for it


class Recordings:
    def __init__(self, *, doc=DEFAULT_DOC, checkpoint=None, seed=SEED, trace=None, data=None, keep=4):
        self.default = {'doc': doc, 'ckpt': checkpoint, 'seed': seed}
        self.fixed = trace              # a Trace loaded from a file: the only one shown
        self.data = data                # the names file, for compare after N training steps
        self.keep = keep
        self._docs = None
        self._compares = OrderedDict()  # (key, cmp) -> Comparison
        self._models = Models(keep)     # (ckpt, seed) -> the model, loaded once
        self._traces = OrderedDict()    # key -> Trace
        self._lock = threading.Lock()

    def key(self, state):
        """The recording a state names, defaults filled in: (doc, ckpt, seed)."""
        if self.fixed is not None:
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

    def key_text(self, key):
        return '|'.join('' if k is None else str(k) for k in key)

    def get(self, key):
        """The Trace of `key`, recorded on first use. StateError for a bad doc or checkpoint."""
        if key == ('trace',):
            return self.fixed
        with self._lock:
            trace = self._traces.get(key)
            if trace is not None:
                self._traces.move_to_end(key)
                return trace
            doc, ckpt, seed = key
            try:
                trace = self._models.record(doc, ckpt, seed)
            except SessionError as e:
                raise StateError(f"{FIELDS[e.field]}: {e}") from None
            self._traces[key] = trace
            while len(self._traces) > self.keep:
                self._traces.popitem(last=False)
            return trace

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
        doc, ckpt, seed = key
        kind, arg = cmp
        optimizer = None
        if kind == 'ckpt':
            before = self.get(key)
            after = self.get((doc, arg, None))
            labels = (Path(ckpt).name if ckpt else f'fresh seed {seed}', Path(arg).name)
        else:
            if ckpt is not None:
                raise StateError("cmp steps:N trains the reference run's fresh model (seed, names data); "
                                 "clear the checkpoint, or compare with a second checkpoint (ckpt:PATH)")
            docs = self.names()
            with self._lock:
                try:
                    # Adam's own moments after `arg` steps: the update panel's next step
                    before, after, optimizer = train_and_record(docs, doc, arg, seed=seed)
                except SessionError as e:
                    raise StateError(f"{FIELDS[e.field]}: {e}") from None
            labels = ('run step 0', f'run step {arg}')
        try:
            delta = delta_trace(before, after)
        except DiffError as e:
            raise StateError(f"cmp: {e}") from None
        got = Comparison(before, after, delta, labels, loss_lines(before, after, labels), optimizer)
        with self._lock:
            self._compares[ck] = got
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
                raise StateError(f"{what} needs the names data (start explore with --data FILE or set "
                                 f"MICROGPT_DATA): {e}") from None
        return self._docs

    def model_of(self, key):
        """(params, config, tokenizer) of a recording's model (loaded when it was recorded)."""
        doc, ckpt, seed = key
        with self._lock:
            return self._models.model(ckpt, seed)

    def recording(self):
        """The lock every use of the engine takes: recording swaps the engine's ops process-wide,
        so one recording or training step runs at a time (a played run's steps take it one by one)."""
        return self._lock


class Comparison:
    """Two recordings of one document and their difference (graphviz_export.steps.diff.delta_trace)."""

    def __init__(self, before, after, delta, labels, notes, optimizer=None, first=None):
        self.before, self.after, self.delta = before, after, delta
        self.labels, self.notes = labels, notes
        self.optimizer = optimizer      # {'step', 'm', 'v'} after the training steps, or None
        self.first = first              # the first node whose grad differs (outlined), or None
