"""Recorded steps kept in the user cache folder, so `render` (and every command that records
a step) records a given step once: the same parameters, config, vocabulary, document and code
give the same Trace, bit for bit, so the second time it is loaded instead (for 'christopher':
0.15-0.25 s against ~1 s to record, the loader's checks included).

    trace, reused = cached_step(params, config, tokenizer, 'christopher')
    # reused: the Path the trace was read from, or None when it was recorded now

Where: microgpt.cache.user_cache_dir() / 'steps' (the same folder as the compiled WebAssembly
Graphviz and the names list: $MICROGPT_CACHE, else e.g. ~/.cache/microgpt-graph), one binary
trace per step (recording.codecs.binary, zstd: ~1-3 MB for a 12-letter name), named
by the SHA-256 of its key and written atomically. The key is everything the recording reads:
the parameters' values (so a checkpoint's content or a seed, not its path), the config, the
vocabulary, the document and the code (a hash of microgpt's own sources, so an edited port or
recorder records again).

"Made by" (recording.madeby: the line of model.py behind each op, which the explorer asks for
with lines=True) is kept in the entry, as every binary trace file keeps it (codecs.binary,
version 3): a step recorded with lines stores its chains; one recorded without (by `render`) and
then asked for with lines gets them by replaying its forward pass once, here, and is stored again
with them. So a reused step answers "made by" as the recording did, without a replay under the
engine's lock when the page first asks.

Storing builds the step's use records (recording.uses: ~7 s of CPU at 5 M nodes) then writes the
file (entries.store): `explore` hands it over (`later`) and makes it in the background once the step's first
view is drawn, telling a failure in one line (graphviz_export.web.explorer.recordings); other commands store
before they go on. A big step `explore` records (`apart`: 500,000 nodes or more) is recorded and stored in a
process of its own (recording.apart), its use records handed over as soon as they are built.
Never an error: a folder that cannot be written is skipped; an entry that does not load (cut
short, corrupt, from another version) is recorded again and rewritten. Bypassed when asked
(`use=False`: --no-cache; $MICROGPT_NO_STEP_CACHE set to anything but '' or '0') and whenever
the engine's ops are not the engine's own (a fault injected for teaching, the backprop lab):
such a step is not the key's step. The folder keeps the MAX_ENTRIES most recently used steps.
"""

import contextlib
import hashlib
import json
import os
import struct
from pathlib import Path

from .. import engine
from ..cache import user_cache_dir
from ..model import check_model, flat_params
from .apart import Apart
from .budget import DEFAULT_MAX_NODES, check_budget
from .entries import SUFFIX, store
from .madeby import kept_chains, put_chains, replay_chains
from .step import record_step
from .trace import Trace

NO_CACHE_ENV = 'MICROGPT_NO_STEP_CACHE'
FOLDER = 'steps'
KEY_VERSION = 2         # bump when the key's meaning changes (2: lines left out, chains kept with the step)


def cache_wanted(use=True):
    """False when --no-cache (`use=False`) or $MICROGPT_NO_STEP_CACHE asks to bypass the cache."""
    return use and os.environ.get(NO_CACHE_ENV, '').strip() in ('', '0')


def engine_is_pristine():
    """Whether every primitive op and the backward pass are the engine's own (not a fault's or a
    lab's replacement): only then is a recording a function of the key."""
    ops = (engine.Value.__dict__[attr] for attr in engine.PRIMITIVES.values())
    return all(getattr(fn, '__module__', None) == engine.__name__ for fn in (*ops, engine.accumulate))


