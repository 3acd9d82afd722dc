"""Record one training step of one document: the usual entry point to a Trace."""

from ..engine import gc_paused
from ..model import check_model, doc_loss, flat_params
from ..train import NUM_STEPS, SEED, start_run, train_step
from .budget import DEFAULT_MAX_NODES, check_budget
from .tape import record


def record_step(params, config, tokenizer, doc, *, max_nodes=DEFAULT_MAX_NODES):
    """Forward through every position of `doc`, the loss, and backward, recorded.

    Parameter grads are zeroed first (they hold this step's grads afterwards, as
    after the reference's backward). Returns the `Trace`. A document longer than
    block_size - 1 characters is truncated exactly as the reference truncates:
    only the first block_size positions are used (meta['truncated'] says so).
    A step estimated above `max_nodes` nodes (None: no cap) raises BudgetError
    before anything is built; params or a tokenizer that do not fit `config` raise
    ConfigError.
    """
    check_model(params, config, tokenizer)
    tokens = tokenizer.encode(doc)
    check_budget(config, len(tokens) - 1, max_nodes, what=f"recording {doc[:40]!r}")
    for p in flat_params(params):
        p.grad = 0
    with record(params) as tape:
        loss, losses = doc_loss(params, config, tokens)
        loss.backward()
    n = len(losses)
    tape.meta.update({
        'doc': doc,
        'tokens': tokens[:n + 1],
        'token_strs': [tokenizer.token_str(t) for t in tokens[:n + 1]],
        'chars': ''.join(tokenizer.chars),
        'config': config.to_dict(),
        'n_positions': n,
        'truncated': len(tokens) - 1 > n,
        'position_loss_values': losses,
    })
    with gc_paused():
        return tape.to_trace(loss)


def record_before_after_training(docs, doc, steps, seed=SEED, num_steps=NUM_STEPS, on_step=None):
    """(before, after): the step of `doc` recorded on the reference run's fresh model
    (seed, shuffled `docs`) and again after its first `steps` training steps (the
    learning rate decays over `num_steps`, by default the reference's whole run).
    `on_step(step, steps, loss)`, if given, is called after each training step
    (a progress bar: 300 steps take about a minute)."""
    run = start_run(docs, seed=seed)
    before = record_step(run.params, run.config, run.tokenizer, doc)
    for k in range(steps):
        loss = train_step(run, k, num_steps)
        if on_step is not None:
            on_step(k + 1, steps, loss)
    return before, record_step(run.params, run.config, run.tokenizer, doc)
