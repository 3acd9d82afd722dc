"""The recorded script dies with `record` / `explore SCRIPT`, however they end, and takes along
everything it started: a `setsid` grandchild and a double-forked daemon included. Real processes:
the command runs as a child of the test, is killed with a real signal, and the test looks for
every process the script started and for the recorder's temp folder afterwards."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.explorer_helpers import default_signals

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / 'tests' / 'scripts' / 'forever_with_daemons.py'
PIDS = ('script', 'supervisor', 'setsid', 'daemon')
GONE_WITHIN = 5.0       # seconds


def alive(pid):
    """Running (a zombie waiting for a parent that never reaps is not)."""
    try:
        with open(f'/proc/{pid}/stat', 'rb') as f:
            stat = f.read()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(b')') + 2:][:1] != b'Z'


def pids_of(folder, limit=60):
    """{'script', 'supervisor', 'setsid', 'daemon': pid} once the script has written them all."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            script, supervisor = map(int, (folder / 'script.pid').read_text().split())
            return {'script': script, 'supervisor': supervisor,
                    'setsid': int((folder / 'setsid.pid').read_text()),
                    'daemon': int((folder / 'daemon.pid').read_text())}
        except (FileNotFoundError, ValueError):
            time.sleep(0.05)
    raise AssertionError(f"the script did not write its process ids within {limit} s")


class Run:
    """`microgpt-graph COMMAND forever_with_daemons.py ...` in a folder of its own, with TMPDIR a
    folder of its own (where the recorder's temp folder goes): .proc, .folder, .tmp, .pids."""

    def __init__(self, root, command, *extra):
        self.folder, self.tmp = root / 'work', root / 'tmp'
        self.folder.mkdir()
        self.tmp.mkdir()
        script = self.folder / SCRIPT.name
        shutil.copy(SCRIPT, script)
        env = dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(self.tmp))
        args = [sys.executable, str(ROOT / 'cli.py'), command, str(script), *extra]
        if command == 'explore':
            args.append('--no-browser')
        self.pids = {}
        # its own session: the test can kill all of its group in the end, whatever happens
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=self.folder,
                                     start_new_session=True, preexec_fn=default_signals)

    def started(self):
        self.pids = pids_of(self.folder)
        return self.pids

    def kill_all(self):
        for pid in [self.proc.pid, *self.pids.values()]:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait(10)


@pytest.fixture
def run(tmp_path):
    """Starts a Run; whatever is left of it is SIGKILLed in the end, pass or fail."""
    runs = []

    def start(command, *extra):
        runs.append(Run(tmp_path, command, *extra))
        return runs[-1]
    try:
        yield start
    finally:
        for r in runs:
            r.kill_all()


def wait_gone(pids, limit=GONE_WITHIN):
    end = time.monotonic() + limit
    while time.monotonic() < end and any(alive(p) for p in pids.values()):
        time.sleep(0.05)
    return {k: p for k, p in pids.items() if alive(p)}


@pytest.mark.parametrize('command, sig', [('record', signal.SIGKILL), ('record', signal.SIGHUP),
                                          ('record', signal.SIGTERM), ('explore', signal.SIGKILL),
                                          ('explore', signal.SIGHUP)])
def test_a_killed_recorder_leaves_no_process_and_no_temp_folder(run, command, sig):
    r = run(command, '--timeout', '600')
    pids = r.started()
    # the grandchildren really are in sessions of their own, below the script's supervisor
    assert len({os.getsid(pids[k]) for k in ('script', 'setsid', 'daemon')}) == 3
    assert [p.name for p in r.tmp.iterdir()][0].startswith('microgpt-record-')
    os.kill(r.proc.pid, sig)
    r.proc.wait(GONE_WITHIN)
    assert wait_gone(pids) == {}
    # every process holding the command's stdout is gone: a $(microgpt-graph record ...) returns
    r.proc.communicate(timeout=GONE_WITHIN)
    assert list(r.tmp.iterdir()) == []
    assert r.proc.returncode == (-sig if sig != signal.SIGTERM else 143)


def test_the_timeout_stops_grandchildren_in_their_own_sessions(run):
    r = run('record', '--timeout', '3')
    pids = r.started()
    # communicate returns only when nobody holds the command's stdout and stderr any more
    _out, err = r.proc.communicate(timeout=30)
    assert r.proc.returncode == 1
    assert err.decode().endswith("ran past --timeout 3 s without its backward() call number 1 and was stopped\n")
    assert wait_gone(pids) == {}
    assert list(r.tmp.iterdir()) == []


def test_descendants_are_found_through_sessions_and_double_forks(run):
    """lifetime.descendants walks /proc: the setsid grandchild and the re-parented daemon are below
    the supervisor (its subreaper), which is below the command."""
    from microgpt.recording.script import lifetime
    r = run('record', '--timeout', '600')
    pids = r.started()
    below = set(lifetime.descendants(pids['supervisor']))
    assert {pids['script'], pids['setsid'], pids['daemon']} <= below
    assert pids['supervisor'] in lifetime.descendants(r.proc.pid)
    assert not set(lifetime.descendants(pids['setsid']))      # a leaf
