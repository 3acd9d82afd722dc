"""The command line's plumbing, beside its commands (microgpt_graph/cli.py): one-line
errors and the signals that end a run, option types that refuse bad numbers before
any work, the option sets several commands share, and progress bars on stderr.

Errors are one line, `Error: ...`: exit status 2 for bad input (click's usage
errors and every library `InputError`), 1 for a failure while working (a render
that timed out, a file that could not be written, a check that failed), 130 for
Ctrl-C and 143 for SIGTERM (temp files removed first).
"""

import functools
import json
import math
import re
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import click

from graphviz_export import spec as view_fields
from graphviz_export.options import DEFAULT_RENDERER, DEFAULT_TIMEOUT, RENDERERS
from graphviz_export.render import RenderError
from graphviz_export.render.errors import TIMEOUT_HINT
from graphviz_export.spec import ViewOptionError, ViewSpec, view_spec
from graphviz_export.view import ViewLayoutTimeout, renderer_label
from microgpt.checkpoint import load_model
from microgpt.checks import faults
from microgpt.data import default_data_path
from microgpt.errors import InputError, WriteError
from microgpt.files import check_output, json_safe, write_atomic
from microgpt.recording import DEFAULT_DOC, SEED, Trace
from microgpt.recording.budget import DEFAULT_MAX_NODES
from microgpt.recording.lab import lab_step
from microgpt.recording.script import DEFAULT_TIMEOUT as SCRIPT_TIMEOUT
from microgpt.recording.script import ScriptError, ScriptRaised, record_script
from microgpt.recording.stepcache import NO_CACHE_ENV, cached_step

from .progress import Phases, Progress


# -- errors: one line, one mapping ---------------------------------------------------------
class BadInput(click.UsageError):
    """Bad input: exit status 2, printed as one line."""


class Terminated(BaseException):
    """SIGTERM, raised in the main thread like KeyboardInterrupt is for SIGINT, so
    every `finally` and write_atomic's cleanup run before the exit."""


class Interrupted(BaseException):
    """Ctrl-C while a command runs, out of click's sight: click meets a KeyboardInterrupt by printing
    an empty line before its own message, so ours ('Error: interrupted') came second, after a blank."""


def _raise_terminated(signum, frame):
    raise Terminated()


@contextmanager
def sigterm_raises():
    """SIGTERM -> Terminated while the block runs (main thread only; restored after)."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except (ValueError, OSError):  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class OneLineErrors(click.Group):
    """A click group whose errors print as a single `Error: ...` line: InputError
    -> exit 2, the library's failures (render, write) -> exit 1, Ctrl-C -> 130,
    SIGTERM -> 143."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise Interrupted from None

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            try:
                with sigterm_raises():
                    rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            except InputError as e:
                raise BadInput(str(e)) from None
            except ScriptRaised as e:   # the user's own traceback, then exit 1
                click.echo(e.traceback.rstrip('\n'), err=True)
                raise click.ClickException(str(e)) from None
            except (RenderError, WriteError, ScriptError) as e:
                raise click.ClickException(str(e)) from None
            except RecursionError:
                raise click.ClickException('input nested too deeply to read') from None
            except MemoryError:
                raise click.ClickException('out of memory; try a smaller model, document or view '
                                           f'(the node limit is set with --max-nodes, default {DEFAULT_MAX_NODES:,})') from None
        except (click.exceptions.Abort, KeyboardInterrupt, Interrupted, Terminated) as e:
            term = isinstance(e, Terminated) or isinstance(getattr(e, '__cause__', None), Terminated)
            click.echo('Error: terminated (SIGTERM)' if term else 'Error: interrupted', err=True)
            sys.exit(143 if term else 130)
        except click.ClickException as e:
            message = ' '.join(e.format_message().split())
            hint = ''
            if isinstance(e, click.UsageError) and not isinstance(e, BadInput) and e.ctx is not None:
                hint = f" (see '{e.ctx.command_path} --help')"
            click.echo(f"Error: {message}{hint}", err=True)
            if not standalone_mode:
                raise
            sys.exit(e.exit_code)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


@contextmanager
def bad_value(option, value=None):
    """Name the option (and the `value` given to it, a file) in the message of an InputError
    raised inside the block."""
    try:
        yield
    except InputError as e:
        raise BadInput(f"Invalid value for '{option}': {'' if value is None else f'{value}: '}{e}") from None


