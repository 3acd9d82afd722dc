"""The API's endpoints about long work (work.py), beside Api's views: what runs (`progress`),
stopping it (`cancel`; not the opening of a saved trace: `opening_refusal`), and a new document
recorded in the background (`record`).

    /api/record?doc=anna     {'ready': False, 'job': {'what': "recording 'anna'", 'phase': 'recording',
                              'percent': 41, 'left': 6.2, 'line': 'recording: 41% (6 s left)', ...}}
    (asked again while it runs: the same job, further on; once recorded: {'ready': True, 'job': None})

The page asks for a new document here, not by asking for its view: the request answers at once,
the page polls it (drawing the job's `line` and `percent`: the very figures the terminal prints,
recording.phases) and stays usable meanwhile (its views, panels, search and expansions of the
document on screen are answered: no lock of theirs is held by a recording), then shows the new
document's view, drawn from the trace now cached. One recording at a time: asked for another
while one runs, 409 with one line naming what runs and how far it is (Recordings.start).
"""

from microgpt.errors import InputError

from .answers import ApiError, bad
from .recordings import AFTER_VIEW, OPENING, STORE
from .work import Busy, Cancelled


def opening_refusal(job):
    """The 503 of a request that needs the saved trace the server is still opening (Recordings.open):
    one line naming what is loading and how far (the terminal's line), `opening` the job's figures
    for the page's bar; once the opening failed, its one-line error (`opening.failed`: the page
    shows it; the server stops: serve)."""
    running = job.describe()
    if job.error is None:
        return ApiError(503, f"{job.what}: {running['line']}; this answers once it is open", opening=running)
    return ApiError(503, f"{job.what} failed: {job.error}; the explorer stopped",
                    opening=dict(running, failed=str(job.error)))


class WorkEndpoints:
    """Mixed into Api (which gives _parse, recordings and work)."""

    def progress(self, query):
        """The long work running now (work.py): what, its phase, step k of N, its percentage, time
        left and line (as the terminal prints it), for how long."""
        self._parse(query)
        return {'work': self.work.progress()}

    def cancel(self, query):
        """Cancel the long work running now; its requests answer 409. How many jobs were. A saved trace's opening
        and a step's store into the user cache go on: no view waits for them (Recordings.drawn)."""
        self._parse(query)
        spared = [key for kind in (STORE, *(a[0] for a in AFTER_VIEW)) for key in self.work.running(kind)]
        return {'cancelled': self.work.cancel(keep={OPENING, *spared})}

    def record(self, query):
        """Start recording the state's document (doc, ckpt, seed) in the background, or say how far
        it is: {'ready': bool, 'job': its describe() while it runs}. 400 for a document or checkpoint
        that cannot be recorded (its one line), 409 while another document records, or when this
        one was cancelled."""
        state, _ = self._parse(query)
        try:
            job = self.recordings.start(self.recordings.key(state))
        except InputError as e:
            raise bad(e) from None
        except Busy as e:
            running = e.job.describe()
            raise ApiError(409, f"{running['what']} runs ({running['line']}); ask for another document once it "
                                f"is shown, or cancel it", running=running) from None
        if job is None:
            return {'ready': True, 'job': None}
        if not job.done.is_set():
            return {'ready': False, 'job': job.describe()}
        if isinstance(job.error, InputError):
            raise bad(job.error)
        if isinstance(job.error, Cancelled):
            raise ApiError(409, str(job.error))
        if job.error is not None:
            raise job.error         # Api.answer: 500, one line (the traceback on stderr)
        return {'ready': True, 'job': None}
