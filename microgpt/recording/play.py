"""Play training: the reference run stepped one optimizer step at a time, one document recorded
on its weights after each step (the live view of issue 26; Karpathy's micrograd demo, where the
graph of one datapoint updates while training runs).

    play = Play(docs, 'emma')          # the reference run: seed 42, the shuffled names, lr 0.01
    trace = play.trace()               # 'emma' recorded on the fresh model (step 0)
    for _ in range(100):
        trace = play.advance()         # one optimizer step, then 'emma' recorded again
    play.params()                      # == `train --steps 100 --schedule 1000`'s, bit for bit
    play.seek(40)                      # back to step 40 (from the nearest kept state), or forward

Each step is `microgpt.train.train_step` on the reference's document order (docs[k % n]), or on
one document (`train_doc`); the learning rate decays over `schedule` steps (the reference's
1000) from `lr` (the reference's 0.01 unless chosen), so after k steps the parameters and
Adam's moments are bit-identical to `microgpt-graph train --steps k --schedule 1000`.
When the document trained is the one shown, its recording *is* the step's backward: the
optimizer steps on the grads it left, one forward and backward per step instead of two.

`ScriptCalls` plays a user's script the same way: its backward() calls 1, 2, 3 ..., recorded
one by one (`explore SCRIPT.py --calls N`).

Memory stays flat however long it plays: the current step's Trace only, and the run's state
(parameters and moments, ~100 KB) every `keep_every` steps, from which `seek` replays.
"""

import math
import weakref
from array import array

from ..errors import InputError
from ..model import flat_params
from ..optim import AdamConfig
from ..train import NUM_STEPS, SEED, start_run, train_step
from .ahead import Ahead
from .session import SessionError
from .step import record_step

KEEP_EVERY = 50      # steps between kept states: a seek replays at most 49 steps (~5 s at 0.1 s a step)


class Play:
    def __init__(self, docs, doc, *, seed=SEED, lr=None, train_doc=None, schedule=NUM_STEPS,
                 keep_every=KEEP_EVERY, ahead=True):
        adam = AdamConfig() if lr is None else AdamConfig(lr=float(lr))
        self.run = start_run(docs, seed=seed, adam=adam)
        self._docs, self._adam = docs, adam
        for field, text in (('doc', doc), ('train_doc', train_doc)):
            if text is not None:
                try:
                    self.run.tokenizer.encode(text)
                except InputError as e:
                    raise SessionError('doc', f"{field}: {e}") from None
        self.doc, self.train_doc, self.seed, self.schedule = doc, train_doc, seed, schedule
        self.lr = adam.lr
        self.keep_every = keep_every
        self.step = 0               # optimizer steps taken
        self.doc_losses = {}        # step -> loss of `doc` after that many steps (steps recorded)
        self._flat = flat_params(self.run.params)
        self._kept = {0: self._state()}
        self._trace = None
        self._first = None          # the run's first Trace of `doc`: the graph's indexes, built once
        self._grads_are_doc = False   # the parameters hold `doc`'s grads at this step (its recording's)
        # another document trained than shown: the training runs a step ahead in a process of its
        # own (recording.ahead), on the other core while this one records
        self._use_ahead = ahead and train_doc != doc
        self._ahead = None
        self._closer = None         # stops the process when this Play is dropped (weakref.finalize)

    @property
    def losses(self):
        """The training loss of each step taken (the document trained at that step)."""
        return self.run.losses

    def key(self):
        """What makes this run: (seed, lr, train_doc, schedule)."""
        return (self.seed, self.lr, self.train_doc, self.schedule)

    def baseline(self):
        """The uniform prediction's loss, -log(1/vocab): where an untrained model starts."""
        return math.log(self.run.config.vocab_size)

    # -- the current step ----------------------------------------------------------------------
    def trace(self):
        """The Trace of `doc` on the weights after `step` steps (recorded on first use)."""
        if self._trace is None:
            trace = record_step(self.run.params, self.run.config, self.run.tokenizer, self.doc)
            if self._first is not None:
                trace.adopt_indexes(self._first)    # the same graph: its indexes are built once a run
            else:
                self._first = trace
            self._trace = trace
            self._grads_are_doc = True
            self.doc_losses[self.step] = self._trace.loss
        return self._trace

    def params(self):
        """The parameter values, in the reference's order (matrix, row, column)."""
        return [p.data for p in self._flat]

    def optimizer_state(self):
        """Adam's {'step', 'num_steps', 'm', 'v'} after `step` steps: the next update's moments."""
        opt = self.run.optimizer
        return {'step': self.step, 'num_steps': self.schedule, 'm': list(opt.m), 'v': list(opt.v)}

    # -- moving -------------------------------------------------------------------------------
    def advance(self, record=True):
        """One optimizer step; returns the Trace of `doc` after it (None with record=False)."""
        if self.step >= self.schedule:
            raise InputError(f"the run's learning rate reaches 0 at step {self.schedule}; it cannot go further")
        k = self.step
        if self.train_doc == self.doc and self._grads_are_doc:
            # the recording's backward is this step's: train_step would compute the same grads
            self.run.optimizer.step(k, self.schedule)
            self.run.losses.append(self._trace.loss)
        elif self._use_ahead:
            self._from_ahead(k)
        else:
            train_step(self.run, k, self.schedule, doc=self.train_doc)
        self.step = k + 1
        self._trace, self._grads_are_doc = None, False
        if self.step % self.keep_every == 0:
            self._kept[self.step] = self._state()
        return self.trace() if record else None

    def seek(self, k):
        """Move to the state after k steps (0 <= k <= schedule); returns its Trace."""
        for _ in self.moves(k):
            pass
        return self.trace()

    def moves(self, k):
        """seek(k) one unit of work at a time (a restore, or one step): a generator, so a caller
        can let others use the engine between steps (recording is process-wide)."""
        if not 0 <= k <= self.schedule:
            raise InputError(f"train must be in 0..{self.schedule} (the run's length), got {k}")
        if k < self.step or k - self.step > self.keep_every:
            base = max(s for s in self._kept if s <= k)
            if base > self.step or k < self.step:
                self._restore(base)
                yield self.step
        while self.step < k:
            self.advance(record=self.step + 1 == k)     # the steps on the way: train_step alone
            yield self.step
        self.trace()

    def _from_ahead(self, k):
        """Step k's training as the child process did it: its parameters, moments and loss."""
        if self._ahead is None:
            opt = self.run.optimizer
            start = None if k == 0 else (k, array('d', self.params()), array('d', opt.m), array('d', opt.v))
            self._ahead = Ahead(self._docs, self.seed, self._adam, self.train_doc, self.schedule, start)
            self._closer = weakref.finalize(self, self._ahead.close)
        step, loss, data, m, v = self._ahead.next()
        if step != k + 1:
            raise RuntimeError(f"the training process sent step {step}, not {k + 1}")
        for p, x in zip(self._flat, data):
            p.data = x
            p.grad = 0
        opt = self.run.optimizer
        opt.m[:], opt.v[:] = m.tolist(), v.tolist()
        self.run.losses.append(loss)

    def close(self):
        """Stop the training process, if one runs (a dropped Play stops it too)."""
        if self._closer is not None:
            self._closer()      # once: a finalizer runs at most once
        self._ahead = self._closer = None

    def _state(self):
        opt = self.run.optimizer
        return (array('d', self.params()), array('d', opt.m), array('d', opt.v), len(self.run.losses),
                dict(self.doc_losses))

    def _restore(self, k):
        self.close()        # the process trained on from where the run was: it starts again from k
        data, m, v, n_losses, doc_losses = self._kept[k]
        for p, x in zip(self._flat, data):
            p.data = x
            p.grad = 0
        opt = self.run.optimizer
        opt.m[:] = m.tolist()
        opt.v[:] = v.tolist()
        del self.run.losses[n_losses:]
        self.doc_losses = dict(doc_losses)
        self.step = k
        self._trace, self._grads_are_doc = None, False