# -- option types: every number finite and in range, checked before any work --------------
class Finite(click.ParamType):
    """A finite float in [low, high] (`low_open`: low itself excluded). NaN and
    infinity are refused, whatever the bounds: one type for every float option."""
    name = 'number'

    def __init__(self, low=None, high=None, low_open=False):
        self.low, self.high, self.low_open = low, high, low_open

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            x = float(value)
        else:
            try:
                x = float(str(value).strip())
            except (ValueError, OverflowError):
                self.fail(f"{str(value)[:40]!r} is not a number", param, ctx)
        if not math.isfinite(x):
            self.fail(f"{value!r} is not a finite number; {self.allowed()}", param, ctx)
        if ((self.low is not None and (x < self.low or (self.low_open and x == self.low)))
                or (self.high is not None and x > self.high)):
            self.fail(f"{x:g} is out of range; {self.allowed()}", param, ctx)
        return x

    def allowed(self):
        low = '' if self.low is None else f"{'>' if self.low_open else '>='} {self.low:g}"
        high = '' if self.high is None else f"<= {self.high:g}"
        return 'allowed: a number ' + ' and '.join(filter(None, [low, high]))


def ints(low, high):
    """An IntRange with both ends, so a huge number is refused before any work."""
    return click.IntRange(min=low, max=high)


MAX_TIMEOUT = 7 * 24 * 3600.0   # seconds: a week is "no limit", and still a number threading accepts
TIMEOUT = Finite(0, MAX_TIMEOUT, low_open=True)
MAX_WIDTH = 4096                # n_embd, block_size: far past what pure Python can train


def _store_max_nodes(ctx, param, value):
    ctx.meta['max_nodes'] = None if value == 0 else value
    return value


max_nodes_option = click.option(
    '--max-nodes', type=ints(0, 10**12), default=DEFAULT_MAX_NODES, show_default=True, expose_value=False,
    is_eager=True, callback=_store_max_nodes,
    help='Refuse a step whose graph is estimated above this many nodes (about 420 bytes each); 0: no limit.')


def max_nodes():
    ctx = click.get_current_context(silent=True)
    return DEFAULT_MAX_NODES if ctx is None else ctx.meta.get('max_nodes', DEFAULT_MAX_NODES)


_CONTROL = re.compile('[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]')


def printable(text):
    """`text` with control characters (terminal escape sequences) and lone
    surrogates shown as \\xNN / \\uNNNN; newlines and tabs stay."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                        else f"\\u{ord(m.group()):04x}", text)


def dumps(obj):
    """Strict JSON text (no bare NaN/Infinity) for --json output."""
    return json.dumps(json_safe(obj), indent=1, default=str, allow_nan=False)


# -- --timeout: the whole drawing, not only its layout ------------------------------------
class DrawingTimeout(RenderError):
    """A drawing (building a view and laying it out) ran past --timeout."""


@contextmanager
def drawing_time(timeout, what='drawing the view'):
    """--timeout for one drawing: building the view (select, fold, draw) and its layout end within
    `timeout` seconds together, so a view too big to build in time ends there too (a render with
    huge budgets built for 86 s, then laid out for its 30 s).

    Yields layout_seconds(): call it when the build is done, as the layout's timeout; it says how
    long is left. Until then SIGALRM stops the Python work (main thread only; elsewhere the build is
    not bounded) with DrawingTimeout; after, the layout stops itself (native `dot` is killed,
    WebAssembly by its epoch) and its LayoutTimeout says what the --timeout covered."""
    deadline = time.monotonic() + timeout
    late = (f"{what} did not finish within --timeout {timeout:g} s: building the view (before its layout) "
            f"took all of it; {TIMEOUT_HINT}")
    state = {'layout': None}

    def alarm(signum, frame):
        raise DrawingTimeout(late)

    def layout_seconds():
        _disarm()
        left = deadline - time.monotonic()
        if left <= 0:
            raise DrawingTimeout(late)
        state['layout'] = left
        return left

    try:
        previous = signal.signal(signal.SIGALRM, alarm)
    except (ValueError, OSError, AttributeError):      # not the main thread, or no SIGALRM
        previous = None
    else:
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        yield layout_seconds
    except ViewLayoutTimeout as e:
        if state['layout'] is None or state['layout'] >= timeout:
            raise
        raise ViewLayoutTimeout(f"{e} (--timeout {timeout:g} s covers building the view and its layout; "
                                f"the build took {timeout - state['layout']:.1f} s of it)", e.dot_path) from None
    finally:
        if previous is not None:
            _disarm()
            signal.signal(signal.SIGALRM, previous)


def _disarm():
    try:
        signal.setitimer(signal.ITIMER_REAL, 0)
    except (ValueError, OSError, AttributeError):
        pass


# -- a view's options, made from graphviz_export.spec: render and diff offer the same -----
class _FromSpec:
    """convert() by the spec's own check: the limits and the message every door gives."""

    def convert(self, value, param, ctx):
        try:
            if isinstance(value, str):
                return view_fields.parse(self.field, value)
            return view_fields.check(self.field, value)
        except ViewOptionError as e:
            self.fail(str(e), param, ctx)


