"""microgpt-graph: the command line. A door, not a room: each command parses its
options, calls one library function, and prints. The plumbing (errors, option types,
shared option sets, progress) is in microgpt_graph/plumbing.py.

What only one command uses (training, sampling, the checks, the reports, diff) is imported
in that command's body: `render` loads the pipeline it draws with and nothing else
(tests/test_cli_imports.py).
"""

import os
import random
import sys
from pathlib import Path

import click

from graphviz_export import build_view, file_name, output_format, render_view
from graphviz_export.options import DEFAULT_RENDERER, FORMATS
from graphviz_export.view import safe_name
from microgpt.checks.faults import describe_faults, fault_names
from microgpt.checks.params import ATOL, EPS, RTOL
from microgpt.data import read_docs
from microgpt.model import GPTConfig
from microgpt.recording import NUM_STEPS
from microgpt.recording.budget import check_budget
from microgpt.recording.formats import TRACE_FORMATS, TRACE_SUFFIXES, encode_trace, trace_format

from .apps import explore, record, tour
from .plumbing import (
    MAX_WIDTH,
    BadInput,
    Finite,
    OneLineErrors,
    bad_value,
    doc_option,
    drawing_time,
    drawn_by,
    dumps,
    get_model,
    get_trace,
    ints,
    max_nodes,
    max_nodes_option,
    model_options,
    names_data,
    open_output,
    printable,
    quiet_option,
    renderer_option,
    seed_option,
    timeout_option,
    view_options,
    write_output,
)
from .progress import Progress, busy_bar


# -- the commands ---------------------------------------------------------------------------
@click.group(cls=OneLineErrors, context_settings={'help_option_names': ['-h', '--help']})
@click.version_option(package_name='microgpt-graph')
def main():
    """Record one training step of microgpt and draw its computation graph.

    \b
    Examples:
      microgpt-graph render                         # emma, last token, auto level
      microgpt-graph render --doc anna --token 2 --level vector
      microgpt-graph render --param 'layer0.attn_wq[3][5]'
      microgpt-graph train --steps 1000 --log-every 1 --samples 20
      microgpt-graph gradcheck --inject exp-x2
    """


@main.command('train')
@click.argument('data', required=False, type=click.Path(dir_okay=False))
@click.option('--steps', type=ints(1, 10**9), default=NUM_STEPS, show_default=True,
              help='Training steps (one document each).')
@seed_option('Seeds the one random stream: shuffle, init, then sampling.')
@click.option('--n-layer', type=ints(1, 256), default=GPTConfig.n_layer, show_default=True,
              help='Transformer blocks.')
@click.option('--n-embd', type=ints(1, MAX_WIDTH), default=GPTConfig.n_embd, show_default=True,
              help='Embedding width.')
@click.option('--n-head', type=ints(1, MAX_WIDTH), default=GPTConfig.n_head, show_default=True,
              help='Attention heads (must divide --n-embd).')
@click.option('--block-size', type=ints(1, MAX_WIDTH), default=GPTConfig.block_size, show_default=True,
              help='Longest context in tokens.')
@click.option('--out', type=click.Path(dir_okay=False), help='Write a checkpoint here when done.')
@click.option('--log-every', type=ints(0, 10**9), default=0, show_default=True,
              help="Print 'step    k / N | loss X.XXXX' every K steps (0: a progress bar instead).")
@click.option('--samples', type=ints(0, 10**6), default=0, show_default=True,
              help='Print this many samples after training, from the same random stream.')
@click.option('--temperature', type=Finite(0, 1e6, low_open=True), default=0.5, show_default=True,
              help='Sampling temperature.')
@click.option('--schedule', type=click.IntRange(min=1, max=10**9), default=None,
              help='Steps the learning rate decays over (default: --steps); e.g. --steps 300 --schedule 1000 '
                   'stops the reference run after 300 of its 1000 steps, and --out keeps Adam\'s state for the next.')
