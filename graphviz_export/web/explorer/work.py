"""The explorer's long work (recording a document, training for compare, laying out a view), out of
every other request's way, cancellable, and reporting where it is.

    work = Work()
    trace = work.run(('record', key), 'recording emma', lambda job: record(...))
    work.progress()     # [{'what': 'training for compare', 'phase': 'training', 'step': 37, 'steps': 500, ...}]
    work.cancel()       # every job stops at its next step; its requests answer 409

A job runs in the thread of the request that asked for it first (run), or in a thread of its own
while that request answers at once and the page polls it (start: a new document recorded in the
background); a request asking for the same thing meanwhile waits for that result instead of doing
the work again; every other request goes on (no lock is held while a job works: the caches' own
locks are held only to look up and store).
A job says where it is by `job.at(phase, step, steps)`, which is also where it stops when cancelled
(it raises Cancelled there): training calls it after every step (about 70 ms each), so a cancel
takes effect within one step. Who cancels: the page's Cancel button (/api/cancel), and a view
request that does not need a running comparison (the user went elsewhere: Api.view).
"""

import threading
import time
from contextlib import contextmanager

from microgpt.recording.phases import phase_figures

ENDED_KEEP = 10.0       # seconds a background job's outcome waits for the request polling it (Work.start)


class Cancelled(Exception):
    """The work a request waited for was cancelled (by /api/cancel or by a request for another view)."""


class Busy(Exception):
    """A job that runs alone was asked for while another of its kind runs (`job`: that one)."""

    def __init__(self, job):
        super().__init__(job.what)
        self.job = job


class Opening(Exception):
    """A request needs the step the server is still opening (Recordings.open): `job` says how far,
    or how it failed."""

    def __init__(self, job):
        super().__init__(job.what)
        self.job = job


class Job:
    """One piece of long work: what it is, where it is, and whether it was cancelled."""

    def __init__(self, key, what):
        self.key, self.what = key, what
        self.phase, self.step, self.steps = 'starting', 0, 0
        self.started = self.phase_started = time.monotonic()
        self.cancelled = threading.Event()
        self.done = threading.Event()
        self.result = self.error = self.ended = None

    def at(self, phase, step=0, steps=0):
        """Where the job is (a phase, step k of N); raises Cancelled when it was cancelled."""
        if self.cancelled.is_set():
            raise Cancelled(f"{self.what} was cancelled ({self.phase}"
                            f"{f' at step {self.step} of {self.steps}' if self.steps else ''})")
        if phase != self.phase:
            self.phase_started = time.monotonic()
        self.phase, self.step, self.steps = phase, step, steps

    def describe(self):
        """What runs, where, for how long: with the phase's percentage, time left and the line the
        terminal prints for it (recording.phases: one implementation for both)."""
        now = time.monotonic()
        figures = phase_figures(self.phase, self.step, self.steps, now - self.phase_started)
        return {'what': self.what, 'phase': self.phase, 'step': self.step, 'steps': self.steps,
                'seconds': round(now - self.started, 1), 'kind': self.key[0], 'percent': figures['percent'],
                'left': figures['left'], 'line': figures['line']}


class Work:
    """The jobs running now, by key: each done once, whoever else asks for it meanwhile."""

    def __init__(self):
        self._lock = threading.Lock()
        self._jobs = {}             # key -> Job, while it runs
        self._ended = {}            # key -> Job: a background job's outcome, until asked for (start)
        self._answering = 0         # requests being answered now (serving)
        self._quiet = threading.Condition()

    @contextmanager
    def serving(self):
        """Around the answer of one request (the HTTP server's): work that yields to requests (quiet) waits."""
        with self._quiet:
            self._answering += 1
        try:
            yield
        finally:
            with self._quiet:
                self._answering -= 1
                self._quiet.notify_all()

    def quiet(self):
        """Return once no request is being answered: a background job that only stores (Recordings.drawn)
        calls it between its pieces, so a view asked meanwhile has the interpreter to itself (two threads
        of Python share one core: a view beside 7 s of use records took 3-5x its time) but for the piece
        running when it came (tens of ms at 5 M nodes)."""
        with self._quiet:
            self._quiet.wait_for(lambda: self._answering == 0)

    def run(self, key, what, fn):
        """fn(job)'s result, computed by the first request that asks for `key` (the others wait for it).
        Its exception is every waiting request's; Cancelled when the job was cancelled."""
        with self._lock:
            job = self._jobs.get(key)
            mine = job is None
            if mine:
                job = self._jobs[key] = Job(key, what)
        if not mine:
            job.done.wait()
            if job.error is not None:
                raise job.error
            return job.result
        try:
            job.result = fn(job)
            return job.result
        except BaseException as e:
            job.error = e
            raise
        finally:
            with self._lock:
                self._jobs.pop(key, None)
            job.done.set()

    def start(self, key, what, fn, alone=False):
        """Run fn(job) in a thread of its own (the request that asked answers at once): the Job of
        `key`, running or just ended. A request for the same key meanwhile, by start or run, joins
        it. `alone`: refused (Busy, naming what runs) while another job of the key's kind runs.
        An ended job is kept until it is asked for once, for ENDED_KEEP seconds (its result or error),
        so the request polling it learns how it ended; asked for later, the work starts again."""
        with self._lock:
            ended = self._ended.pop(key, None)
            if ended is not None and time.monotonic() - ended.ended < ENDED_KEEP:
                return ended
            job = self._jobs.get(key)
            if job is not None:
                return job
            if alone:
                other = next((j for k, j in self._jobs.items() if k[0] == key[0]), None)
                if other is not None:
                    raise Busy(other)
            job = self._jobs[key] = Job(key, what)
        threading.Thread(target=self._background, args=(job, fn), daemon=True, name=what).start()
        return job

    def _background(self, job, fn):
        try:
            job.result = fn(job)
        except BaseException as e:      # noqa: BLE001 -- the outcome of the job, told to whoever asks next
            job.error = e
        job.ended = time.monotonic()
        with self._lock:
            self._jobs.pop(job.key, None)
            self._ended[job.key] = job
            while len(self._ended) > 8:      # outcomes nobody asked for (the page went away)
                self._ended.pop(next(iter(self._ended)))
        job.done.set()

    def running(self, kind):
        """The keys of the jobs of `kind` (a key's first item) running now."""
        with self._lock:
            return [k for k in self._jobs if k[0] == kind]

    def cancel(self, kind=None, keep=()):
        """Cancel the running jobs (of `kind` only, if given), but those in `keep`; how many were."""
        with self._lock:
            jobs = [j for k, j in self._jobs.items() if (kind is None or k[0] == kind) and k not in keep]
        for j in jobs:
            j.cancelled.set()
        return len(jobs)

    def progress(self):
        """What runs now, oldest first: [job.describe()]."""
        with self._lock:
            jobs = list(self._jobs.values())
        return [j.describe() for j in sorted(jobs, key=lambda j: j.started)]