class SpecRange(_FromSpec, click.IntRange):
    """A whole number of the spec (shown in help as click's ranges are: [0<=x<=64])."""

    def __init__(self, field):
        super().__init__(field.low, field.high)
        self.field = field.name


class SpecChoice(_FromSpec, click.Choice):
    def __init__(self, field):
        super().__init__(field.choices)
        self.field = field.name


class SpecText(_FromSpec, click.ParamType):
    def __init__(self, field):
        self.field, self.name = field.name, 'node' if field.kind == 'node' else 'text'


def _view_option(field):
    option = '--' + field.name.replace('_', '-')
    if field.kind == 'flag':
        return click.option(option, field.name, is_flag=True, help=field.help)
    kind = {'int': SpecRange, 'choice': SpecChoice}.get(field.kind, SpecText)
    default = getattr(ViewSpec(), field.name)
    shown = default not in (None, ())
    return click.option(option, field.name, type=kind(field), default=default if shown else None,
                        show_default=shown, multiple=field.kind == 'patterns', help=field.help)


def view_options(f):
    """Every option of a view (graphviz_export.spec: its defaults, limits and help
    texts), given to the command as one checked ViewSpec, `spec`."""
    @functools.wraps(f)
    def command(*args, **kwargs):
        values = {name: kwargs.pop(name) for name in view_fields.FIELDS}
        try:
            kwargs['spec'] = view_spec(values)
        except ViewOptionError as e:
            raise BadInput(f"Invalid value for '--{e.field.replace('_', '-')}': {e}") from None
        return f(*args, **kwargs)
    for field in reversed(view_fields.FIELDS.values()):
        command = _view_option(field)(command)
    return command


# -- other options several commands share -------------------------------------------------
renderer_option = click.option(
    '--renderer', type=click.Choice(RENDERERS), default=DEFAULT_RENDERER, show_default=True,
    help='native: the `dot` program; wasm: the bundled WebAssembly Graphviz; auto: native if present.')


def timeout_option(help='Seconds the drawing may take: building the view and its Graphviz layout together; '
                         'past that it stops, and the DOT source is saved when the layout had begun.'):
    return click.option('--timeout', type=TIMEOUT, default=DEFAULT_TIMEOUT, show_default=True, help=help)


def seed_option(help):
    return click.option('--seed', type=int, default=SEED, show_default=True, help=help)


def doc_option(help):
    return click.option('--doc', default=DEFAULT_DOC, show_default=True, help=help)


def script_options(within=''):
    """--step / --timeout / --tag / --params: how a SCRIPT is recorded (`record`; `explore
    SCRIPT` says 'With SCRIPT: ' before each help text)."""
    def said(text):
        return within + text[0].lower() + text[1:] if within else text

    def decorate(f):
        f = click.option('--params', 'params_name', metavar='NAME', help=said(
            "The script's global holding its parameters (a list, a matrix or a dict of them) or an attribute "
            "path from one, called if a method, e.g. model.parameters (default: state_dict, params or "
            "parameters, else the leaves the loss uses like parameters; the message says which)."))(f)
        f = click.option('--tag', 'tags', multiple=True, metavar='FIELD=VARIABLE',
                         help=said('Which loop variable gives a tag: pos, layer or head, e.g. --tag pos=t '
                                   '(defaults: pos_id/pos/t, li/layer/l, h/head); repeatable.'))(f)
        f = click.option('--timeout', type=TIMEOUT, default=SCRIPT_TIMEOUT, show_default=True,
                         help=said('Seconds the script may run before it is stopped (with everything it '
                                   'started).'))(f)
        return click.option('--step', type=ints(1, 10**6), default=1, show_default=True,
                            help=said('Which call to backward() to record (the script stops right after it).'))(f)
    return decorate


def recorded_script(script, step, timeout, tags, args, params_name=None):
    """The Trace of SCRIPT's step'th backward() (microgpt.recording.script: it RUNS the script);
    the library's messages name the option at fault (--tag, --params)."""
    return record_script(script, step=step, timeout=timeout, tags=list(tags), args=args, params=params_name)


# -- shared options and steps -------------------------------------------------------------
def _store_no_cache(ctx, param, value):
    ctx.meta['no_cache'] = value
    return value