@max_nodes_option
@quiet_option
def train_cmd(data, steps, seed, n_layer, n_embd, n_head, block_size, out, log_every, samples, temperature,
              schedule, quiet):
    """Train microgpt as the reference does, on DATA (one document per line).

    Without DATA: $MICROGPT_DATA (older name: $MICROGPT_NAMES), ./input.txt, or
    the makemore names list (names.txt), downloaded once into the user cache
    (e.g. ~/.cache/microgpt-graph/names.txt). With seed 42 on the names data the
    losses and samples are the reference script's, to the last digit.

    \b
    Example:
      microgpt-graph train names.txt --steps 1000 --log-every 1 --samples 20 --out model.json
    """
    from microgpt.checkpoint import save_checkpoint_or_fallback
    from microgpt.sample import format_sample, sample
    from microgpt.train import start_run, train

    if out == '-':
        raise BadInput("Invalid value for '--out': a checkpoint needs a file path, not '-' (stdout)")
    out_path = open_output(out, '--out') if out else None
    if data is None:
        docs = read_docs(names_data(quiet))
    else:
        with bad_value('DATA'):
            docs = read_docs(data)
    sizes = dict(n_layer=n_layer, n_embd=n_embd, n_head=n_head, block_size=block_size)
    with bad_value('--n-embd / --n-head'):
        config = GPTConfig(vocab_size=len(set(''.join(docs))) + 1, **sizes)
    check_budget(config, max(map(len, docs)) + 1, max_nodes(), what='a training step')
    run = start_run(docs, seed=seed, **sizes)
    click.echo(f"num docs: {len(docs)}")
    click.echo(f"vocab size: {run.config.vocab_size}")
    click.echo(f"num params: {len(run.optimizer.params)}")
    with Progress('training', quiet or log_every, info=lambda: f"loss {run.losses[-1]:.4f}") as progress:
        train(run, steps, schedule=schedule, log=click.echo, log_every=log_every, progress=progress)
    if not log_every:
        click.echo(f"final loss {run.losses[-1]:.4f}")
    if out_path is not None:
        written, error = save_checkpoint_or_fallback(out_path, run.params, run.config, run.tokenizer, step=steps,
                                                     optimizer=run.optimizer, num_steps=schedule or steps)
        if error is None:
            click.echo(f"wrote checkpoint {written}")
        elif written is not None:
            click.echo(f"Error: {error}; the trained model was saved to {written} instead", err=True)
            sys.exit(1)
        else:
            raise click.ClickException(f"{error}; the trained model could not be saved anywhere")
    if samples:
        click.echo("\n--- inference (new, hallucinated names) ---")
        for i in range(samples):
            click.echo(format_sample(i, sample(run.params, run.config, run.tokenizer, run.rng, temperature)))


@main.command('sample')
@click.option('--checkpoint', required=True, type=click.Path(dir_okay=False), help='Checkpoint from `train --out`.')
@click.option('-n', '--num', type=ints(1, 10**6), default=20, show_default=True, help='How many samples.')
@click.option('--temperature', type=Finite(0, 1e6, low_open=True), default=0.5, show_default=True,
              help='Sampling temperature (lower: more typical names).')
@max_nodes_option
@seed_option('Seed of the sampling stream.')
def sample_cmd(checkpoint, num, temperature, seed):
    """Sample names from a trained checkpoint.

    \b
    Example:
      microgpt-graph sample --checkpoint model.json -n 10 --temperature 0.8
    """
    from microgpt.sample import format_sample, sample

    params, config, tokenizer = get_model(checkpoint, seed)
    check_budget(config, config.block_size, max_nodes(), what='sampling from this checkpoint')
    rng = random.Random(seed)
    for i in range(num):
        click.echo(format_sample(i, sample(params, config, tokenizer, rng, temperature)))


@main.command()
@model_options
@click.option('--json', 'as_json', is_flag=True, help='Machine-readable JSON instead of tables.')
@click.option('--scopes/--no-scopes', default=True, show_default=True, help='List every scope with its figures.')
@click.option('--why', 'why_node', metavar='NODE', help="Why this node's grad is what it is: the line that made "
              "it, the rule of each local derivative, the paths from the loss that add up to its grad, the "
              "identities it is part of. NODE: 'loss', an id, a name ('q[2]@pos3') or a parameter cell.")
