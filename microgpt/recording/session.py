"""What the applications need from the port, as functions of the recording package.

The exporter (graphviz_export: the explorer, the update panel) reads Traces and
never imports the port's model, training, optimizer, checkpoints or data; when it
needs them it calls these, as `diff --train-steps` and examples/05 do:

    models = Models()
    trace = models.record('emma', checkpoint=None, seed=42)  # the model cached per (checkpoint, seed)
    state = optimizer_state('model.json')       # Adam's {'step', 'm', 'v'} from a checkpoint, or None
    run = train_and_record(docs, 'emma', 20)    # before, after 20 steps of the reference run, Adam's state
    run = train_and_record(docs, 'emma', 20, start='seed')  # the same 20 steps on fresh_model(seed)
    docs = training_docs(None)                  # the names data, found as `train` finds it (no download)

Errors are InputError; a `SessionError` says which input (`field`: 'doc',
'checkpoint' or 'data', the training documents) it is about, so a caller can name it.

Threads (the explorer serves requests in several): the port's engine is one per process, and
recording a step patches its ops (tape.record) while training zeroes and moves shared
parameters, so `Models.record` and `train_and_record` hold ENGINE while they use it: one use
at a time, the others wait (a training run gives it up between steps only when `on_step`
raises, which is how the explorer cancels one).
"""

import threading
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

from ..checkpoint import load_model, read_checkpoint
from ..data import default_data_path, read_docs
from ..errors import InputError
from ..train import NUM_STEPS, SEED, Run, fresh_model, start_run, train_step
from .budget import DEFAULT_MAX_NODES
from .step import record_step

ENGINE = threading.Lock()   # the one engine of the process: held while a step is recorded or a run trains


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

    def record(self, doc, checkpoint=None, seed=SEED, max_nodes=DEFAULT_MAX_NODES, lines=False):
        """The Trace of `doc`'s step on the checkpoint's model (or the fresh seeded one); a step
        estimated above `max_nodes` nodes is refused (budget.BudgetError) before it is built;
        `lines`: with the line of model.py that made each op (record_step)."""
        with ENGINE:
            params, config, tokenizer = self.model(checkpoint, seed)
            try:
                tokenizer.encode(doc)
            except InputError as e:
                raise SessionError('doc', str(e)) from None
            return record_step(params, config, tokenizer, doc, max_nodes=max_nodes, lines=lines)

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

    `on_step(step, steps, loss)` after each training step (300 steps take about a minute);
    an exception it raises stops the run there (and is raised here)."""
    if start not in STARTS:
        raise ValueError(f"start must be one of {STARTS}, got {start!r}")
    with ENGINE:
        return _train_and_record(docs, doc, steps, seed, num_steps, on_step, start, max_nodes)


def _train_and_record(docs, doc, steps, seed, num_steps, on_step, start, max_nodes):
    run = start_run(docs, seed=seed)
    if start == 'seed':
        params, config, tokenizer = fresh_model(seed)
        run = Run(config, tokenizer, params, run.rng, run.docs)
        for k in range(min(steps, len(run.docs))):
            try:
                tokenizer.encode(run.docs[k])
            except InputError as e:
                raise SessionError('data', f"training document {k + 1} of {steps}: {e}") from None
    try:
        run.tokenizer.encode(doc)
    except InputError as e:
        raise SessionError('doc', str(e)) from None
    before = record_step(run.params, run.config, run.tokenizer, doc, max_nodes=max_nodes)
    for k in range(steps):
        loss = train_step(run, k, num_steps)
        if on_step is not None:
            on_step(k + 1, steps, loss)
    after = record_step(run.params, run.config, run.tokenizer, doc, max_nodes=max_nodes)
    return BeforeAfter(before, after, {'step': steps, 'm': list(run.optimizer.m), 'v': list(run.optimizer.v)})


def training_docs(path=None):
    """The training documents: `path`, else what `train` finds without downloading
    ($MICROGPT_DATA, ./input.txt, the downloaded copy). DataError if there are none."""
    return read_docs(default_data_path(download=False) if path is None else path)
