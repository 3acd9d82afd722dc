"""The reference training loop: one document per step, Adam, linear decay."""

import random
from dataclasses import dataclass, field

from .data import Tokenizer
from .engine import gc_paused
from .model import GPTConfig, doc_loss, flat_params, init_params
from .optim import Adam, AdamConfig

SEED = 42           # the reference's random.seed(42): one stream for the shuffle, the init, then sampling
NUM_STEPS = 1000    # the reference's num_steps: its run's length, over which the learning rate decays to 0


@dataclass
class Run:
    """Everything one training run owns: no module-level state anywhere."""
    config: GPTConfig
    tokenizer: Tokenizer
    params: dict                  # {name: matrix of Values}
    rng: random.Random            # the one stream: shuffle, init, then sampling
    docs: list                    # shuffled documents
    optimizer: Adam = None
    losses: list = field(default_factory=list)  # loss of every step taken

    def __post_init__(self):
        if self.optimizer is None:
            self.optimizer = Adam(flat_params(self.params))


def start_run(docs, seed=SEED, adam=AdamConfig(), **sizes):
    """Shuffle `docs` with Random(seed), build the vocabulary, initialise the
    parameters from the same stream: the reference's order of random draws.
    `sizes` are GPTConfig fields (n_layer, n_embd, block_size, n_head); the
    defaults are GPTConfig's."""
    rng = random.Random(seed)
    docs = list(docs)
    rng.shuffle(docs)
    tok = Tokenizer.from_docs(docs)
    config = GPTConfig(vocab_size=tok.vocab_size, **sizes)
    params = init_params(config, rng)
    return Run(config, tok, params, rng, docs, Adam(flat_params(params), adam))


def train_step(run, step, num_steps, doc=None):
    """Loss of docs[step % len(docs)] (or of `doc`), backward, Adam update; returns the loss float.

    Grads are zeroed first, so the step is the reference's whatever ran before it
    (a recorded step or a gradient check leaves its grads on the parameters; the
    reference's own loop always arrives here with zeros, which this leaves alone).
    """
    doc = run.docs[step % len(run.docs)] if doc is None else doc
    for p in run.optimizer.params:
        p.grad = 0
    with gc_paused():  # the graph has no cycles: see engine.gc_paused
        loss, _ = doc_loss(run.params, run.config, run.tokenizer.encode(doc))
        loss.backward()
        value = loss.data
        # Free the step's ~10^5 Values (reference counting does it: no cycles) while
        # the collector is still paused. Alive when it resumed, they were walked by
        # the next collection the optimizer's allocations set off, and then again as
        # they aged into older generations.
        del loss, _
    run.optimizer.step(step, num_steps)
    run.losses.append(value)
    return value


def train(run, num_steps, on_step=None, schedule=None, *, log=None, log_every=0, progress=None):
    """Take num_steps steps; on_step(step, num_steps, loss) after each. The learning
    rate decays over `schedule` steps (default num_steps, as the reference does), so
    a run can stop early on a longer schedule: train(run, 300, schedule=1000).

    log(line): the reference's log line (format_step) every `log_every` steps and
    after the last; progress(done, num_steps): after each step (a progress bar)."""
    schedule = num_steps if schedule is None else schedule
    for step in range(num_steps):
        loss = train_step(run, step, schedule)
        if on_step is not None:
            on_step(step, num_steps, loss)
        if log is not None and log_every and ((step + 1) % log_every == 0 or step + 1 == num_steps):
            log(format_step(step, num_steps, loss))
        if progress is not None:
            progress(step + 1, num_steps)
    return run.losses


def format_step(step, num_steps, loss):
    """The reference's log line: 'step    1 / 1000 | loss 3.3660'."""
    return f"step {step + 1:4d} / {num_steps:4d} | loss {loss:.4f}"


AZ = 'abcdefghijklmnopqrstuvwxyz'


def fresh_model(seed=SEED, chars=AZ, **sizes):
    """(params, config, tokenizer): an untrained model over `chars` + BOS, its
    parameters drawn from Random(seed) in the reference's order. `sizes` are
    GPTConfig fields (n_layer, n_embd, block_size, n_head)."""
    tokenizer = Tokenizer(sorted(chars))
    config = GPTConfig(vocab_size=tokenizer.vocab_size, **sizes)
    return init_params(config, random.Random(seed)), config, tokenizer
