"""The explorer's played runs and backprop labs (issue 26), beside its recordings.

A played run (microgpt.recording.play.Play) belongs to (doc, seed, lr, tdoc): the URL's
train=k asks for its step k, which the run reaches by stepping on (or by going back to
its nearest kept state and replaying). Stepping is long work (0.1-0.5 s a step): each
run has its own lock, so it never holds the recordings' lock, and other pages keep
being answered while one trains. The last `keep` runs are kept; each holds one Trace.

A lab (microgpt.recording.lab) is the recording's backward done wrongly; `faults` (given
by the CLI, which may import microgpt.checks) is the fault registry: an object with
`FAULTS` ({name: fault}) and `inject(name)`, the context that records under a fault.
"""

import threading
from collections import OrderedDict

from microgpt.errors import InputError
from microgpt.recording.lab import MODES, lab_step
from microgpt.recording.play import Play
from microgpt.recording.session import SessionError

from ...steps.diff import DiffError, delta_trace
from .state import StateError, compare_of

FIELDS = {'doc': 'doc', 'checkpoint': 'ckpt'}


class Plays:
    def __init__(self, recordings, *, faults=None, keep=2, script=None):
        self.recordings = recordings
        self.script = script            # a script's recorded calls (recording.play.ScriptCalls), or None
        self.faults = faults
        self.keep = keep
        self._runs = OrderedDict()      # run key -> (Play, lock)
        self._labs = OrderedDict()      # (recording key, mode) -> Lab
        self._lock = threading.Lock()   # guards the two dicts (never held while training)
        self._lock_of_script = threading.Lock()

    # -- played runs ---------------------------------------------------------------------------
    def run_key(self, key, state, seed=None):
        """('play', doc, seed, lr, tdoc) of a state with train=k (('play', 'script') for a script's
        recorded calls); StateError when it cannot be played."""
        if key == ('trace',) and self.script is not None:
            if seed is not None or state.get('lr') is not None or state.get('tdoc') is not None:
                raise StateError("a script's recorded calls are played as they ran: no seed, lr or tdoc")
            return ('play', 'script')
        if key == ('trace',):
            raise StateError("train=k plays the reference run of a document; this server shows a saved trace "
                             "(explore SCRIPT.py --calls N plays a script's backward() calls)")
        doc, ckpt, s = key
        if ckpt is not None:
            raise StateError("train=k plays the reference run from its fresh model (seed, names data); "
                             "clear the checkpoint")
        return ('play', doc, s if seed is None else seed, state.get('lr'), state.get('tdoc'))

    def run(self, run_key):
        """(Play, its lock) of a run key, started on first use (the names data needed)."""
        with self._lock:
            got = self._runs.get(run_key)
            if got is not None:
                self._runs.move_to_end(run_key)
                return got
        if run_key == ('play', 'script'):
            return self.script, self._lock_of_script
        _, doc, seed, lr, tdoc = run_key
        docs = self.recordings.names(what='train=k')
        try:
            play = Play(docs, doc, seed=seed, lr=lr, train_doc=tdoc)
        except SessionError as e:
            raise StateError(f"{'tdoc' if 'train_doc' in str(e) else FIELDS[e.field]}: {e}") from None
        got = (play, threading.Lock())
        with self._lock:
            got = self._runs.setdefault(run_key, got)
            while len(self._runs) > self.keep:
                self._runs.popitem(last=False)[1][0].close()    # its training process, if any
        return got

    def at(self, run_key, k):
        """The Trace of the run's step k (the run moves there)."""
        play, lock = self.run(run_key)
        with lock:
            self._move(play, k)
            return play.trace()

    def advance(self, run_key, k, n, each):
        """From step k, n optimizer steps; each(play, trace) after each one, under the run's lock."""
        play, lock = self.run(run_key)
        with lock:
            self._move(play, k)
            for _ in range(n):
                with self.recordings.engine():
                    try:
                        trace = play.advance()
                    except InputError as e:
                        raise StateError(str(e)) from None
                each(play, trace)
        return play

    def _move(self, play, k):
        """play.seek(k) a step at a time, the engine taken for one step at a time (recording
        patches the engine process-wide: one user of it at once), so other requests interleave."""
        moves = play.moves(k)
        while True:
            with self.recordings.engine():
                try:
                    if next(moves, None) is None:
                        return
                except InputError as e:
                    raise StateError(str(e)) from None

    def compare(self, key, state):
        """(before, after, labels) of a played state's cmp=train:J or cmp=seed:S."""
        kind, arg = compare_of(state)
        k = state['train']
        rk = self.run_key(key, state)
        if kind == 'train':
            before = self.at(rk, arg)
            labels = (f'step {arg}', f'step {k}')
        elif rk == ('play', 'script'):
            raise StateError("a script's calls have no seed to compare; compare two calls with cmp=train:J")
        else:
            before = self.at(self.run_key(key, state, seed=arg), k)
            labels = (f'seed {arg} step {k}', f'seed {rk[2]} step {k}')
        return before, self.at(rk, k), labels

    # -- the backprop lab ------------------------------------------------------------------------
    def modes(self):
        return list(MODES) + list(getattr(self.faults, 'FAULTS', ()))

    def lab(self, key, mode):
        """The Lab of the recording `key` with the `mode` backward (cached)."""
        if key == ('trace',):
            raise StateError("lab re-runs the backward of a document's step; this server shows a saved trace")
        if mode not in self.modes():
            raise StateError(f"lab {mode!r} is not one of: {', '.join(self.modes())}")
        with self._lock:
            got = self._labs.get((key, mode))
            if got is not None:
                return got
        correct = self.recordings.get(key)
        params, config, tokenizer = self.recordings.model_of(key)
        inject = self.faults.inject(mode) if mode not in MODES else None
        with self.recordings.engine():
            got = lab_step(params, config, tokenizer, key[0], mode, inject=inject, correct=correct)
        with self._lock:
            self._labs[(key, mode)] = got
            while len(self._labs) > self.keep:
                self._labs.popitem(last=False)
        return got


def lab_delta(lab):
    """The wrong - correct trace of a Lab, and the lines its picture's note box says."""
    try:
        delta = delta_trace(lab.correct, lab.wrong)
    except DiffError as e:
        raise StateError(f"lab: {e}") from None
    head = f"lab {lab.mode}: \u0394 = wrong \u2212 correct backward everywhere in this picture (one layout)"
    return delta, [head, *lab.lines]
