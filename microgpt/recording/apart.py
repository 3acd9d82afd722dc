"""A big step recorded and stored in a process of its own (issue 25: the explorer at 5 M nodes).

Recording 5 million Values in the server's own process leaves ~200 MB of Python's small-object
arenas behind (the parameters' grads, made during backward, pin one or two blocks in each arena
the tape used: 265 arenas of 1 MB held for 54 MB of live blocks), and building the step's use
records there (~10 s of CPU at 5 M nodes) shares one interpreter with the views a page asks for.
So the step is recorded here, in a child, and handed over as the binary codec's columns ("none":
the script recorder's hand-off, codecs.binary), read back with the one validator as any saved
trace is; then the child builds the indexes the use records read, the use records and their
figures, and hands those over too (checked by codecs.stored) before it builds the rest and writes
the user cache's entry (entries.store), while the server indexes its copy and draws the first
view on the other core:

    apart = Apart(params, config, tokenizer, 'christopher', lines=True, path=entry)   # starts the child
    trace = apart.trace(progress)   # the recorded step (record_step's phases, then HANDOVER)
    apart(progress)                 # the store: the use records attached to it, then the entry written; path
    apart.close()                   # ends the child (also when the parent goes: it watches)

The child is the same code on the same numbers (record_step on the parameters' float64 values):
its trace is the in-process one bit for bit, its "made by" chains too (tests/test_apart.py). A
plain `python -c` child, as recording.ahead's: no fork of a threaded server, no re-run of a main
script. It watches its parent and ends within a moment of the parent's end, however it ends.
"""

import contextlib
import json
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from pathlib import Path

from ..data import Tokenizer
from ..engine import Value
from ..model import GPTConfig, flat_params
from .codecs import binary
from .codecs.stored import check_stored
from .codecs.validate import TraceFormatError, plain_of
from .entries import USE_RECORDS, store
from .madeby import kept_chains
from .step import record_step
from .trace import Trace
from .uses import FIGURE_COLUMNS, USE_COLUMNS, held, use_figures, use_records

HANDOVER = 'taking the recorded step from its process'     # the parent reading the child's columns
INDEXING = 'building indexes'      # the child's phase before and after the use records
_FRAME = struct.Struct('<cQ')   # a message's kind and length in bytes, before it
_CHILD = 'from microgpt.recording.apart import child; child()'
_RECORDS = dict(USE_COLUMNS + FIGURE_COLUMNS)   # what the 'u' messages hold: name -> type code
_WATCH = 0.25       # s between the child's looks at its parent
_PREFIX = 'microgpt-apart-'     # the temp file of the trace's columns (the parent's: removed once read, or by close)
_NICE = 10          # the child's niceness added once the step is handed over (its indexes, use records, store)
_FIELDS = ('op', 'child', 'scope', 'scopes', 'data', 'backward_order', 'param_names', 'param_shapes', 'param_base')


class ApartError(RuntimeError):
    """The recording process failed or ended early: one line."""


