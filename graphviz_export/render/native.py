"""The native renderer: the Graphviz `dot` program, when it is on PATH (every
format of the local install, png and pdf included)."""

import subprocess

from .errors import TIMEOUT_HINT, LayoutTimeout, RenderError


def render_native(dot: str, dot_source: str, fmt: str, timeout: float) -> bytes:
    """Run `dot -T<fmt>` on `dot_source`, killed at `timeout` seconds."""
    try:
        # subprocess.run kills `dot` when the timeout expires, so nothing lingers.
        proc = subprocess.run([dot, f'-T{fmt}'], input=dot_source.encode('utf-8'),
                              capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LayoutTimeout(f'Graphviz layout exceeded {timeout:g} seconds; {TIMEOUT_HINT}') from None
    except OSError as exc:
        raise RenderError(f'could not run {dot}: {exc.strerror or exc}') from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stderr.decode('utf-8', 'replace').splitlines() if ln.strip()]
        # Warnings may come first; Graphviz's first "Error:" line is the one that says why.
        first = next((ln for ln in lines if ln.startswith('Error')), lines[0] if lines else
                     f'`dot` exited with status {proc.returncode} and no message')
        raise RenderError(f'Graphviz could not render the DOT source: {first}')
    if not proc.stdout:
        # `dot` exits 0 with no output when the source holds no graph; the wasm path fails then too.
        raise RenderError('Graphviz could not render the DOT source: no graph in it')
    return proc.stdout
