"""Checkpoints: config, vocabulary and every parameter matrix by name, as JSON.

    {"format": "microgpt-graph.checkpoint", "version": 1,
     "config": {"vocab_size": 27, "n_layer": 1, ...},
     "chars": "abcdefghijklmnopqrstuvwxyz",
     "step": 1000,                       # training steps taken (informational)
     "params": {"wte": [[0.0123, ...], ...], ...},
     "optimizer": {"step": 1000, "num_steps": 1000, "m": [...], "v": [...]}}   # optional

"optimizer" (written by `train --out`) holds Adam's first and second moments per
parameter in the flat reference order (matrix, row, column), the number of steps
taken and the length of the learning-rate schedule (num_steps), so the next update
(step + 1, while step < num_steps) can be shown exactly as Adam would take it.

Floats are written with Python's shortest round-trip repr, so loading gives
back the same bits. Saving writes a temp file and renames it over the target,
so an interrupted save never destroys an existing checkpoint; a model with a
NaN or infinite weight is not saved (it could not be loaded back).

Loading checks everything before use: at most MAX_BYTES of file, the config's
fields are integers in range, the vocabulary a sorted string of distinct
characters XML can hold, every weight a finite number with |w| <= MAX_WEIGHT.
Trained weights are a few units at most; 1e4 leaves room for odd experiments
while 1e150 (whose squares overflow to inf, so sampling fails) is refused.
"""

import json
import math
import os
from typing import NamedTuple

from .data import DataError, Tokenizer
from .engine import Value
from .errors import InputError, WriteError
from .files import read_capped, write_atomic, write_new
from .model import GPTConfig, param_shapes
from .train import SEED, fresh_model

FORMAT = 'microgpt-graph.checkpoint'
VERSION = 1
MAX_BYTES = 256 * 1024 * 1024   # 256 MiB: about 12 million weights (the default model's file is 87 KB)
MAX_WEIGHT = 1e4                # |w| above this is refused on load (see the module docstring)
CONFIG_LIMITS = {'vocab_size': (2, 1 << 20), 'n_layer': (1, 256), 'n_embd': (1, 4096),
                 'block_size': (1, 4096), 'n_head': (1, 4096)}


class Checkpoint(NamedTuple):
    """What a checkpoint file holds (read_checkpoint)."""
    params: dict            # {name: matrix of Values}
    config: GPTConfig
    tokenizer: Tokenizer
    step: int | None        # training steps taken
    optimizer: dict | None  # {'step', 'num_steps', 'm', 'v'}: Adam's state, when saved


class CheckpointError(InputError):
    """A checkpoint that cannot be read or does not fit; the message says why."""


class UnsavableModel(WriteError):
    """The model holds a NaN or infinite weight: saving it would write a file that
    load_checkpoint refuses. A failure of the run (training diverged), not bad input."""


def checkpoint_text(params, config, tokenizer, step=None, optimizer=None, num_steps=None):
    """The checkpoint's JSON text; UnsavableModel names the first non-finite weight."""
    if tokenizer.vocab_size != config.vocab_size:
        raise CheckpointError(f"tokenizer has {tokenizer.vocab_size} tokens but config.vocab_size is {config.vocab_size}")
    for name, matrix in params.items():
        for r, row in enumerate(matrix):
            for c, p in enumerate(row):
                if not math.isfinite(p.data):
                    raise UnsavableModel(f"the model was not saved: weight {name}[{r}][{c}] is {p.data!r} "
                                         f"(training diverged); a checkpoint holds finite weights only")
    d = {'format': FORMAT, 'version': VERSION, 'config': config.to_dict(),
         'chars': ''.join(tokenizer.chars), 'step': step,
         'params': {name: [[p.data for p in row] for row in matrix] for name, matrix in params.items()}}
    if optimizer is not None:   # an optim.Adam: its moments, after `step` steps
        if step is None:
            raise CheckpointError("an optimizer state needs the number of steps taken (step=)")
        d['optimizer'] = {'step': step, 'num_steps': num_steps or step, 'm': list(optimizer.m),
                          'v': list(optimizer.v)}
    return json.dumps(d, separators=(',', ':'))


def save_checkpoint(path, params, config, tokenizer, step=None, optimizer=None, num_steps=None):
    write_atomic(path, checkpoint_text(params, config, tokenizer, step, optimizer, num_steps))


def save_checkpoint_or_fallback(path, params, config, tokenizer, step=None, optimizer=None, num_steps=None):
    """(written_path, error): save to `path`; if that write fails (full disk, folder
    removed, ...), save to a new file in the temp folder, then the current folder,
    so a finished training run is not lost. error is None when `path` was written,
    else the one-line reason; written_path is None only when every place failed
    (or the model itself cannot be saved: UnsavableModel)."""
    try:
        text = checkpoint_text(params, config, tokenizer, step, optimizer, num_steps)
    except UnsavableModel as e:
        return None, str(e)
    try:
        write_atomic(path, text)
        return os.fspath(path), None
    except (WriteError, InputError) as e:
        error = str(e)
    for folder in (None, os.getcwd()):
        try:
            return write_new(folder, 'microgpt-checkpoint-', '.json', text), error
        except (WriteError, OSError):
            continue
    return None, error


def load_checkpoint(path):
    """(params, config, tokenizer, step) from a checkpoint file."""
    params, config, tokenizer, step, _ = read_checkpoint(path)
    return params, config, tokenizer, step


