"""The recorded script's lifetime: it ends with the recorder, and so does everything it started.

    recorder (record, explore SCRIPT) ──► supervisor ──► the script ──► whatever the script starts
                   holds the write end      (child.py, forked off by split(): our code only)
                   of a pipe ─────────────► reads it

The supervisor (split() forks it off in the child process before any user code runs):
- is a child subreaper (Linux PR_SET_CHILD_SUBREAPER): an orphan below it, a grandchild
  whose parent exited, a daemon that double-forked or called setsid, is re-parented to
  it instead of to init, so every descendant stays below it, whatever session it is in;
- waits for the script to end or for EOF on the pipe. The recorder holds the only write
  end, so EOF comes when the recorder closes it (done, --timeout, Ctrl-C) or exits in any
  way at all, SIGKILL and SIGHUP included, since the kernel closes a dead process's files.
  As a second path it gets SIGTERM when the recorder dies (PR_SET_PDEATHSIG);
- then SIGKILLs every process below it, walking /proc again until none is left, and
  reaps them (descendants(): each process's parent from /proc/PID/stat, which every Linux
  has; /proc/PID/task/TID/children needs CONFIG_PROC_CHILDREN and the kernel documents
  it as unreliable while the children fork, which is what a fork loop does);
- removes the recorder's temp folder if the recorder is gone (else the recorder does);
- exits as the script did: its exit status, or killed by the same signal.
The script's own process gets PR_SET_PDEATHSIG SIGKILL: it never outlives the supervisor.

Why a subreaper and /proc rather than a cgroup: a cgroup catches the same processes,
but creating one needs a writable cgroup v2 tree delegated to the user (systemd's user
slice), which containers, CI runners and cgroup v1 machines (this one among them) do not
give; a subreaper needs no privilege (Linux 3.4+). Neither catches a process that
asks another daemon to start it (systemd-run, at).

Elsewhere (no prctl, no /proc) the pipe still stops the script, and the recorder kills
the process group; a grandchild in a session of its own may then survive.
"""

import ctypes
import os
import select
import shutil
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
KILL_DEADLINE = 5.0         # s: SIGKILL rounds until nothing is left below the supervisor
_STOPS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


def _libc_prctl():
    """libc's prctl(2) (Linux only), else None. Looked up before a fork, never between fork and exec:
    the dynamic loader's lock may be held by another thread of the parent (the explorer's)."""
    if not sys.platform.startswith('linux'):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _prctl(option, value, prctl=None):
    """prctl(2) through ctypes (Linux only); True when it took."""
    prctl = prctl or _libc_prctl()
    return prctl is not None and prctl(option, value, 0, 0, 0) == 0


def dies_with_parent(sig=signal.SIGKILL):
    """A function for a child to call right after the fork (subprocess's preexec_fn): the kernel
    sends it `sig` when this process, its parent, goes (PR_SET_PDEATHSIG), and if this process is
    gone already by then, it exits at once. The one way a child of ours dies with its parent:
    the recorded script (split()) and Graphviz's `dot` (render/native.py)."""
    prctl, parent = _libc_prctl(), os.getpid()

    def child():
        _prctl(PR_SET_PDEATHSIG, sig, prctl)
        if os.getppid() != parent:
            os._exit(1)
    return child


def descendants(root):
    """The pids below `root` (its children, theirs, ...) from every process's parent in /proc."""
    try:
        names = os.listdir('/proc')
    except OSError:
        return []
    children = {}
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f'/proc/{name}/stat', 'rb') as f:
                stat = f.read()
        except OSError:         # it ended meanwhile
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and ')', so split after the last ')'
        fields = stat[stat.rfind(b')') + 2:].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(name))
    out, stack = [], [root]
    while stack:
        for pid in children.get(stack.pop(), ()):
            out.append(pid)
            stack.append(pid)
    return out


def split(watch_fd, out_dir):
    """Fork in the child process: the original process becomes the supervisor and never returns
    from here; the new one returns, to run the script. `watch_fd`: the pipe's read end."""
    parent = os.getppid()
    subreaper = _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    die_with_supervisor = dies_with_parent(signal.SIGKILL)
    script = os.fork()
    if script == 0:
        os.close(watch_fd)
        die_with_supervisor()       # not inherited across fork: set here
        return
    try:
        _supervise(script, watch_fd, out_dir, parent, subreaper)     # ends the process
    except BaseException:
        kill_below(os.getpid(), script, subreaper=subreaper)
    finally:
        os._exit(1)     # only if the supervisor itself failed: it never goes on to run the script here


class _Stop(Exception):
    pass


def _supervise(script, watch_fd, out_dir, parent, subreaper):
    waiting = [True]

    def stop(signum, frame):
        if waiting[0]:          # raise once, and only while waiting: the cleanup is never interrupted
            waiting[0] = False
            raise _Stop

    for sig in _STOPS:
        signal.signal(sig, stop)
    status = None
    try:
        pidfd = _pidfd(script)
        fds = [watch_fd] if pidfd is None else [watch_fd, pidfd]
        while status is None:
            ready = select.select(fds, [], [], 1.0 if pidfd is not None else 0.05)[0]
            if watch_fd in ready:
                break           # EOF: the recorder is done with the script, or gone
            status = _reap(script, status)
        waiting[0] = False
    except _Stop:
        pass
    status = kill_below(os.getpid(), script, status, subreaper=subreaper)
    if os.getppid() != parent:  # re-parented: the recorder is gone and cannot remove its folder
        shutil.rmtree(out_dir, ignore_errors=True)
    _exit_like(status)


def _pidfd(pid):
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _reap(script, status):
    """Collect every child that ended (orphans re-parented here too); keep the script's status."""
    while True:
        try:
            pid, st = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return status
        if pid == 0:
            return status
        if pid == script:
            status = st


def kill_below(root, script, status=None, deadline=KILL_DEADLINE, subreaper=False):
    """SIGKILL every process below `root` (this process), walking again until none is left: one
    may start another between a walk and its kill. Returns the script's wait status.

    subreaper: `root` is one, so whatever is below it has a child of it as an ancestor, and no
    child left means nothing is left (no /proc walk then: the usual end, the script alone)."""
    end = time.monotonic() + deadline
    while True:
        status = _reap(script, status)
        if subreaper and not _has_children():
            return status
        pids = descendants(root)
        if status is None and script not in pids:
            pids.append(script)     # no /proc: the script at least
        if not pids or time.monotonic() > end:
            return status
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.005)


def _has_children():
    """Whether this process has a child, running or ended and not yet reaped (none is reaped here)."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def _exit_like(status):
    """End this process as the script ended: its exit code, or the signal that killed it."""
    code = 1 if status is None else os.waitstatus_to_exitcode(status)
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        code = 128 - code
    os._exit(code)
