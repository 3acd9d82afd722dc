"""Recording: one training step of the port, every scalar op, as a `Trace`.

    from microgpt.recording import record_step
    trace = record_step(params, config, tokenizer, 'emma')

The modules, in the order data flows through them:
    ops.py         the op table (op name <-> small int)
    scopes.py      Scope(pos, layer, block, head, role), interned once
    tape.py        record(): swaps the engine's primitives for recording copies
                   and listens to the port's `microgpt.tags.scope` hook
    trace.py       Trace: the recorded step as plain columns, with queries
    codecs/        the Trace's files: JSON and binary codecs behind one validator
    cells.py       parameter names and cells ('layer0.attn_wq[3][5]'), checked once
    step.py        record_step(): forward, loss and backward of one document
    session.py     for the apps: documents recorded on cached models, a checkpoint's
                   optimizer state, N training steps recorded before/after
    adam.py        Adam's step on one parameter, as numbers (the update panel's)
    formats.py     the trace file formats by name and suffix (json, binary .mgtrace)

The port's defaults that every surface shares (the document shown when none is
named, the reference's seed and run length) are re-exported here, so the apps
take them from the recording package and never import the port for them.
"""

from ..data import DEFAULT_DOC
from ..train import NUM_STEPS, SEED
from .cells import TraceQueryError, check_param, parse_param
from .codecs import TraceFormatError
from .ops import OP_CODE, OPS
from .scopes import FIELDS, Scope, scope_path
from .step import record_step
from .tape import RecordingError, Tape, record
from .trace import Trace

__all__ = ['record_step', 'record', 'Tape', 'RecordingError', 'Trace', 'TraceQueryError', 'TraceFormatError',
           'parse_param', 'check_param', 'OPS', 'OP_CODE', 'FIELDS', 'Scope', 'scope_path', 'DEFAULT_DOC', 'SEED',
           'NUM_STEPS']