no_cache_option = click.option(
    '--no-cache', is_flag=True, expose_value=False, is_eager=True, callback=_store_no_cache,
    help=f'Record the step even when the user cache holds it (microgpt.recording.stepcache; '
         f'or set ${NO_CACHE_ENV}=1).')


def model_options(f):
    """--doc / --checkpoint / --seed / --trace / --no-cache: which step to look at."""
    f = no_cache_option(f)
    f = max_nodes_option(f)
    f = click.option('--trace', 'trace_path', type=click.Path(dir_okay=False),
                     help='Use a trace saved by `export` (JSON or binary) instead of recording a step '
                          '(--doc/--checkpoint/--seed are then ignored).')(f)
    f = seed_option('Seed of the fresh model used when no --checkpoint is given.')(f)
    f = click.option('--checkpoint', type=click.Path(dir_okay=False),
                     help='Model checkpoint written by `train --out` (default: a fresh seeded '
                          'model, default config, vocabulary a-z).')(f)
    f = doc_option('The document (a name) whose training step is recorded.')(f)
    return f


def names_data(quiet=False):
    """The names data when no path was given (microgpt.data.default_data_path),
    saying on stderr when it is downloaded, with a bar."""
    with Progress('names.txt', quiet) as progress:
        return default_data_path(log=lambda message: click.echo(message, err=True), progress=progress)


def get_model(checkpoint, seed):
    with bad_value('--checkpoint'):
        return load_model(checkpoint, seed)


def get_trace(doc, checkpoint, seed, trace_path, quiet=False, lines=False):
    """Record the step of `doc` (or load a saved trace), reporting truncation; a step recorded
    before is read from the user cache (microgpt.recording.stepcache), saying so on stderr.
    Recording or loading a big step shows its progress there (progress.Phases; not with `quiet`).
    `lines`: record with the "made by" chains (recording.madeby), which a binary export stores."""
    progress = Phases(quiet)
    if trace_path is not None:
        try:
            return trace_loader(trace_path)(progress)
        finally:
            progress.close()
    params, config, tokenizer = get_model(checkpoint, seed)
    with bad_value('--doc'):
        tokenizer.encode(doc)
    if len(doc) + 1 > config.block_size and not quiet:
        click.echo(f"note: {doc!r} has {len(doc)} characters; like the reference, only the first "
                   f"{config.block_size} positions (block_size) are used", err=True)
    ctx = click.get_current_context(silent=True)
    use = not (ctx is not None and ctx.meta.get('no_cache'))
    trace, reused = cached_step(params, config, tokenizer, doc, max_nodes=max_nodes(), use=use, progress=progress,
                                lines=lines)
    if reused is not None and not quiet:
        click.echo(f"reused the recorded step from {reused}", err=True)
    return trace


def trace_loader(trace_path):
    """load(progress) -> the Trace saved at `trace_path` (Trace.load, telling progress(phase, done,
    total) its phases), its errors naming --trace: get_trace's, and explore's in the background."""
    def load(progress=None):
        with bad_value('--trace', trace_path):
            return Trace.load(Path(trace_path), progress)
    return load


def get_lab(checkpoint, seed, trace, mode):
    """The backprop lab's `mode` backward (microgpt.recording.lab) of `trace`, the step recorded
    on the model of (checkpoint, seed); a fault (microgpt.checks.faults) is injected while recording."""
    params, config, tokenizer = get_model(checkpoint, seed)
    inject = faults.inject(mode) if mode in faults.FAULTS else None
    with bad_value('lab'):
        return lab_step(params, config, tokenizer, trace.meta['doc'], mode, inject=inject, correct=trace)


def open_output(output, option='-o / --output'):
    """'-' is stdout (None); otherwise a path whose folder exists and is writable,
    a regular file or nothing yet (checked before any work)."""
    if output == '-':
        return None
    with bad_value(option):
        return Path(check_output(output))


def write_output(path, data):
    """Atomic write (temp file + rename), or stdout when path is None."""
    if path is None:
        click.echo(data, nl=isinstance(data, str) and not data.endswith('\n'))  # bytes go out as bytes
    else:
        write_atomic(path, data)


# -- -q: no progress (microgpt_graph/progress.py draws it) ---------------------------------------
def quiet_option(f):
    return click.option('-q', '--quiet', is_flag=True,
                        help='No progress bar (there is none either when stderr is not a terminal).')(f)


def drawn_by(fmt, renderer):
    """'; drawn by WebAssembly Graphviz' for messages ('' for dot/json, drawn by nobody)."""
    who = renderer_label(fmt, renderer)
    return f"; drawn by {who}" if who else ''


