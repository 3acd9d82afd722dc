"""What the applications need from the port, as functions of the recording package.

The exporter (graphviz_export: the explorer, the update panel) reads Traces and
never imports the port's model, training, optimizer, checkpoints or data; when it
needs them it calls these, as `diff --train-steps` and examples/05 do:

    models = Models()
    trace = models.record('emma', checkpoint=None, seed=42)  # the model cached per (checkpoint, seed)
    state = optimizer_state('model.json')       # Adam's {'step', 'm', 'v'} from a checkpoint, or None
    run = train_and_record(docs, 'emma', 20)    # before, after 20 steps of the reference run, Adam's state
    docs = training_docs(None)                  # the names data, found as `train` finds it (no download)

Errors are InputError; a `SessionError` says which input (`field`: 'doc' or
'checkpoint') it is about, so a caller can name it.
"""

from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

from ..checkpoint import load_model, read_checkpoint
from ..data import default_data_path, read_docs
from ..errors import InputError
from ..train import NUM_STEPS, SEED, start_run, train_step
from .step import record_step


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

    def record(self, doc, checkpoint=None, seed=SEED, lines=False):
        """The Trace of `doc`'s step on the checkpoint's model (or the fresh seeded one);
        `lines`: with the line of model.py that made each op (record_step)."""
        params, config, tokenizer = self.model(checkpoint, seed)
        try:
            tokenizer.encode(doc)
        except InputError as e:
            raise SessionError('doc', str(e)) from None
        return record_step(params, config, tokenizer, doc, lines=lines)

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


def train_and_record(docs, doc, steps, seed=SEED, num_steps=NUM_STEPS, on_step=None):
    """`doc`'s step recorded on the reference run's fresh model (seed, shuffled `docs`) and
    again after its first `steps` training steps (the learning rate decays over
    `num_steps`, as in the reference's 1000-step run), with Adam's moments after them.
    `on_step(step, steps, loss)` after each training step (300 steps take about a minute)."""
    run = start_run(docs, seed=seed)
    try:
        run.tokenizer.encode(doc)
    except InputError as e:
        raise SessionError('doc', str(e)) from None
    before = record_step(run.params, run.config, run.tokenizer, doc)
    for k in range(steps):
        loss = train_step(run, k, num_steps)
        if on_step is not None:
            on_step(k + 1, steps, loss)
    after = record_step(run.params, run.config, run.tokenizer, doc)
    return BeforeAfter(before, after, {'step': steps, 'm': list(run.optimizer.m), 'v': list(run.optimizer.v)})


def training_docs(path=None):
    """The training documents: `path`, else what `train` finds without downloading
    ($MICROGPT_DATA, ./input.txt, the downloaded copy). DataError if there are none."""
    return read_docs(default_data_path(download=False) if path is None else path)