class ScriptCalls:
    """A user's script played as Play plays the reference run: its backward() calls 1, 2, 3 ...,
    recorded beforehand (microgpt.recording.script, one run of the script per call), step k
    being call k + 1 (the graph after k of the script's own updates). Their graphs must be the
    same (the script's structure stays the same from call to call); the first that is not is
    named. No optimizer state is known: the script's optimizer is its own."""

    def __init__(self, traces):
        if not traces:
            raise InputError("a played script needs at least one recorded backward() call")
        first = traces[0]
        for k, t in enumerate(traces[1:], 2):
            for col in ('op', 'child_ptr', 'child'):
                if getattr(t, col) != getattr(first, col):
                    raise InputError(f"backward() call {k} of the script has another graph than call 1 "
                                     f"(column {col!r} differs); only calls of the same graph can be played")
            if t.scope != first.scope or t.scopes != first.scopes:
                # the same scope per node, interned in another order (call 1 also saw the parameters
                # made): the first call's columns say the same, so every call reads them
                if any(a != b for a, b in zip(map(first.scopes.__getitem__, first.scope),
                                              map(t.scopes.__getitem__, t.scope))):
                    raise InputError(f"backward() call {k} of the script has another graph than call 1 "
                                     f"(its nodes' scopes differ); only calls of the same graph can be played")
                t.scope, t.scopes = first.scope, first.scopes
            t.adopt_indexes(first)
        self.traces = list(traces)
        self.schedule = len(traces) - 1     # the last step there is
        self.step = 0
        self.lr, self.train_doc = None, None
        self.doc_losses = {k: t.loss for k, t in enumerate(traces) if 'loss_id' in t.meta}

    @property
    def losses(self):
        """The loss of each call after the first (the step that call k + 1 shows)."""
        return [self.doc_losses.get(k) for k in range(1, self.step + 1)]

    def baseline(self):
        return None

    def trace(self):
        return self.traces[self.step]

    def close(self):
        """Nothing runs beside a script's recorded calls."""

    def optimizer_state(self):
        return None

    def advance(self, record=True):
        if self.step >= self.schedule:
            raise InputError(f"the script's recorded calls end at step {self.schedule} (call {self.schedule + 1})")
        self.step += 1
        return self.trace() if record else None

    def seek(self, k):
        for _ in self.moves(k):
            pass
        return self.trace()

    def moves(self, k):
        if not 0 <= k <= self.schedule:
            raise InputError(f"train must be in 0..{self.schedule} (the script's recorded calls 1.."
                             f"{self.schedule + 1}), got {k}")
        self.step = k
        yield k