def inspect(doc, checkpoint, seed, trace_path, as_json, scopes, why_node):
    """What a recorded step contains: positions, parameters, scopes, grad norms,
    and the identities of backprop checked on it.

    \b
    Examples:
      microgpt-graph inspect --doc anna
      microgpt-graph inspect --doc anna --json | python -m json.tool
      microgpt-graph inspect --why 'layer0.attn_wq[3][5]'
    """
    from microgpt.recording.report import format_report, inspect_report
    from microgpt.recording.why import find_node, format_why, why, why_data

    trace = get_trace(doc, checkpoint, seed, trace_path, quiet=as_json)
    if why_node is not None:
        with bad_value('--why'):
            d = why(trace, find_node(trace, why_node))
        click.echo(dumps(why_data(d)) if as_json else printable(format_why(trace, d)))
        return
    report = inspect_report(trace, scopes=scopes)
    click.echo(dumps(report) if as_json else printable(format_report(report)))


@main.command()
@model_options
@click.option('-o', '--output', default=None,
              help="Where to write it (default: trace-DOC.json, or trace-DOC.mgtrace for --format binary; "
                   "'-' for stdout).")
@click.option('--format', 'fmt', type=click.Choice(TRACE_FORMATS), default=None,
              help="json: the documented schema, one object per node (~20 MB for a 12-letter name); "
                   "binary: the columns as stored, zlib-compressed (~2 MB, loads ~10x faster). Default: "
                   "from the --output suffix (.mgtrace is binary), else json.")
@quiet_option
def export(doc, checkpoint, seed, trace_path, output, fmt, quiet):
    """The whole recorded step as a file that `--trace` loads back (either format).

    JSON (schema microgpt-graph.trace v1): every node with its id, op, data,
    grad, children, local derivatives, contributions, scope, and for parameters
    the name and cell. Binary: the same, compact and fast to load.

    \b
    Examples:
      microgpt-graph export --doc anna -o anna.json
      microgpt-graph export --doc anna --format binary -o anna.mgtrace
      microgpt-graph render --trace anna.mgtrace --token 2
    """
    fmt = trace_format(output, fmt)
    if output:
        open_output(output)
    # a binary file carries the "made by" chains: recorded with the step (cheaper than replaying it after)
    trace = get_trace(doc, checkpoint, seed, trace_path, quiet=quiet, lines=fmt == 'binary')
    path = open_output(output or f"trace-{safe_name(trace.meta.get('doc', doc))}{TRACE_SUFFIXES[fmt]}")
    if output is None and trace_path is not None and os.path.exists(path) and os.path.samefile(path, trace_path):
        raise BadInput(f"the default output {path} is the --trace file itself; give -o to choose where to write")
    with busy_bar(f'writing {fmt}', quiet=quiet):
        if fmt == 'json' and path is not None:      # streamed: a big trace's text is never held whole
            size = os.path.getsize(trace.to_json(path))    # to_json(path) returns the path, as the API's writers do
        else:
            data = encode_trace(trace, fmt)
            write_output(path, data)
            size = len(data)
    if path is not None:
        click.echo(f"wrote {path} ({len(trace)} nodes, {fmt}, {size / 1e6:.1f} MB)", err=True)


@main.command()
@doc_option('The document whose step is checked.')
@click.option('--checkpoint', type=click.Path(dir_okay=False),
              help='Checkpoint to check (default: a fresh seeded model, vocabulary a-z).')
@seed_option('Seed of the fresh model.')
@click.option('--inject', 'fault', type=click.Choice(fault_names()),
              help='Run with a deliberately wrong derivative (for teaching): ' + ', '.join(fault_names()) + '.')
@click.option('--list-faults', is_flag=True, help='List the injectable faults and exit.')
@click.option('--param', 'select', multiple=True,
              help="Parameters for the finite-difference check: a matrix ('wte') or a cell "
                   "('layer0.attn_wq[3][5]'); repeatable. Default: --sample random cells.")
@click.option('--sample', type=ints(1, 10**7), default=None,
              help='Check this many random parameter cells (default 50 when no --param is given).')
@click.option('--all-params', is_flag=True, help='Check every parameter (4,192 on the default model: minutes).')
@click.option('--no-params', is_flag=True, help='Skip the parameter-level finite-difference check.')
@click.option('--scope', default=None, help="Limit the node-level check to a scope glob, e.g. 'pos2/*' or '*/mlp/*'.")
@click.option('--eps', type=Finite(0, 1.0, low_open=True), default=EPS, show_default=True,
              help='Finite-difference step for the parameter check.')
@click.option('--rtol', type=Finite(0, 1e6), default=RTOL, show_default=True,
              help='Relative tolerance of the parameter check.')
