"""A tiny model for the gradient-check tests: n_embd 8, 2 heads, block 8 (1,264
parameters), so a forward pass of a short name takes a few milliseconds."""

import random

from microgpt.data import Tokenizer
from microgpt.model import GPTConfig, init_params

AZ = [chr(c) for c in range(ord('a'), ord('z') + 1)]


def tiny_model(seed=42, n_layer=1):
    tok = Tokenizer(AZ)
    config = GPTConfig(vocab_size=tok.vocab_size, n_layer=n_layer, n_embd=8, n_head=2, block_size=8)
    return init_params(config, random.Random(seed)), config, tok
