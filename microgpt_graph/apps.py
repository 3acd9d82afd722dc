"""microgpt-graph's commands that open an application or run the user's script: `tour` (one
offline HTML lecture), `explore` (the browser explorer, of a step or of a SCRIPT's backward()
calls) and `record` (a SCRIPT's step saved as a trace). Doors like those of cli.py, where
they are added to the group; the plumbing is microgpt_graph/plumbing.py.

Each command imports its application (the explorer's server, the tour builder, the node check)
when it runs, so the other commands never load them.
"""
from contextlib import nullcontext
from pathlib import Path

import click

from microgpt.checks import faults
from microgpt.checks.faults import fault_names, inject
from microgpt.data import read_docs
from microgpt.files import check_output_folder, write_atomic
from microgpt.recording.script import describe_params

from .plumbing import (
    BadInput,
    bad_value,
    drawing_time,
    drawn_by,
    get_lab,
    get_trace,
    ints,
    max_nodes,
    model_options,
    open_output,
    quiet_option,
    recorded_script,
    renderer_option,
    script_options,
    timeout_option,
    trace_loader,
    write_output,
)
from .progress import Phases, busy_bar


@click.command('tour')
@click.argument('tour_file', type=click.Path(dir_okay=False))
@click.option('-o', '--output', default='lecture.html', show_default=True, help='The HTML file to write.')
@click.option('--frames', 'frames_dir', type=click.Path(file_okay=False),
              help='Also write every frame of every stop as a numbered SVG (and PNG when rsvg-convert is '
                   'present) into this folder, for slides.')
@renderer_option
@timeout_option("Seconds each stop's drawing may take: building its view and its Graphviz layout together.")
@quiet_option
def tour(tour_file, output, frames_dir, renderer, timeout, quiet):
    """Build a lecture: TOUR_FILE (TOML: view states, captions, step-through ranges)
    -> ONE self-contained HTML file that plays each stop's frames (no server, no network).

    \b
    Example:
      microgpt-graph tour examples/backprop_tour.toml -o lecture.html
    """
    from graphviz_export.web.tour import build_tour_html, load_tour, write_frames

    with bad_value('TOUR_FILE'):
        spec = load_tour(tour_file)
    path = open_output(output)
    if frames_dir:
        with bad_value('--frames'):
            check_output_folder(frames_dir)

    def trace_of(doc, checkpoint, seed):
        return get_trace(doc, checkpoint, seed, None, quiet=True)

    def each_stop(k):       # --timeout: each stop's view, built and laid out
        return drawing_time(timeout, f"stop {k}'s drawing")

    def lab_of(trace, mode):
        return get_lab(spec.checkpoint, spec.seed, trace, mode)

    with bad_value('TOUR_FILE'), busy_bar(f"{len(spec.stops)} stops", quiet=quiet):
        html = build_tour_html(spec, trace_of, renderer=renderer, each_stop=each_stop, get_lab=lab_of).encode('utf-8')
        written = write_frames(spec, trace_of, frames_dir, renderer=renderer, each_stop=each_stop,
                               write=write_atomic, get_lab=lab_of) if frames_dir else []
    write_output(path, html)
    click.echo(f"wrote {path}: {len(spec.stops)} stops, {len(html) / 1e6:.2f} MB{drawn_by('svg', renderer)}")
    if frames_dir:
        click.echo(f"wrote {len(written)} frame files to {frames_dir}")


def explored_calls(script, step, calls, timeout, tags, args, params_name=None, quiet=False):
    """[Trace] of SCRIPT's backward() calls step .. step + calls - 1 (`explore SCRIPT --calls`: the
    script runs once per call), saying on stderr what was recorded (unless `quiet`)."""
    say = (lambda text: None) if quiet else (lambda text: click.echo(text, err=True))
    first = recorded_script(script, step, timeout, tags, args, params_name)
    rf = first.meta['recorded_from']
    say(f"recorded {len(first)} nodes from {rf['script']} backward() call {rf['step']} "
        f"(class {rf['class']}, {rf['convention']} convention)")
    say(f"parameters: {describe_params(first)}")
    more = [recorded_script(script, k, timeout, tags, args, params_name) for k in range(step + 1, step + calls)]
    if more:
        say(f"recorded backward() calls {step + 1}..{step + calls - 1} too: play them with train=k "
            f"(k = 0..{calls - 1})")
    return [first, *more]