@click.option('--atol', type=Finite(0, 1e6), default=ATOL, show_default=True,
              help='Absolute tolerance of the parameter check.')
@click.option('--render', 'render_path', type=click.Path(dir_okay=False),
              help='Write an SVG centred on the first failing node (or, if all is well, the last token).')
@click.option('--json', 'as_json', is_flag=True, help='Machine-readable JSON instead of the report.')
@click.option('--trace', 'trace_path', type=click.Path(dir_okay=False),
              help='Check a saved trace (e.g. from `record SCRIPT.py`) node by node instead of recording '
                   'a step; the parameter check needs the model and is skipped.')
@max_nodes_option
@quiet_option
def gradcheck(doc, checkpoint, seed, fault, list_faults, select, sample, all_params, no_params, scope,
              eps, rtol, atol, render_path, as_json, trace_path, quiet):
    """Check the gradients of one step and point at the op whose backward is wrong.

    Node level: every recorded local derivative against a finite difference of
    its op, and every grad against the sum of what flowed into it. Parameter
    level: central finite differences of the loss (eps 1e-6, rel 1e-5, abs 1e-8).
    Exit status 1 when a check fails.

    \b
    Examples:
      microgpt-graph gradcheck                          # the correct engine: ok
      microgpt-graph gradcheck --inject exp-x2 --render failure.svg
      microgpt-graph gradcheck --param layer0.mlp_fc1 --scope 'pos2/*' --json
    """
    from graphviz_export import failure_view
    from microgpt.checks.diagnose import diagnose, diagnose_trace

    if list_faults:
        click.echo(describe_faults())
        return
    if all_params and (select or sample):
        raise BadInput("--all-params cannot be combined with --param or --sample")
    if no_params and (select or sample or all_params):
        raise BadInput("--no-params cannot be combined with --param, --sample or --all-params")
    render_to = open_output(render_path, '--render') if render_path else None
    if trace_path is not None:
        trace = get_trace(doc, checkpoint, seed, trace_path)
        with bad_value('--scope'):
            result = diagnose_trace(trace, scope=scope, eps=eps, param_rtol=rtol, param_atol=atol)
    else:
        params, config, tokenizer = get_model(checkpoint, seed)
        with bad_value('--doc'):
            n_positions = len(tokenizer.encode(doc)) - 1
        check_budget(config, n_positions, max_nodes(), what=f"checking {doc[:40]!r}")
        with Progress('parameters', quiet) as progress:
            result = diagnose(params, config, tokenizer, doc, fault=fault, select=list(select) or None,
                              sample=None if all_params else (sample or 'auto'), param_check=not no_params,
                              scope=scope, eps=eps, param_rtol=rtol, param_atol=atol, progress=progress)
    click.echo(dumps(result.to_dict()) if as_json else result.format())
    if render_to is not None:
        write_output(render_to, render_view(failure_view(result), 'svg'))
        click.echo(f"wrote {render_to}{drawn_by('svg', DEFAULT_RENDERER)}", err=True)
    if not result.ok:
        sys.exit(1)


@main.command()
@model_options
@view_options
@click.option('--format', 'fmt', type=click.Choice(FORMATS), default=None,
              help='Output format (default: from the --output suffix, else svg). png/pdf need Graphviz `dot` '
                   'on PATH; json is the selected view as data.')
@click.option('-o', '--output', default=None, help="Output file (default: a name from the view, e.g. "
                                                   "emma-token4.svg; '-' for stdout).")
