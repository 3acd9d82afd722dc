"""Record a user's own micrograd-style script: `record_script(path) -> Trace`.

    trace = record_script('train.py', step=1, timeout=600, tags=['pos=t'], args=['--fast'])

The script runs in a child process (`sys.executable`, the script's folder as working
directory, its own argv); it is the user's code and is run as such, with the
rights of whoever calls this. The parent never imports it: the child (child.py)
finds the scalar autograd class by duck typing (recorder.py), captures the graph
of the `step`th call to backward() with where each node was made (places.py),
turns it into trace columns (build.py) and hands them back in a data-only file
(transfer.py: the binary trace codec, checked by its one validator). The child's stdout and stderr are the caller's.

The script never outlives the recording: a supervisor process between us and it
(lifetime.py) kills it and everything it started, new sessions included, when the
recording ends, on --timeout or Ctrl-C, and when this process dies in any way
(SIGKILL, SIGHUP of a closed terminal), and then removes the temp folder.

Errors (all ScriptError, a RuntimeError): ScriptRaised (the script raised; its
`traceback` is the user's, our frames removed), ScriptTimeout (stopped after
`timeout` seconds, with everything it started), NoBackward (no autograd class,
or fewer than `step` calls to backward(); the message says which). Bad arguments,
and a `params` name that names no parameters once the script ran (BadParams), raise
InputError.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile

from ...errors import InputError
from ..codecs import TraceFormatError
from ..trace import Trace
from .lifetime import KILL_DEADLINE
from .params import BadParams, check_name, describe
from .places import parse_tags
from .transfer import read_columns

CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'child.py')
DEFAULT_TIMEOUT = 600.0


class ScriptError(RuntimeError):
    """The script could not be recorded; the message says why in one line."""


class ScriptRaised(ScriptError):
    def __init__(self, message, traceback):
        super().__init__(message)
        self.traceback = traceback


class ScriptTimeout(ScriptError):
    pass


class NoBackward(ScriptError):
    pass


def record_script(path, step=1, timeout=DEFAULT_TIMEOUT, tags=None, args=(), *, params=None, env=None):
    """Run `path` in a child process and return the Trace of its `step`th backward().

    tags: ['pos=NAME', 'layer=NAME', 'head=NAME'] replacing the default loop
    variable names (see places.DEFAULT_TAGS). args: the script's own arguments.
    params: the global (or attribute path, e.g. 'model.parameters') holding the
    parameters, instead of the default choice (params.py); `describe_params(trace)`
    says what was taken.
    """
    return Trace(**_record_columns(path, step, timeout, tags, args, params=params, env=env))


def describe_params(trace):
    """One line: which leaves a recorded script's trace took as parameters, and how
    to choose otherwise (what `record` prints)."""
    return describe(trace.meta['recorded_from'])


def _record_columns(path, step, timeout, tags, args, *, params, env):
    """The `Trace(**columns)` keyword arguments of the child's capture."""
    script = os.path.abspath(os.fspath(path))
    if not os.path.isfile(script):
        raise InputError(f"script {os.fspath(path)!r} does not exist or is not a file")
    if not isinstance(step, int) or isinstance(step, bool) or step < 1:
        raise InputError(f"step must be an integer >= 1 (which call to backward() to record), got {step!r}")
    if timeout is not None and not timeout > 0:
        raise InputError(f"timeout must be a positive number of seconds, got {timeout!r}")
    try:
        tag_table = parse_tags(tags)
    except ValueError as e:
        raise InputError(str(e)) from None
    check_name(params)
    name = os.path.basename(script)
    # the supervisor may remove the folder first (when this process is gone, or seems so)
    with tempfile.TemporaryDirectory(prefix='microgpt-record-', ignore_cleanup_errors=True) as out:
        # the supervisor reads `watch`; this process holds the only write end, `hold`: closing it,
        # or this process ending however it ends, tells the supervisor to stop everything
        watch, hold = os.pipe()
        try:
            cmd = [sys.executable, CHILD, str(watch), out, str(step), json.dumps(tag_table), json.dumps(params),
                   script, *map(str, args)]
            proc = subprocess.Popen(cmd, cwd=os.path.dirname(script), env=env, start_new_session=True,
                                    pass_fds=(watch,))
        except BaseException:
            os.close(hold)
            raise
        finally:
            os.close(watch)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(proc, hold)
            raise ScriptTimeout(f"{name} ran past --timeout {timeout:g} s without its backward() call "
                                f"number {step} and was stopped") from None
        except BaseException:   # Ctrl-C in the parent: do not leave the script running
            _stop(proc, hold)
            raise
        _stop(proc, hold)       # children the script started and left behind
        try:
            with open(os.path.join(out, 'status.json'), encoding='utf-8') as f:
                status = json.load(f)
        except (OSError, ValueError):
            raise ScriptError(f"{name} ended (exit status {code}) before the recorder could report; "
                              f"it may have called os._exit or crashed the interpreter") from None
        kind = status.get('status')
        if kind == 'raised':
            tb = status.get('traceback', '')
            last = tb.strip().splitlines()[-1] if tb.strip() else 'an exception'
            raise ScriptRaised(f"{name} raised {last}", tb)
        if kind == 'not-found':
            exited = status.get('exit_code')
            how = (f"{name} exited (status {exited}) before it was recorded: "
                   if exited is not None else f"{name} finished without being recorded: ")
            raise NoBackward(how + status.get('why', 'no reason given'))
        if kind == 'bad-input':
            raise BadParams(status.get('why', '--params names no parameters'))
        if kind == 'error':
            raise ScriptError(f"recording {name} failed: {status.get('why')}")
        try:
            return read_columns(os.path.join(out, 'trace.bin'))
        except (OSError, TraceFormatError) as e:
            raise ScriptError(f"recording {name} failed: {e}") from None


def _stop(proc, hold):
    """Close the pipe: the supervisor kills the script and all below it, then exits; wait for
    that. Its process group is killed after, for where there is no supervisor's /proc walk."""
    os.close(hold)
    try:
        proc.wait(timeout=KILL_DEADLINE + 5)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