def params_option(start):
    return click.option('--params', 'params_name', metavar='NAME', help=(
        f"{start} script's global holding its parameters (a list, a matrix or a dict of them) or an attribute "
        "path from one, called if a method, e.g. model.parameters (default: state_dict, params or parameters, "
        "else the leaves the loss uses like parameters; the message says which)."))


@click.command()
@click.argument('script', required=False, type=click.Path(exists=True, dir_okay=False))
@click.argument('script_args', nargs=-1, type=click.UNPROCESSED)
@model_options
@script_options('With SCRIPT: ')
@click.option('--data', type=click.Path(dir_okay=False),
              help='Training documents, for comparing with the model after N training steps in the page '
                   '(default: what `train` finds without downloading: $MICROGPT_DATA, ./input.txt, '
                   'the downloaded copy).')
@click.option('--port', type=click.IntRange(min=0, max=65535), default=0, show_default=True,
              help='Port to serve on (0: a free one).')
@click.option('--host', default='127.0.0.1', show_default=True,
              help='Address to bind; anything but 127.0.0.1/localhost is reachable by others (warns).')
@click.option('--no-browser', is_flag=True, help='Do not open the page in a browser.')
@click.option('--calls', type=ints(1, 100), default=1, show_default=True,
              help="With SCRIPT: record this many backward() calls (--step, --step + 1, ...; the script runs "
                   "once per call) and play them in the page (train=k), as training plays there.")
@click.option('--checkpoints', 'offered', multiple=True, type=click.Path(exists=True), metavar='FILE_OR_FOLDER',
              help='Checkpoints the page may open or compare with: a file, or a folder whose files it may '
                   'choose among; repeatable (the page never sends a path of its own).')
@click.option('--inject', 'fault', type=click.Choice(fault_names()),
              help='Record with a deliberately wrong derivative (for teaching): the page marks what the node '
                   'check finds. Not with SCRIPT or --trace (already recorded).')
@click.option('--no-check', is_flag=True, help='Do not run the node check in the background (it marks failing '
                                               'nodes in the page).')
