"""The explorer's long work (recording a document, training for compare, laying out a view), out of
every other request's way, cancellable, and reporting where it is.

    work = Work()
    trace = work.run(('record', key), 'recording emma', lambda job: record(...))
    work.progress()     # [{'what': 'training for compare', 'phase': 'training', 'step': 37, 'steps': 500, ...}]
    work.cancel()       # every job stops at its next step; its requests answer 409

A job runs in the thread of the request that asked for it first; a request asking for the same
thing meanwhile waits for that result instead of doing the work again; every other request goes
on (no lock is held while a job works: the caches' own locks are held only to look up and store).
A job says where it is by `job.at(phase, step, steps)`, which is also where it stops when cancelled
(it raises Cancelled there): training calls it after every step (about 70 ms each), so a cancel
takes effect within one step. Who cancels: the page's Cancel button (/api/cancel), and a view
request that does not need a running comparison (the user went elsewhere: Api.view).
"""

import threading
import time


class Cancelled(Exception):
    """The work a request waited for was cancelled (by /api/cancel or by a request for another view)."""


class Job:
    """One piece of long work: what it is, where it is, and whether it was cancelled."""

    def __init__(self, key, what):
        self.key, self.what = key, what
        self.phase, self.step, self.steps = 'starting', 0, 0
        self.started = time.monotonic()
        self.cancelled = threading.Event()
        self.done = threading.Event()
        self.result = self.error = None

    def at(self, phase, step=0, steps=0):
        """Where the job is (a phase, step k of N); raises Cancelled when it was cancelled."""
        if self.cancelled.is_set():
            raise Cancelled(f"{self.what} was cancelled ({self.phase}"
                            f"{f' at step {self.step} of {self.steps}' if self.steps else ''})")
        self.phase, self.step, self.steps = phase, step, steps

    def describe(self):
        return {'what': self.what, 'phase': self.phase, 'step': self.step, 'steps': self.steps,
                'seconds': round(time.monotonic() - self.started, 1), 'kind': self.key[0]}


class Work:
    """The jobs running now, by key: each done once, whoever else asks for it meanwhile."""

    def __init__(self):
        self._lock = threading.Lock()
        self._jobs = {}             # key -> Job, while it runs

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