class Apart:
    def __init__(self, params, config, tokenizer, doc, *, lines=False, max_nodes=None, path=None):
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])     # where `microgpt` is, installed or not
        env['PYTHONPATH'] = os.pathsep.join(filter(None, (root, env.get('PYTHONPATH'))))
        # the file the child writes the trace's columns to: this process's, removed by close() whatever the child did
        fd, name = tempfile.mkstemp(prefix=_PREFIX, suffix='.mgtrace')
        os.close(fd)
        self.columns = Path(name)
        self.process = subprocess.Popen([sys.executable, '-c', _CHILD, str(os.getpid()), name], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env=env)
        shapes = [(name, len(m), len(m[0]) if m else 0) for name, m in params.items()]
        data = array('d', (p.data for p in flat_params(params)))
        job = (shapes, data, config.to_dict(), list(tokenizer.chars), doc, lines, max_nodes,
               None if path is None else str(path))
        try:
            self.process.stdin.write(pickle.dumps(job))
            self.process.stdin.close()
        except OSError:
            pass        # it ended at once: its exit status is the error (trace)
        self._got = None    # the messages after the trace: a queue filled by a thread (trace)
        self.recorded = None    # that trace, when the child goes on to store it
        self.path = path

    def _read(self):
        """(kind, payload) of the child's next message; ApartError when it ended instead."""
        out = self.process.stdout
        head = out.read(_FRAME.size)
        if len(head) == _FRAME.size:
            kind, size = _FRAME.unpack(head)
            body = out.read(size)
            if len(body) == size:
                return kind, body
        raise ApartError(f"the recording process ended (exit status {self.process.wait()})")

    def trace(self, progress=None):
        """The step the child records: its phases told to `progress(phase, done, total)` (raising there ends
        the child: a cancelled recording), then HANDOVER as its columns are read and checked."""
        tell = progress or (lambda phase, done, total: None)
        try:
            while True:
                kind, body = self._read()
                if kind == b'p':
                    tell(*json.loads(body))
                elif kind == b't':
                    break
                else:
                    raise ApartError(body.decode('utf-8', 'replace'))
            tell(HANDOVER, 0, 1)
            try:
                raw = self.columns.read_bytes()
            finally:
                self.columns.unlink(missing_ok=True)
            trace = Trace(**binary.read(raw))
            del raw
            tell(HANDOVER, 1, 1)
        except BaseException:
            self.close()
            raise
        if self.path is None:
            self.close()
        else:           # what follows is read as it comes, so the child never waits for the store's job
            self.recorded = trace
            self._got = queue.Queue()
            threading.Thread(target=self._drain, daemon=True).start()
        return trace

    def _drain(self):
        while True:
            try:
                self._got.put(self._read())
            except (ApartError, OSError, ValueError) as e:
                self._got.put((b'e', str(e).encode()))
                return

    def __call__(self, progress=None):
        """The store (entries.store's, made by the child): its phases told, the use records and their figures
        attached to the trace (checked, in one assignment: uses.with_uses) as soon as they come, before the entry is
        written; the entry's path. OSError (its one line) when the child could not write it; ApartError when it
        failed otherwise or ended."""
        tell = progress or (lambda phase, done, total: None)
        try:
            while True:
                kind, body = self._got.get()
                if kind == b'p':
                    tell(*json.loads(body))
                elif kind == b'u':
                    attach(self.recorded, records_of(body))
                elif kind == b'd':
                    return self.path
                elif kind == b'o':
                    raise OSError(body.decode('utf-8', 'replace'))
                else:
                    raise ApartError(body.decode('utf-8', 'replace'))
        finally:
            self.close()

    def close(self):
        """End the child (a kill: what it has not written is not kept), wait for it, remove the columns' file."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)
        self.process.stdout.close()
        self.columns.unlink(missing_ok=True)


def pack_records(cols):
    """The bytes of a 'u' message: a JSON line of [name, type code, length] then each column's bytes; `cols`: the use
    records (USE_COLUMNS), or their figures (FIGURE_COLUMNS), sent as soon as each is built."""
    head = json.dumps([[name, col.typecode, len(col)] for name, col in cols.items()]).encode()
    return b''.join([head, b'\n', *(col.tobytes() for col in cols.values())])


def records_of(raw):
    """{name: array} of a 'u' message: all of USE_COLUMNS or all of FIGURE_COLUMNS; TraceFormatError when not."""
    head, _, body = raw.partition(b'\n')
    cols, at = {}, 0
    for name, code, length in json.loads(head):
        if _RECORDS.get(name) != code or name in cols:
            raise TraceFormatError(f"the recording process sent a column {str(name)[:40]!r} it should not")
        col = array(code)
        size = col.itemsize * length
        if len(body) < at + size:
            raise TraceFormatError(f"the recording process's column {name!r} is cut short")
        col.frombytes(body[at:at + size])
        cols[name], at = col, at + size
    if at != len(body) or set(cols) not in ({n for n, _ in USE_COLUMNS}, {n for n, _ in FIGURE_COLUMNS}):
        raise TraceFormatError("the recording process's use records are incomplete")
    return cols


def attach(trace, cols):
    """Put the use records, or then their figures, on `trace` (its other indexes built: a view was drawn), checked as
    a file's are (codecs.stored), in one assignment (as uses.with_uses: a view sees all of them or none; records
    without their figures read the values, as a file's do)."""
    if all(name in trace._index for name in cols) or (FIGURE_COLUMNS[0][0] in cols and not held(trace)):
        return
    fields = {name: getattr(trace, name) for name in _FIELDS}
    checked = check_stored({**trace.build_indexes(), **cols}, fields)
    trace._index = {**trace._index, **{name: checked[name] for name in cols}}


