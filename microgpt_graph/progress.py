"""Progress on stderr, for a person watching: click bars for the library's progress(done, total)
callbacks and for one long call with nothing to count (busy_bar), silent when stderr is not a
terminal; and Phases, the progress(phase, done, total) callback that recording, loading and
the step cache report to (phase, percentage, time left), which also writes plain lines to a
log when the work takes long. All silent under -q.
"""

import itertools
import sys
import threading
import time
from contextlib import contextmanager

import click

from microgpt.recording.phases import phase_figures


class Phases:
    """progress(phase, done, total) -> 'recording: 42% (3 s left)' on stderr.

    On a terminal: one line rewritten in place, once the work has run `after` seconds (a quick
    step shows nothing), ended when a phase completes. Elsewhere (a log, a CI job): plain lines,
    only once the work has run `log_after` seconds, then at most one every `every` seconds and
    one when a phase completes. Time left is the phase's elapsed time scaled by what remains.
    `clock` and `tty` are for tests."""

    def __init__(self, quiet=False, file=None, *, tty=None, clock=time.monotonic, after=1.0, log_after=5.0,
                 every=5.0):
        self.quiet, self.file, self.clock = quiet, file, clock
        self.tty = (file or sys.stderr).isatty() if tty is None and not quiet else bool(tty)
        self.after, self.log_after, self.every = after, log_after, every
        self.start = self.last = None       # when the work began; when the last line was written
        self.phase = self.phase_start = None
        self.phase_shown = False            # whether this phase has a line yet
        self.open = False                   # a terminal line is written and not ended yet

    def __call__(self, phase, done, total):
        if self.quiet:
            return
        now = self.clock()
        if self.start is None:
            self.start = now
        if phase != self.phase:
            self.phase, self.phase_start, self.phase_shown = phase, now, False
        if not self._due(now, total and done >= total):
            return
        self.last, self.phase_shown = now, True
        line = self.line(phase, done, total, now)
        out = self.file or sys.stderr
        finished = total and done >= total
        out.write('\r\x1b[K' + line + ('\n' if finished else '') if self.tty else line + '\n')
        out.flush()
        self.open = self.tty and not finished

    def close(self):
        """End the terminal line of a phase that stopped before its end (the work failed, or was
        interrupted), so what is printed next (the error) starts a line of its own."""
        if self.open:
            (self.file or sys.stderr).write('\n')
            self.open = False

    def _due(self, now, finished):
        """Whether this call writes a line (see the class's docstring)."""
        if now - self.start < (self.after if self.tty else self.log_after):
            return False
        if finished:        # ends a phase that has a line, or one long enough to deserve its own
            return self.phase_shown or self.tty or now - self.phase_start >= self.every
        return self.last is None or now - self.last >= (0.1 if self.tty else self.every)

    def line(self, phase, done, total, now):
        return phase_figures(phase, done, total, now - self.phase_start)['line']


def watching(quiet):
    """Whether to draw progress: stderr is a terminal and --quiet was not given."""
    return not quiet and sys.stderr.isatty()


class Progress:
    """The library's progress(done, total) callback, drawn as a click progress bar
    on stderr; silent when nobody watches. Use as a context manager."""

    def __init__(self, label, quiet=False, file=None, info=None):
        self.label, self.quiet, self.file, self.info = label, quiet, file, info
        self.bar = None

    def __call__(self, done, total):
        if self.quiet or not (self.file or sys.stderr).isatty():
            return
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=self.file or sys.stderr,
                                         show_pos=bool(total), show_eta=bool(total),
                                         item_show_func=self.info and (lambda _: self.info()))
            self.bar.__enter__()
        self.bar.update(done - self.bar.pos)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)


@contextmanager
def busy_bar(label, limit=None, quiet=False, file=None):
    """While one long call runs (a Graphviz layout, writing a big trace: no steps
    to count), a bar that ticks from a thread: the elapsed time against `limit`
    seconds (the --timeout), or a pulse when there is none. Silent when nobody watches."""
    out = file or sys.stderr
    if quiet or not out.isatty():
        yield
        return
    stop = threading.Event()
    start = time.monotonic()
    ticks = max(1, int(limit * 10)) if limit else None
    shown = f" of {limit:g} s" if limit else ''
    with click.progressbar(itertools.repeat(None), length=ticks, label=label, file=out, show_percent=False,
                           show_eta=False, show_pos=False,
                           item_show_func=lambda _: f"{time.monotonic() - start:.0f} s{shown}") as bar:
        def tick():
            while not stop.wait(0.2):
                done = int((time.monotonic() - start) * 10)
                bar.update((min(ticks, done) if ticks else done) - bar.pos, True)
        thread = threading.Thread(target=tick, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