def code_version():
    """SHA-256 of microgpt's own sources (the port, the recorder, the codecs): a recording made
    by other code is another recording."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent.parent
    for path in sorted(root.rglob('*.py')):
        digest.update(str(path.relative_to(root)).encode() + b'\0' + path.read_bytes() + b'\0')
    return digest.hexdigest()


def step_key(params, config, tokenizer, doc, *, code=None):
    """The hex SHA-256 naming the step of `doc` on this model: parameters (their float64 bits),
    config, vocabulary, document and the code version (noting "made by" lines or not, the step
    is the same Trace: its chains are kept beside it)."""
    values = [p.data for p in flat_params(params)]
    head = json.dumps({'key': KEY_VERSION, 'code': code or code_version(), 'config': config.to_dict(),
                       'chars': list(tokenizer.chars), 'doc': doc, 'params': len(values)}, sort_keys=True)
    digest = hashlib.sha256(head.encode('utf-8'))
    digest.update(struct.pack(f'<{len(values)}d', *values))
    return digest.hexdigest()


def entry_path(key):
    return user_cache_dir() / FOLDER / f'{key[:40]}{SUFFIX}'


def cached_step(params, config, tokenizer, doc, *, max_nodes=DEFAULT_MAX_NODES, lines=False, use=True,
                record=None, progress=None, later=None, apart=None):
    """(Trace, Path it was reused from or None): the step of `doc`, loaded from the cache when it
    was recorded before, else recorded by `record` (default record_step) and stored.
    record_step's refusals (a model that does not fit, a bad document, a step over `max_nodes`)
    come first either way. `progress(phase, done, total)`: told what record_step tells it, or
    'loading the recorded step' (0, then 1 of 1), and the store's phases (store). `later`: given, the
    store is not made here but handed to it, `later(store)`, store(progress) making it when the caller
    likes (the explorer: in the background once the step's first view is drawn, store's errors its own).
    `apart`: a step estimated at this many nodes or more, to be stored `later`, is recorded and stored in a
    process of its own (recording.apart: the server keeps no recording's leftovers; None: never)."""
    record = record or record_step
    kwargs = {} if progress is None else {'progress': progress}
    pristine = engine_is_pristine()     # a fault's or a lab's engine is this process's only: never apart
    if not (cache_wanted(use) and pristine):
        return record(params, config, tokenizer, doc, max_nodes=max_nodes, lines=lines, **kwargs), None
    check_model(params, config, tokenizer)
    nodes = check_budget(config, len(tokenizer.encode(doc)) - 1, max_nodes, what=f"recording {doc[:40]!r}")
    path = entry_path(step_key(params, config, tokenizer, doc))
    tell = progress or (lambda phase, done, total: None)
    if path.is_file():
        tell('loading the recorded step', 0, 1)
        trace = _read(path)
        tell('loading the recorded step', 1, 1)
        if trace is not None:
            if lines and kept_chains(trace) is None:
                _add_chains(path, trace, tell, later)
            return trace, path
    if apart is not None and later is not None and nodes >= apart and record is record_step:
        child = Apart(params, config, tokenizer, doc, lines=lines, max_nodes=max_nodes, path=path)
        trace = child.trace(progress)
        later(child)        # child(progress): the store, the child's; child.close() ends it
        return trace, None
    trace = record(params, config, tokenizer, doc, max_nodes=max_nodes, lines=lines, **kwargs)
    _store_now_or_later(path, trace, tell, later)
    return trace, None


def _store_now_or_later(path, trace, tell, later):
    if later is not None:
        later(lambda progress=None: store(path, trace, progress))
        return
    with contextlib.suppress(OSError):     # never an error here: a folder that cannot be written is skipped
        store(path, trace, tell)


def _add_chains(path, trace, tell, later=None):
    """Give `trace`, read from the entry at `path` without "made by" chains (recorded by `render`),
    its chains by replaying its forward pass once (the caller holds the engine, as for a recording)
    and store the entry again with them."""
    tell('noting the line of model.py behind each op', 0, 1)
    chains = replay_chains(trace)
    tell('noting the line of model.py behind each op', 1, 1)
    if chains is None:
        return          # not replayable: made_by falls back to the scope's line, as it would
    put_chains(trace, chains)
    _store_now_or_later(path, trace, tell, later)


def _read(path):
    """The Trace stored at `path`, or None when it does not load. Whatever is wrong with an
    entry (gone meanwhile, cut short, corrupt, another version's), recording again is the
    answer: the entry is a pure function of its key."""
    try:
        trace = Trace.load(path)
    except Exception:       # noqa: BLE001 -- any failure to load means "record it again"
        return None
    with contextlib.suppress(OSError):
        os.utime(path)      # most recently used: kept when the folder is trimmed
    return trace
