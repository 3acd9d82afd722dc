"""Checkpoints: config, vocabulary and every parameter matrix by name, as JSON.

    {"format": "microgpt-graph.checkpoint", "version": 1,
     "config": {"vocab_size": 27, "n_layer": 1, ...},
     "chars": "abcdefghijklmnopqrstuvwxyz",
     "step": 1000,                       # training steps taken (informational)
     "params": {"wte": [[0.0123, ...], ...], ...}}

Floats are written with Python's shortest round-trip repr, so loading gives
back the same bits. Saving writes a temp file and renames it over the target,
so an interrupted save never destroys an existing checkpoint.
"""

import json
import math

from .data import DataError, Tokenizer
from .engine import Value
from .errors import InputError
from .files import write_atomic
from .model import GPTConfig, param_shapes
from .train import fresh_model

FORMAT = 'microgpt-graph.checkpoint'
VERSION = 1


class CheckpointError(InputError):
    """A checkpoint that cannot be read or does not fit; the message says why."""


def save_checkpoint(path, params, config, tokenizer, step=None):
    if tokenizer.vocab_size != config.vocab_size:
        raise CheckpointError(f"tokenizer has {tokenizer.vocab_size} tokens but config.vocab_size is {config.vocab_size}")
    d = {'format': FORMAT, 'version': VERSION, 'config': config.to_dict(),
         'chars': ''.join(tokenizer.chars), 'step': step,
         'params': {name: [[p.data for p in row] for row in matrix] for name, matrix in params.items()}}
    write_atomic(path, json.dumps(d, separators=(',', ':')))


def load_checkpoint(path):
    """(params, config, tokenizer, step) from a checkpoint file."""
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e}") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated (invalid JSON: {e.msg} "
                              f"at line {e.lineno} column {e.colno})") from None
    if not isinstance(d, dict) or d.get('format') != FORMAT:
        raise CheckpointError(f"{path} is not a microgpt-graph checkpoint (no \"format\": \"{FORMAT}\")")
    if d.get('version') != VERSION:
        raise CheckpointError(f"checkpoint {path} has version {d.get('version')!r}; this tool reads version {VERSION}")
    try:
        config = GPTConfig(**d['config'])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} has a bad config: {e}") from None
    try:
        tokenizer = Tokenizer(d.get('chars', ''))
    except (DataError, TypeError) as e:
        raise CheckpointError(f"checkpoint {path} has a bad vocabulary: {e}") from None
    if tokenizer.vocab_size != config.vocab_size:
        raise CheckpointError(f"checkpoint {path} is inconsistent: {len(tokenizer.chars)} characters + BOS "
                              f"but config.vocab_size is {config.vocab_size}")
    stored = d.get('params')
    if not isinstance(stored, dict):
        raise CheckpointError(f"checkpoint {path} has no \"params\" object")
    expected = param_shapes(config)
    missing = [n for n in expected if n not in stored]
    extra = [n for n in stored if n not in expected]
    if missing or extra:
        raise CheckpointError(f"checkpoint {path} does not match its config: "
                              + '; '.join(filter(None, [missing and f"missing {', '.join(missing)}",
                                                        extra and f"unexpected {', '.join(extra)}"])))
    params = {}
    for name, (rows, cols) in expected.items():
        m = stored[name]
        if (not isinstance(m, list) or len(m) != rows
                or any(not isinstance(r, list) or len(r) != cols for r in m)):
            raise CheckpointError(f"checkpoint {path}: {name} must be a {rows}x{cols} matrix")
        for r in m:
            for x in r:
                if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
                    raise CheckpointError(f"checkpoint {path}: {name} holds {x!r}; parameters must be finite numbers")
        params[name] = [[Value(float(x)) for x in r] for r in m]
    return params, config, tokenizer, d.get('step')


def load_model(checkpoint=None, seed=42):
    """(params, config, tokenizer): the checkpoint's model, or with no checkpoint a
    fresh seeded one (default config, vocabulary a-z)."""
    if checkpoint is None:
        return fresh_model(seed)
    params, config, tokenizer, _ = load_checkpoint(checkpoint)
    return params, config, tokenizer