def read_checkpoint(path):
    """The Checkpoint in a file; its optimizer is {'step', 'num_steps', 'm', 'v'} (checked:
    one finite m and one finite v >= 0 per parameter) or None."""
    text = read_capped(path, MAX_BYTES, 'checkpoint', CheckpointError)
    try:
        d = json.loads(text, parse_int=_parse_int, parse_constant=_refuse_constant)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated (invalid JSON: {e.msg} "
                              f"at line {e.lineno} column {e.colno})") from None
    except (ValueError, RecursionError) as e:
        raise CheckpointError(f"checkpoint {path} is not a valid checkpoint: {str(e)[:200]}") from None
    if not isinstance(d, dict) or d.get('format') != FORMAT:
        raise CheckpointError(f"{path} is not a microgpt-graph checkpoint (no \"format\": \"{FORMAT}\")")
    if d.get('version') != VERSION:
        raise CheckpointError(f"checkpoint {path} has version {d.get('version')!r}; this tool reads version {VERSION}")
    config = _config(path, d.get('config'))
    chars = d.get('chars', '')
    if not isinstance(chars, str) or any(not _xml_char(ch) for ch in chars):
        raise CheckpointError(f"checkpoint {path} has a bad vocabulary: \"chars\" must be a string of "
                              f"printable characters, got {str(chars)[:60]!r}")
    try:
        tokenizer = Tokenizer(chars)
    except (DataError, TypeError) as e:
        raise CheckpointError(f"checkpoint {path} has a bad vocabulary: {e}") from None
    step = d.get('step')
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise CheckpointError(f"checkpoint {path}: \"step\" must be a whole number >= 0 or null, got {step!r}")
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
                if (isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x)
                        or abs(x) > MAX_WEIGHT):
                    shown = repr(x) if not isinstance(x, (list, dict, str)) else type(x).__name__
                    raise CheckpointError(f"checkpoint {path}: {name} holds {shown[:40]}; parameters must be finite "
                                          f"numbers with |value| <= {MAX_WEIGHT:g}")
        params[name] = [[Value(float(x)) for x in r] for r in m]
    n = sum(r * c for r, c in expected.values())
    return Checkpoint(params, config, tokenizer, step, _optimizer(path, d.get('optimizer'), n))


def _optimizer(path, opt, n):
    """The checked optimizer state of a checkpoint, or None when it has none."""
    if opt is None:
        return None
    where = f"checkpoint {path}: \"optimizer\""
    if not isinstance(opt, dict):
        raise CheckpointError(f"{where} must be an object with step, m and v")
    step = opt.get('step')
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise CheckpointError(f"{where} step must be a whole number >= 0, got {str(step)[:40]}")
    total = opt.get('num_steps', step)
    if isinstance(total, bool) or not isinstance(total, int) or total < step:
        raise CheckpointError(f"{where} num_steps must be a whole number >= step ({step}), got {str(total)[:40]}")
    out = {'step': step, 'num_steps': total}
    for key in ('m', 'v'):
        xs = opt.get(key)
        if not isinstance(xs, list) or len(xs) != n:
            raise CheckpointError(f"{where} {key} must list one number per parameter ({n})")
        for x in xs:
            if (isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x)
                    or abs(x) > MAX_WEIGHT or (key == 'v' and x < 0)):
                raise CheckpointError(f"{where} {key} holds {str(x)[:40]}; moments are finite numbers"
                                      f"{' >= 0' if key == 'v' else ''} with |value| <= {MAX_WEIGHT:g}")
        out[key] = [float(x) for x in xs]
    return out


def _parse_int(text):
    """JSON integers: exact when short, else a float (huge ones become inf and are
    refused as non-finite, instead of an OverflowError later)."""
    return int(text) if len(text) <= 18 else float(text)


def _refuse_constant(name):
    raise ValueError(f"{name} is not a number a checkpoint may hold")


def _xml_char(ch):
    o = ord(ch)
    return (o >= 0x20 and o != 0x7f and not 0xd800 <= o <= 0xdfff and o not in (0xfffe, 0xffff)
            and not 0x80 <= o <= 0x9f)


def _config(path, raw):
    """GPTConfig from the checkpoint's "config" object, every field an integer in range."""
    if not isinstance(raw, dict):
        raise CheckpointError(f"checkpoint {path} has a bad config: \"config\" must be an object")
    for key in raw:
        if key not in CONFIG_LIMITS:
            raise CheckpointError(f"checkpoint {path} has a bad config: unknown field {str(key)[:40]!r}; "
                                  f"fields: {', '.join(CONFIG_LIMITS)}")
    for key, (low, high) in CONFIG_LIMITS.items():
        v = raw.get(key)
        if v is None:
            raise CheckpointError(f"checkpoint {path} has a bad config: {key} is missing")
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
            raise CheckpointError(f"checkpoint {path} has a bad config: {key} must be a whole number "
                                  f"{low}..{high}, got {str(v)[:40]}")
    try:
        return GPTConfig(**raw)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} has a bad config: {e}") from None


def load_model(checkpoint=None, seed=SEED):
    """(params, config, tokenizer): the checkpoint's model, or with no checkpoint a
    fresh seeded one (default config, vocabulary a-z)."""
    if checkpoint is None:
        return fresh_model(seed)
    params, config, tokenizer, _ = load_checkpoint(checkpoint)
    return params, config, tokenizer
