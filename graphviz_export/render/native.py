"""The native renderer: the Graphviz `dot` program, when it is on PATH (every
format of the local install, png and pdf included).

`dot` never outlives us: on Linux the child asks the kernel for SIGKILL when
its parent dies (prctl PR_SET_PDEATHSIG, set between fork and exec), so even a
SIGKILLed microgpt-graph leaves no layout running; on a timeout, Ctrl-C or
SIGTERM (any exception while waiting) the child is killed and reaped.
"""

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys

from .errors import TIMEOUT_HINT, LayoutTimeout, RenderError

_PR_SET_PDEATHSIG = 1


def _libc():
    if not sys.platform.startswith('linux'):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6', use_errno=True)
    except OSError:
        return None


_LIBC = _libc()


def _die_with_parent(parent_pid):
    """In the child, before exec: SIGKILL when the parent goes; if the parent is
    already gone (it died between fork and here), exit at once."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


def _preexec():
    if _LIBC is None:
        return None
    parent = os.getpid()
    return lambda: _die_with_parent(parent)


def render_native(dot: str, dot_source: str, fmt: str, timeout: float) -> bytes:
    """Run `dot -T<fmt>` on `dot_source`, killed at `timeout` seconds."""
    try:
        proc = subprocess.Popen([dot, f'-T{fmt}'], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, preexec_fn=_preexec())
    except OSError as exc:
        raise RenderError(f'could not run {dot}: {exc.strerror or exc}') from None
    try:
        out, err = proc.communicate(dot_source.encode('utf-8'), timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        raise LayoutTimeout(f'Graphviz layout exceeded {timeout:g} seconds; {TIMEOUT_HINT}') from None
    except BaseException:  # Ctrl-C, SIGTERM, a broken pipe: the layout must not outlive us
        _kill(proc)
        raise
    if proc.returncode != 0:
        lines = [ln.strip() for ln in err.decode('utf-8', 'replace').splitlines() if ln.strip()]
        # Warnings may come first; Graphviz's first "Error:" line is the one that says why.
        first = next((ln for ln in lines if ln.startswith('Error')), lines[0] if lines else
                     f'`dot` exited with status {proc.returncode} and no message')
        raise RenderError(f'Graphviz could not render the DOT source: {first}')
    if not out:
        # `dot` exits 0 with no output when the source holds no graph; the wasm path fails then too.
        raise RenderError('Graphviz could not render the DOT source: no graph in it')
    return out


def _kill(proc):
    proc.kill()
    try:
        proc.communicate(timeout=5)
    except (subprocess.TimeoutExpired, OSError, ValueError):
        pass