@renderer_option
@timeout_option()
@quiet_option
def render(doc, checkpoint, seed, trace_path, spec, fmt, output, renderer, timeout, quiet):
    """Draw one view of a recorded step, annotated with data and grad.

    Nodes show op, data and grad; fill colour is the grad's sign and size (legend
    in the picture); hover for full-precision values. Folded parts are summary
    nodes that say how many ops they hold.

    \b
    Examples:
      microgpt-graph render                                  # emma, last token
      microgpt-graph render --doc anna --token 2 --level block
      microgpt-graph render --token 2 --expand 'pos2/layer0/attn/head0/*'
      microgpt-graph render --layer 0 --head 1 --token 3 --level scalar
      microgpt-graph render --param 'layer0.attn_wq[3][5]' --edge-grads
      microgpt-graph render --param wte
      microgpt-graph render --node loss --depth 3 -o loss.svg
      microgpt-graph render --trace train.trace.json --function rmsnorm
    """
    if output:
        open_output(output)  # a bad -o is refused before the step is recorded
    fmt = output_format(output, fmt)
    trace = get_trace(doc, checkpoint, seed, trace_path, quiet=quiet)
    with drawing_time(timeout) as layout_seconds:
        view = build_view(trace, **spec.kwargs())
        path = open_output(output or file_name(view, fmt))
        by = drawn_by(fmt, renderer)
        left = layout_seconds()
        with busy_bar(f"layout{by.replace('; drawn', ',')}", left, quiet or fmt in ('dot', 'json')):
            data = render_view(view, fmt, timeout=left, renderer=renderer, path=path)
    if path is None:
        write_output(None, data)     # '-': the bytes to stdout
    else:
        st = view.stats
        click.echo(f"wrote {path}: {view.selection.title}; level {st['level']}, {st['nodes']} nodes shown, "
                   f"{st['edges']} edges, {st['folded_ops']} ops folded into summaries{by}")


@main.command('diff')
@doc_option('The document recorded before and after.')
@click.option('--checkpoint', 'before_ckpt', type=click.Path(dir_okay=False),
              help='The model before (default: a fresh seeded model).')
@click.option('--checkpoint-after', 'after_ckpt', type=click.Path(dir_okay=False),
              help='The model after (a checkpoint); or use --train-steps.')
@click.option('--train-steps', type=ints(1, 10**6),
              help='After = the reference run (seed --seed, DATA shuffled) after this many training steps.')
@click.option('--data', type=click.Path(dir_okay=False),
              help='Training documents for --train-steps (default: as `train`).')
@seed_option('Seed of the fresh model / training run.')
@view_options
@click.option('-o', '--output', default=None, help='The SVG to write (default: DOC-diff.svg).')
@renderer_option
@timeout_option()
@quiet_option
def diff(doc, before_ckpt, after_ckpt, train_steps, data, seed, spec, output, renderer, timeout, quiet):
    """Before/after: two recordings of DOC drawn on one layout with one colour scale
    (\u0394data, \u0394grad, \u0394loss, heat-maps of \u0394\u03b8). Every view option is
    `render`'s; --param with a matrix (e.g. wte) gives the heat-map of \u0394\u03b8.

    \b
    Examples:
      microgpt-graph diff --checkpoint a.json --checkpoint-after b.json --layer 0
      microgpt-graph diff --train-steps 20 --param wte -o wte-diff.svg
    """
    from graphviz_export.steps.diff import diff_svg
    from microgpt.recording.session import train_and_record

    if (after_ckpt is None) == (train_steps is None):
        raise BadInput("give exactly one of --checkpoint-after B or --train-steps N")
    if output:
        open_output(output)
    if after_ckpt is not None:
        before = get_trace(doc, before_ckpt, seed, None, quiet=quiet)
        after = get_trace(doc, after_ckpt, seed, None, quiet=True)
        labels = (Path(before_ckpt).name if before_ckpt else f'fresh seed {seed}', Path(after_ckpt).name)
    else:
        if data is None:
            docs = read_docs(names_data(quiet))
        else:
            with bad_value('--data'):
                docs = read_docs(data)
        with bad_value('--doc'), Progress('training', quiet) as progress:
            before, after, _ = train_and_record(docs, doc, train_steps, seed=seed,
                                                on_step=lambda k, n, _loss: progress(k, n))
        labels = ('step 0', f'step {train_steps}')
    with drawing_time(timeout) as layout_seconds, \
            busy_bar(f"layout{drawn_by('svg', renderer).replace('; drawn', ',')}", timeout, quiet):
        view, svg = diff_svg(before, after, labels, renderer=renderer, timeout=layout_seconds, **spec.kwargs())
    path = open_output(output or f"{safe_name(doc)}-diff.svg")
    write_output(path, svg)
    change = after.loss - before.loss
    click.echo(f"wrote {path}: {view.selection.title}; loss {before.loss:.6f} -> {after.loss:.6f} ({change:+.6f})"
               f"{drawn_by('svg', renderer)}")


for command in (tour, explore, record):     # the application doors (apps.py)
    main.add_command(command)


if __name__ == '__main__':
    main()
