"""The reference run's training, one step ahead in a process of its own (issue 26's 3 steps/s).

A played step in the reference's document order is two forward+backward passes that cannot be
one: the step trains docs[k % n] while the page shows `doc` (Play records it on the new
weights). The training does not depend on the recording, so it runs here, on the other core,
while the recorder records: the step's time is the longer of the two, not their sum.

    ahead = Ahead(docs, seed, adam, train_doc, schedule, start)   # start: None (fresh) or a state
    k, loss, data, m, v = ahead.next()      # the state after the next step: the parameters and
    ahead.close()                           # Adam's moments as `train_step` leaves them

The child is the same code on the same numbers (start_run, train_step): its floats are the
in-process run's bit for bit (tests/test_play.py compares 100 steps with `train`'s checkpoint).
It computes one step beyond what was asked (the pipe holds no more: a state is ~100 KB, more
than a pipe's buffer), so a stopped run costs no CPU; it ends when the run's schedule ends,
when close() is called, or when its parent goes in any way (its next write finds the pipe
closed: at most one step later).

A plain `python -c` child, not multiprocessing: its spawn start re-runs the parent's main
script (a user's script without an `if __name__ == '__main__'` guard would start it again),
and its fork start would copy a threaded server. Not PR_SET_PDEATHSIG either: it fires when
the *thread* that started the child ends, and a server's request thread ends with its request.
"""

import os
import pickle
import signal
import struct
import subprocess
import sys
from array import array
from pathlib import Path

from ..model import flat_params
from ..train import start_run, train_step

_HEAD = struct.Struct('<Q')     # a state's length in bytes, before it
_CHILD = 'from microgpt.recording.ahead import child; child()'


class Ahead:
    def __init__(self, docs, seed, adam, train_doc, schedule, start=None):
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])     # where `microgpt` is, installed or not
        env['PYTHONPATH'] = os.pathsep.join(filter(None, (root, env.get('PYTHONPATH'))))
        self.process = subprocess.Popen([sys.executable, '-c', _CHILD], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env=env)
        self.process.stdin.write(pickle.dumps((list(docs), seed, adam, train_doc, schedule, start)))
        self.process.stdin.close()

    def next(self):
        """(step, loss, parameter data, m, v) after the child's next step."""
        out = self.process.stdout
        head = out.read(_HEAD.size)
        if len(head) < _HEAD.size:
            raise RuntimeError(f"the training process ended (exit status {self.process.wait()})")
        size = _HEAD.unpack(head)[0]
        body = out.read(size)
        if len(body) < size:        # the child died mid-state: never a short, silently zipped state
            raise RuntimeError(f"the training process ended (exit status {self.process.wait()})")
        got = array('d')
        got.frombytes(body)
        n = (len(got) - 2) // 3
        return int(got[0]), got[1], got[2:2 + n], got[2 + n:2 + 2 * n], got[2 + 2 * n:]

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.stdout.close()
        self.process.wait(5)


def child():
    """The child: the run from its seed (or from `start`, (k, data, m, v)), a state written per step."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # Ctrl-C is its parent's to handle (the pipe then closes)
    docs, seed, adam, train_doc, schedule, start = pickle.load(sys.stdin.buffer)
    run = start_run(docs, seed=seed, adam=adam)
    flat, opt = flat_params(run.params), run.optimizer
    k = 0
    if start is not None:
        k, data, m, v = start
        for p, x in zip(flat, data):
            p.data = x
        opt.m[:], opt.v[:] = list(m), list(v)
    out = sys.stdout.buffer
    try:
        while k < schedule:
            loss = train_step(run, k, schedule, doc=train_doc)
            k += 1
            state = array('d', [k, loss])
            state.extend(p.data for p in flat)
            state.extend(opt.m)
            state.extend(opt.v)
            out.write(_HEAD.pack(len(state) * state.itemsize))
            out.write(state.tobytes())
            out.flush()
    except (BrokenPipeError, OSError):
        pass        # the parent closed the run or went away
