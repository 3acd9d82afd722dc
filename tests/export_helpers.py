"""Shared inputs of the graphviz_export tests: small traces, built once per process."""

import functools

from microgpt.data import Tokenizer
from microgpt.model import GPTConfig, init_params
from microgpt.recording.step import record_step
from tests.tiny_model import tiny_model

HOSTILE_CHARS = sorted(set('a<&"{|}>\\'))
HOSTILE_DOC = '<a&"|{\\}>'


@functools.cache
def tiny_trace(doc='ab'):
    """A recorded step of `doc` on the tiny model (n_embd 8, 2 heads, 1 layer)."""
    params, config, tok = tiny_model()
    return record_step(params, config, tok, doc)


@functools.cache
def hostile_trace():
    """A step whose document and vocabulary hold every character DOT, XML and records treat specially."""
    import random
    tok = Tokenizer(HOSTILE_CHARS)
    config = GPTConfig(vocab_size=tok.vocab_size, n_layer=1, n_embd=4, n_head=2, block_size=12)
    return record_step(init_params(config, random.Random(7)), config, tok, HOSTILE_DOC)


def svg_of(view):
    """The view rendered to SVG through the project's renderer."""
    from graphviz_export import render_view
    return render_view(view, 'svg')
