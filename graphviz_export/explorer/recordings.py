"""The recordings a server can show: (doc, checkpoint, seed) -> Trace, kept in a small LRU.

Changing the document, checkpoint or seed from the page records that step on the
server (about 0.2 s for a 12-character name) instead of restarting it. A server
started on a saved trace (--trace) shows that trace only.
"""

import os
import threading
from collections import OrderedDict

from microgpt.checkpoint import load_model
from microgpt.errors import InputError
from microgpt.recording import record_step

from .state import StateError


class Recordings:
    def __init__(self, *, doc='emma', checkpoint=None, seed=42, trace=None, keep=4):
        self.default = {'doc': doc, 'ckpt': checkpoint, 'seed': seed}
        self.fixed = trace              # a Trace loaded from a file: the only one shown
        self.keep = keep
        self._models = OrderedDict()    # (ckpt, seed) -> (params, config, tokenizer)
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
            params, config, tokenizer = self._model(ckpt, seed)
            try:
                tokenizer.encode(doc)
            except InputError as e:
                raise StateError(f"doc: {e}") from None
            trace = record_step(params, config, tokenizer, doc)
            self._traces[key] = trace
            while len(self._traces) > self.keep:
                self._traces.popitem(last=False)
            return trace

    def _model(self, ckpt, seed):
        mkey = (ckpt, seed)
        model = self._models.get(mkey)
        if model is None:
            if ckpt is not None and not os.path.isfile(ckpt):
                raise StateError(f"ckpt: no checkpoint file {ckpt!r}")
            try:
                model = load_model(ckpt, seed)
            except InputError as e:
                raise StateError(f"ckpt: {e}") from None
            self._models[mkey] = model
            while len(self._models) > self.keep:
                self._models.popitem(last=False)
        return model