@renderer_option
@click.option('-q', '--quiet', is_flag=True, help='No notes on stderr about what was recorded (errors still show).')
def explore(script, script_args, doc, checkpoint, seed, trace_path, step, timeout, tags, params_name, data, port,
            host, no_browser, calls, offered, fault, no_check, renderer, quiet):
    """Explore the recorded step in your browser: expand, search, inspect, step
    through backprop and Adam's update, compare before/after.

    Records the step, serves a local page (no network) and opens it. Ctrl-C stops it.

    With SCRIPT (a .py file) it first RECORDS YOUR SCRIPT, as `record` does: this
    RUNS SCRIPT's code, as you, like `python SCRIPT` (a child process in SCRIPT's
    folder, SCRIPT_ARGS after `--`, stopped after --timeout seconds), captures its
    --step'th backward() and explores that graph, with views by function and by
    line of your code. With --trace it explores a saved trace.

    \b
    Examples:
      microgpt-graph explore
      microgpt-graph explore --doc christopher --no-browser --port 8000
      microgpt-graph explore train.py --step 2 -- --lr 0.1
      microgpt-graph explore train.py --calls 10      # play its first 10 backward() calls
      microgpt-graph explore --trace saved.json
      microgpt-graph explore --inject exp-x2      # the node check marks the 195 wrong exp nodes
    """
    if data is not None:
        with bad_value('--data'):
            read_docs(data)         # refused now, not when the page first asks to train on it
    if script is not None:
        if not script.endswith('.py'):
            raise BadInput(f"Invalid value for 'SCRIPT': {script!r} is not a Python file (.py); "
                           f"to explore a saved trace use --trace")
        if trace_path is not None:
            raise BadInput("give SCRIPT or --trace, not both")
        trace, *more = explored_calls(script, step, calls, timeout, tags, script_args, params_name, quiet)
    else:
        if calls != 1:
            raise BadInput("--calls records a SCRIPT's backward() calls; give a SCRIPT")
        more = []
        if script_args:
            raise BadInput(f"arguments {' '.join(script_args)!r} are for a SCRIPT; none was given")
        trace = None
    if fault is not None and (script is not None or trace_path is not None):
        raise BadInput("--inject records the model's step under a fault; a SCRIPT or a --trace is recorded already")
    opening = None
    if trace_path is not None:
        # a file opens in the background, its progress in the page and here (a big one takes
        # seconds); what is not a file (missing, a folder, a pipe) is read or refused now
        if Path(trace_path).is_file():
            opening = (f"opening {Path(trace_path).name[:60]}", trace_loader(trace_path))
        else:
            trace = get_trace(doc, checkpoint, seed, trace_path, quiet=quiet)
    from graphviz_export.web.explorer import serve
    from microgpt.checks.diagnose import node_check_data

    tell = Phases(quiet)        # the terminal's line of the step recorded or opened in the background
    try:
        with inject(fault) if fault else nullcontext():
            serve(doc=doc, checkpoint=checkpoint, seed=seed, trace=trace, data=data, host=host, port=port,
                  renderer=renderer, open_browser=not no_browser, echo=click.echo, checkpoints=offered,
                  max_nodes=max_nodes(), check=None if no_check else node_check_data, faults=faults, calls=more,
                  cache=not click.get_current_context().meta.get('no_cache'), tell=tell,
                  note=None if quiet else lambda text: click.echo(text, err=True), opening=opening)
    except OSError as e:
        raise click.ClickException(f"cannot serve on {host}:{port}: {e.strerror or e}") from None
    finally:
        tell.close()


@click.command()
@click.argument('script', type=click.Path(exists=True, dir_okay=False))
@click.argument('script_args', nargs=-1, type=click.UNPROCESSED)
@script_options()
@click.option('-o', '--output', default=None, help="Where to write the trace (default: SCRIPT's name + "
                                                   "'.trace.json' in the current folder; '-' for stdout).")
@click.option('-q', '--quiet', is_flag=True, help='Only the line saying what was written: no note on the parameters.')
def record(script, script_args, step, output, timeout, tags, params_name, quiet):
    """Run your own micrograd-style SCRIPT and record the graph of its backward().

    This RUNS SCRIPT: it is your code, executed as you, like `python SCRIPT`. It
    runs in a child process, in SCRIPT's folder, with SCRIPT_ARGS as its
    arguments (after `--`), stopped after --timeout seconds. Its scalar autograd
    class is found by duck typing (microgpt's data/grad/_children/_local_grads, or
    micrograd's data/grad/_prev/_backward); every node of the step is recorded
    with its op, data, grad, inputs, local derivatives and the line and function of
    SCRIPT that made it. The trace feeds `inspect`, `render`, `export` and
    `gradcheck` with --trace.

    \b
    Examples:
      microgpt-graph record train.py -o train.json
      microgpt-graph record train.py --step 3 --tag pos=t -- --lr 0.1
      microgpt-graph gradcheck --trace train.json
      microgpt-graph render --trace train.json --function rmsnorm
    """
    path = open_output(output or f"{Path(script).stem}.trace.json")
    trace = recorded_script(script, step, timeout, tags, script_args, params_name)
    write_output(path, trace.to_json())
    rf = trace.meta['recorded_from']
    found = ', '.join(f"{f}={'/'.join(v)}" for f, v in rf['tags'].items()) or 'none'
    click.echo(f"wrote {path if path is not None else 'stdout'}: {len(trace)} nodes from {rf['script']} "
               f"backward() call {rf['step']} (class {rf['class']}, {rf['convention']} convention; "
               f"tags: {found})", err=True)
    if not quiet:
        click.echo(f"parameters: {describe_params(trace)}", err=True)
