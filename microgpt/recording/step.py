"""Record one training step of one document: the usual entry point to a Trace."""

from contextlib import nullcontext

from ..engine import gc_paused
from ..model import check_model, doc_loss, flat_params
from .budget import DEFAULT_MAX_NODES, check_budget
from .madeby import capturing, keep_chains, report_positions
from .tape import record


def record_step(params, config, tokenizer, doc, *, max_nodes=DEFAULT_MAX_NODES, lines=False, progress=None):
    """Forward through every position of `doc`, the loss, and backward, recorded.

    Parameter grads are zeroed first (they hold this step's grads afterwards, as
    after the reference's backward). Returns the `Trace`. A document longer than
    block_size - 1 characters is truncated exactly as the reference truncates:
    only the first block_size positions are used (meta['truncated'] says so).
    A step estimated above `max_nodes` nodes (None: no cap) raises BudgetError
    before anything is built; params or a tokenizer that do not fit `config` raise
    ConfigError. `lines`: also note, op by op, the line of model.py that made it and the calls
    that led there (recording.madeby: "made by"; about as much time again as the forward pass).
    `progress(phase, done, total)`, when given, is told 'recording' per position of the forward
    pass, then 'backward', then 'building the trace' (0 of 1, then 1 of 1).
    """
    check_model(params, config, tokenizer)
    tokens = tokenizer.encode(doc)
    check_budget(config, len(tokens) - 1, max_nodes, what=f"recording {doc[:40]!r}")
    for p in flat_params(params):
        p.grad = 0
    n_positions = min(config.block_size, len(tokens) - 1)
    # the collector stays paused until the tape's ~10^5 Values are freed: resumed while they
    # were alive (at record()'s exit), its first young pass walked them all, ~50 ms a step
    with gc_paused():
        with record(params) as tape:
            if progress is not None:
                report_positions(progress, n_positions, 'recording')
            with capturing(tape) if lines else nullcontext() as stacks:
                loss, losses = doc_loss(params, config, tokens)
            if progress is not None:
                progress('recording', n_positions, n_positions)
                progress('backward', 0, 1)
            loss.backward()
        if progress is not None:
            progress('backward', 1, 1)
            progress('building the trace', 0, 1)
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
        trace = tape.to_trace(loss)
        if stacks is not None:
            keep_chains(trace, stacks)
        del tape, loss, losses, stacks
    if progress is not None:
        progress('building the trace', 1, 1)
    return trace

