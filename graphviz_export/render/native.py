"""The native renderer: the Graphviz `dot` program, when it is on PATH (every
format of the local install, png and pdf included).

`dot` never outlives us: on Linux the child asks the kernel for SIGKILL when
its parent dies (prctl PR_SET_PDEATHSIG, set between fork and exec: the one
helper, microgpt.recording.script.lifetime.dies_with_parent, the recorded
script's too), so even a SIGKILLed microgpt-graph leaves no layout running; on a
timeout, Ctrl-C or SIGTERM (any exception while waiting) the child is killed and reaped.
"""

import signal
import subprocess

from microgpt.recording.script.lifetime import dies_with_parent

from .errors import TIMEOUT_HINT, LayoutTimeout, RenderError


def render_native(dot: str, dot_source: str, fmt: str, timeout: float) -> bytes:
    """Run `dot -T<fmt>` on `dot_source`, killed at `timeout` seconds."""
    try:
        proc = subprocess.Popen([dot, f'-T{fmt}'], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, preexec_fn=dies_with_parent(signal.SIGKILL))
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