def child():
    """The child: the job from its stdin, the step recorded and handed over (its columns written to the parent's file),
    then (given an entry's path) its use records and the entry; each message a frame on stdout (p: a phase, t: the
    columns are written, u: use records, d: stored, o: the entry could not be written, e: an error), nothing else
    written there."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # Ctrl-C is its parent's to handle (it then ends this one)
    out = os.fdopen(os.dup(1), 'wb')
    os.dup2(2, 1)                                   # a stray print goes to stderr, not into a message
    parent, columns = int(sys.argv[1]), sys.argv[2]     # the parent's id and file, from its command line
    threading.Thread(target=_watch, args=(parent, columns), daemon=True).start()

    def send(kind, body):
        out.write(_FRAME.pack(kind, len(body)))
        out.write(body)
        out.flush()

    def say(phase, done, total):
        send(b'p', json.dumps([phase, done, total]).encode())
    try:
        shapes, data, config, chars, doc, lines, max_nodes, path = pickle.load(sys.stdin.buffer)
        values = iter(data)
        params = {name: [[Value(next(values)) for _ in range(cols)] for _ in range(rows)] for name, rows, cols in shapes}
        trace = record_step(params, GPTConfig(**config), Tokenizer(chars), doc, max_nodes=max_nodes, lines=lines,
                            progress=say)
        # through a file, read at once (as the script recorder's): through the pipe, 64 KB a turn, on a busy
        # machine each turn waits for the reader's slice
        with open(columns, 'wb') as f:
            f.write(binary.encode(plain_of(trace), 'none', None, kept_chains(trace)))
        send(b't', b'')
        if path is None:
            return
        if hasattr(os, 'nice'):     # not on Windows
            os.nice(_NICE)  # from here on background work: the server's first view comes first on a busy machine
        say(INDEXING, 0, 3)
        trace.build_indexes(edges_only=True)         # what the use records read: the reverse edges, the runs
        records = use_records(trace, lambda done, total: say(USE_RECORDS, done, total))
        send(b'u', pack_records(records))       # what a matrix's view reads; its figures 2 s later
        figures = use_figures(trace, records)
        send(b'u', pack_records(figures))
        trace._index = {**trace._index, **records, **figures}
        trace.build_indexes(lambda done, total: say(INDEXING, done, total))
        try:
            store(Path(path), trace, say)
        except OSError as e:
            send(b'o', ' '.join(f"{type(e).__name__}: {e}".split()).encode())
            return
        send(b'd', b'')
    except (BrokenPipeError, ConnectionError):
        _remove(columns)       # the parent closed the pipe or went away: the columns are no one's
    except Exception as e:  # noqa: BLE001 -- told to the parent in one line
        send(b'e', ' '.join(f"{type(e).__name__}: {e}".split()).encode())


def _watch(parent, columns):
    """End this process once its parent (process id `parent`) has gone, even before this one started (it is then
    another's child), whatever it is doing, and remove the parent's file `columns`, which the parent no longer can."""
    while os.getppid() == parent:
        time.sleep(_WATCH)
    _remove(columns)
    os._exit(1)


def _remove(name):
    with contextlib.suppress(OSError):
        os.unlink(name)
