"""Sampling names from the model, as the reference does after training."""

from .engine import gc_paused
from .errors import InputError
from .model import gpt, softmax


def sample(params, config, tokenizer, rng, temperature=0.5):
    """One document: start at BOS, draw from softmax(logits / T) with
    `rng.choices`, stop at BOS or after block_size tokens."""
    if not temperature > 0:
        raise InputError(f"temperature must be > 0, got {temperature}")
    keys = [[] for _ in range(config.n_layer)]
    values = [[] for _ in range(config.n_layer)]
    token_id = tokenizer.BOS
    out = []
    # the forward passes build graphs without cycles, as a training step does: the collector is
    # paused (engine.gc_paused), else each of its passes walks whatever the process holds (in a
    # long-lived explorer, notebook or test process: millions of objects: 20 samples 3.6 s -> 1.0 s beside 3 M of them)
    with gc_paused():
        for pos_id in range(config.block_size):
            logits = gpt(params, config, token_id, pos_id, keys, values)
            probs = softmax([l / temperature for l in logits])
            token_id = rng.choices(range(config.vocab_size), weights=[p.data for p in probs])[0]
            if token_id == tokenizer.BOS:
                break
            out.append(tokenizer.chars[token_id])
    return ''.join(out)


def format_sample(i, text):
    """The reference's line: 'sample  1: kamon' (i counts from 0)."""
    return f"sample {i + 1:2d}: {text}"
