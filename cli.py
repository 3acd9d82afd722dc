"""microgpt-graph: the command line. Thin: parse, call the library, report.

Every library error becomes a one-line `Error: ...` with exit status 2 for bad
input (usage errors) and 1 for failures while working; never a traceback.
"""

import json
import sys
from pathlib import Path

import click

from microgpt.faults import fault_names

DEFAULT_DOC = 'emma'


# -- errors: one line, click's exit codes ------------------------------------------------
class BadInput(click.UsageError):
    """Bad input: exit status 2, printed as one line."""


class OneLineErrors(click.Group):
    """A click group whose errors print as a single `Error: ...` line."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Abort:
            click.echo('Aborted!', err=True)
            sys.exit(1)
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


def library_errors():
    """The library's exception types that mean 'your input is wrong'."""
    from microgpt.checkpoint import CheckpointError
    from microgpt.data import DataError
    from microgpt.trace import TraceQueryError
    from microgpt.trace_json import TraceFormatError
    return (CheckpointError, DataError, TraceQueryError, TraceFormatError)


# -- shared option groups ---------------------------------------------------------------
def model_options(f):
    """--doc / --checkpoint / --seed / --trace: which step to look at."""
    f = click.option('--trace', 'trace_path', type=click.Path(dir_okay=False),
                     help='Use a trace saved by `export` instead of recording a step '
                          '(--doc/--checkpoint/--seed are then ignored).')(f)
    f = click.option('--seed', type=int, default=42, show_default=True,
                     help='Seed of the fresh model used when no --checkpoint is given.')(f)
    f = click.option('--checkpoint', type=click.Path(dir_okay=False),
                     help='Model checkpoint written by `train --out` (default: a fresh seeded '
                          'model, default config, vocabulary a-z).')(f)
    f = click.option('--doc', default=DEFAULT_DOC, show_default=True,
                     help='The document (a name) whose training step is recorded.')(f)
    return f


def load_model(checkpoint, seed):
    from microgpt.checkpoint import load_checkpoint, CheckpointError
    from microgpt.step import fresh_model
    if checkpoint is None:
        return fresh_model(seed)
    try:
        params, config, tokenizer, _ = load_checkpoint(checkpoint)
    except CheckpointError as e:
        raise BadInput(f"Invalid value for '--checkpoint': {e}") from None
    return params, config, tokenizer


def get_trace(doc, checkpoint, seed, trace_path, quiet=False):
    """Record the step of `doc` (or load a saved trace), reporting truncation."""
    from microgpt.data import DataError
    from microgpt.step import record_step
    from microgpt.trace import Trace
    from microgpt.trace_json import TraceFormatError
    if trace_path is not None:
        try:
            return Trace.from_json(Path(trace_path))
        except TraceFormatError as e:
            raise BadInput(f"Invalid value for '--trace': {e}") from None
    params, config, tokenizer = load_model(checkpoint, seed)
    try:
        tokenizer.encode(doc)
    except DataError as e:
        raise BadInput(f"Invalid value for '--doc': {e}") from None
    if len(doc) + 1 > config.block_size and not quiet:
        click.echo(f"note: {doc!r} has {len(doc)} characters; like the reference, only the first "
                   f"{config.block_size} positions (block_size) are used", err=True)
    return record_step(params, config, tokenizer, doc)


def open_output(output):
    """'-' is stdout; otherwise the parent folder must exist and be writable."""
    if output == '-':
        return None
    path = Path(output)
    parent = path.parent if str(path.parent) else Path('.')
    if not parent.is_dir():
        raise BadInput(f"Invalid value for '-o' / '--output': folder {str(parent)!r} does not exist")
    import os
    if not os.access(parent, os.W_OK):
        raise BadInput(f"Invalid value for '-o' / '--output': folder {str(parent)!r} is not writable")
    if path.is_dir():
        raise BadInput(f"Invalid value for '-o' / '--output': {output!r} is a folder")
    return path


def write_output(path, data):
    """Atomic write (temp file + rename), or stdout when path is None."""
    from graphviz_export.render import write_atomic, RenderError
    if path is None:
        click.echo(data, nl=isinstance(data, str) and not data.endswith('\n'))  # bytes go out as bytes
        return
    try:
        write_atomic(path, data.encode('utf-8') if isinstance(data, str) else data)
    except RenderError as e:  # an OS error while writing: the old file is untouched
        raise click.ClickException(str(e)) from None


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


@main.command()
@click.argument('data', required=False, type=click.Path(dir_okay=False))
@click.option('--steps', type=click.IntRange(min=1), default=1000, show_default=True,
              help='Training steps (one document each).')
@click.option('--seed', type=int, default=42, show_default=True,
              help='Seeds the one random stream: shuffle, init, then sampling.')
@click.option('--n-layer', type=click.IntRange(min=1), default=1, show_default=True, help='Transformer blocks.')
@click.option('--n-embd', type=click.IntRange(min=1), default=16, show_default=True, help='Embedding width.')
@click.option('--n-head', type=click.IntRange(min=1), default=4, show_default=True,
              help='Attention heads (must divide --n-embd).')
@click.option('--block-size', type=click.IntRange(min=1), default=16, show_default=True,
              help='Longest context in tokens.')
@click.option('--out', type=click.Path(dir_okay=False), help='Write a checkpoint here when done.')
@click.option('--log-every', type=click.IntRange(min=0), default=0, show_default=True,
              help="Print 'step    k / N | loss X.XXXX' every K steps (0: a progress bar instead).")
@click.option('--samples', type=click.IntRange(min=0), default=0, show_default=True,
              help='Print this many samples after training, from the same random stream.')
@click.option('--temperature', type=click.FloatRange(min=0, min_open=True), default=0.5, show_default=True,
              help='Sampling temperature.')
def train(data, steps, seed, n_layer, n_embd, n_head, block_size, out, log_every, samples, temperature):
    """Train microgpt as the reference does, on DATA (one document per line).

    Without DATA: $MICROGPT_DATA, ./input.txt, or the makemore names file
    (downloaded once and cached). With seed 42 on the names data the losses and
    samples are the reference script's, to the last digit.

    \b
    Example:
      microgpt-graph train names.txt --steps 1000 --log-every 1 --samples 20 --out model.json
    """
    from microgpt.checkpoint import save_checkpoint
    from microgpt.data import read_docs, default_data_path, DataError
    from microgpt.sample import sample, format_sample
    from microgpt.train import start_run, train_step, format_step
    out_path = open_output(out) if out else None
    try:
        docs = read_docs(data if data is not None else default_data_path())
    except DataError as e:
        raise BadInput(f"Invalid value for 'DATA': {e}") from None
    try:
        run = start_run(docs, seed=seed, n_layer=n_layer, n_embd=n_embd, n_head=n_head, block_size=block_size)
    except ValueError as e:
        raise BadInput(str(e)) from None
    click.echo(f"num docs: {len(docs)}")
    click.echo(f"vocab size: {run.config.vocab_size}")
    click.echo(f"num params: {len(run.optimizer.params)}")
    if log_every:
        for k in range(steps):
            loss = train_step(run, k, steps)
            if (k + 1) % log_every == 0 or k + 1 == steps:
                click.echo(format_step(k, steps, loss))
    else:
        with click.progressbar(range(steps), label='training', show_pos=True,
                               item_show_func=lambda k: f"loss {run.losses[-1]:.4f}" if run.losses else '') as bar:
            for k in bar:
                train_step(run, k, steps)
        click.echo(f"final loss {run.losses[-1]:.4f}")
    if out_path is not None:
        save_checkpoint(out_path, run.params, run.config, run.tokenizer, step=steps)
        click.echo(f"wrote checkpoint {out_path}")
    if samples:
        click.echo("\n--- inference (new, hallucinated names) ---")
        for i in range(samples):
            click.echo(format_sample(i, sample(run.params, run.config, run.tokenizer, run.rng, temperature)))


@main.command('sample')
@click.option('--checkpoint', required=True, type=click.Path(dir_okay=False), help='Checkpoint from `train --out`.')
@click.option('-n', '--num', type=click.IntRange(min=1), default=20, show_default=True, help='How many samples.')
@click.option('--temperature', type=click.FloatRange(min=0, min_open=True), default=0.5, show_default=True,
              help='Sampling temperature (lower: more typical names).')
@click.option('--seed', type=int, default=42, show_default=True, help='Seed of the sampling stream.')
def sample_cmd(checkpoint, num, temperature, seed):
    """Sample names from a trained checkpoint.

    \b
    Example:
      microgpt-graph sample --checkpoint model.json -n 10 --temperature 0.8
    """
    import random
    from microgpt.sample import sample, format_sample
    params, config, tokenizer = load_model(checkpoint, seed)
    rng = random.Random(seed)
    for i in range(num):
        click.echo(format_sample(i, sample(params, config, tokenizer, rng, temperature)))


@main.command()
@model_options
@click.option('--json', 'as_json', is_flag=True, help='Machine-readable JSON instead of tables.')
@click.option('--scopes/--no-scopes', default=True, show_default=True, help='List every scope with its figures.')
def inspect(doc, checkpoint, seed, trace_path, as_json, scopes):
    """What a recorded step contains: positions, parameters, scopes, grad norms.

    \b
    Examples:
      microgpt-graph inspect --doc anna
      microgpt-graph inspect --doc anna --json | python -m json.tool
    """
    trace = get_trace(doc, checkpoint, seed, trace_path, quiet=as_json)
    summary = trace.summary()
    toks = trace.meta.get('token_strs', [])
    positions = [{'pos': p, 'token': toks[p] if p < len(toks) else None,
                  'target': toks[p + 1] if p + 1 < len(toks) else None,
                  'loss': l, 'nodes': trace.position_nodes_count()[p]}
                 for p, l in zip(trace.positions(), trace.position_losses())]
    stats = trace.scope_stats() if scopes else {}
    if as_json:
        click.echo(json.dumps({'doc': trace.meta.get('doc'), 'loss': summary['loss'], 'nodes': summary['nodes'],
                               'edges': summary['edges'], 'ops': summary['ops'], 'positions': positions,
                               'params': summary['params'], 'scopes': stats}, indent=1))
        return
    click.echo(f"document {trace.meta.get('doc')!r}: {summary['nodes']} nodes, {summary['edges']} edges, "
               f"loss {summary['loss']:.6f}")
    click.echo('ops: ' + ', '.join(f"{k} {v}" for k, v in summary['ops'].items()))
    click.echo('\npos  input   target   loss      nodes')
    for p in positions:
        click.echo(f"{p['pos']:3d}  {p['token']:7s} {p['target']:7s} {p['loss']:9.6f} {p['nodes']:6d}")
    click.echo('\nparameters:')
    for name, (r, c) in summary['params'].items():
        click.echo(f"  {name:16s} {r:3d} x {c:<3d}")
    if scopes:
        click.echo(f"\n{'scope':40s} {'nodes':>6s} {'grad norm':>11s} {'zero grad':>9s}")
        for path, s in stats.items():
            click.echo(f"{path:40s} {s['nodes']:6d} {s['grad_norm']:11.4e} {s['zero_grad']:8.0%}")


@main.command()
@model_options
@click.option('-o', '--output', default=None,
              help="Where to write the JSON (default: trace-DOC.json; '-' for stdout).")
def export(doc, checkpoint, seed, trace_path, output):
    """The whole recorded step as JSON (schema microgpt-graph.trace v1).

    Every node with its id, op, data, grad, children, local derivatives,
    contributions, scope, and for parameters the name and cell.

    \b
    Example:
      microgpt-graph export --doc anna -o anna.json
    """
    path = open_output(output or f"trace-{safe_name(doc)}.json")
    trace = get_trace(doc, checkpoint, seed, trace_path)
    write_output(path, trace.to_json())
    if path is not None:
        click.echo(f"wrote {path} ({len(trace)} nodes)", err=True)

@main.command()
@click.option('--doc', default=DEFAULT_DOC, show_default=True, help='The document whose step is checked.')
@click.option('--checkpoint', type=click.Path(dir_okay=False),
              help='Checkpoint to check (default: a fresh seeded model, vocabulary a-z).')
@click.option('--seed', type=int, default=42, show_default=True, help='Seed of the fresh model.')
@click.option('--inject', 'fault', type=click.Choice(fault_names()),
              help='Run with a deliberately wrong derivative (for teaching): ' + ', '.join(fault_names()) + '.')
@click.option('--list-faults', is_flag=True, help='List the injectable faults and exit.')
@click.option('--param', 'select', multiple=True,
              help="Parameters for the finite-difference check: a matrix ('wte') or a cell "
                   "('layer0.attn_wq[3][5]'); repeatable. Default: --sample random cells.")
@click.option('--sample', type=click.IntRange(min=1), default=None,
              help='Check this many random parameter cells (default 50 when no --param is given).')
@click.option('--all-params', is_flag=True, help='Check every parameter (4,192 on the default model: minutes).')
@click.option('--no-params', is_flag=True, help='Skip the parameter-level finite-difference check.')
@click.option('--scope', default=None, help="Limit the node-level check to a scope glob, e.g. 'pos2/*' or '*/mlp/*'.")
@click.option('--eps', type=click.FloatRange(min=0, min_open=True), default=1e-6, show_default=True,
              help='Finite-difference step for the parameter check.')
@click.option('--rtol', type=click.FloatRange(min=0), default=1e-5, show_default=True,
              help='Relative tolerance of the parameter check.')
@click.option('--atol', type=click.FloatRange(min=0), default=1e-8, show_default=True,
              help='Absolute tolerance of the parameter check.')
@click.option('--render', 'render_path', type=click.Path(dir_okay=False),
              help='Write an SVG centred on the first failing node (or, if all is well, the last token).')
@click.option('--json', 'as_json', is_flag=True, help='Machine-readable JSON instead of the report.')
def gradcheck(doc, checkpoint, seed, fault, list_faults, select, sample, all_params, no_params, scope,
              eps, rtol, atol, render_path, as_json):
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
    from microgpt.data import DataError
    from microgpt.diagnose import diagnose
    from microgpt.faults import describe_faults
    if list_faults:
        click.echo(describe_faults())
        return
    if all_params and (select or sample):
        raise BadInput("--all-params cannot be combined with --param or --sample")
    render_to = open_output(render_path) if render_path else None
    params, config, tokenizer = load_model(checkpoint, seed)
    try:
        tokenizer.encode(doc)
    except DataError as e:
        raise BadInput(f"Invalid value for '--doc': {e}") from None
    try:
        result = diagnose(params, config, tokenizer, doc, fault=fault, select=list(select) or None,
                          sample=None if all_params else (sample or 'auto'), param_check=not no_params,
                          scope=scope, eps=eps, param_rtol=rtol, param_atol=atol)
    except library_errors() as e:
        raise BadInput(str(e)) from None
    except ValueError as e:  # an unknown parameter name in --param
        raise BadInput(f"Invalid value for '--param': {e}") from None
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=1, default=str))
    else:
        click.echo(result.format())
    if render_to is not None:
        write_output(render_to, render_diagnosis(result))
        click.echo(f"wrote {render_to}", err=True)
    if not result.ok:
        sys.exit(1)

FORMATS = ('svg', 'dot', 'json', 'png', 'pdf', 'plain', 'xdot')


@main.command()
@model_options
@click.option('--token', type=int, help='Position to show (default: the last one). Narrows --layer/--head to it.')
@click.option('--layer', type=int, help='Show one transformer layer (all positions, or --token).')
@click.option('--head', type=int, help='Show one attention head (of --layer, default the only layer).')
@click.option('--param', help="A parameter cell, e.g. 'layer0.attn_wq[3][5]': its uses and how they sum to its "
                              "grad; or a matrix name, e.g. 'wte': a heat-map and its uses per position.")
@click.option('--node', help="A node id (see `export`/`inspect`), or 'loss': its neighbourhood.")
@click.option('--depth', type=click.IntRange(min=0), help='Hops around --node (default 2) or downstream of a '
                                                          '--param cell (default 1).')
@click.option('--direction', type=click.Choice(['both', 'ancestors', 'descendants']), default='both',
              show_default=True, help='Which way --node reaches.')
@click.option('--level', type=click.Choice(['auto', 'scalar', 'vector', 'block']), default='auto', show_default=True,
              help='scalar: every op; vector: one node per role (e.g. q, 16 values); block: attention / MLP / ... '
                   'per position; auto: the finest that fits --budget.')
@click.option('--budget', type=click.IntRange(min=1), default=150, show_default=True,
              help='Most visible nodes --level auto allows.')
@click.option('--edge-budget', type=click.IntRange(min=1), default=400, show_default=True,
              help='Most edges --level auto allows (edges, not nodes, make Graphviz slow).')
@click.option('--expand', multiple=True, help="Show a scope at scalar level inside a coarser view, e.g. "
                                              "'pos4/layer0/attn/head2/*'; repeatable.")
@click.option('--edge-grads', is_flag=True, help='Label edges with local derivative and gradient contribution.')
@click.option('--format', 'fmt', type=click.Choice(FORMATS), default=None,
              help='Output format (default: from the --output suffix, else svg). png/pdf need Graphviz `dot` '
                   'on PATH; json is the selected view as data.')
@click.option('-o', '--output', default=None, help="Output file (default: a name from the view, e.g. "
                                                   "emma-token4.svg; '-' for stdout).")
@click.option('--renderer', type=click.Choice(['auto', 'native', 'wasm']), default='auto', show_default=True,
              help='native: the `dot` program; wasm: the bundled WebAssembly Graphviz; auto: native if present.')
@click.option('--timeout', type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True,
              help='Seconds Graphviz may spend on the layout; past that the DOT source is saved instead.')
def render(doc, checkpoint, seed, trace_path, token, layer, head, param, node, depth, direction, level, budget,
           edge_budget, expand, edge_grads, fmt, output, renderer, timeout):
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
    """
    from graphviz_export import build_view, render_view
    from graphviz_export.render import RenderError, LayoutTimeout
    if fmt is None:
        suffix = Path(output).suffix.lstrip('.').lower() if output and output != '-' else ''
        fmt = suffix if suffix in FORMATS else 'svg'
    node_arg = None
    if node is not None:
        if node == 'loss':
            node_arg = 'loss'
        elif node.isdigit():
            node_arg = int(node)
        else:
            raise BadInput(f"Invalid value for '--node': {node!r} is not a node id (a whole number) or 'loss'")
    trace = get_trace(doc, checkpoint, seed, trace_path)
    try:
        view = build_view(trace, token=token, layer=layer, head=head, param=param, node=node_arg, depth=depth,
                          direction=direction, level=level, budget=budget, edge_budget=edge_budget,
                          expand=expand, edge_grads=edge_grads)
    except library_errors() as e:
        raise BadInput(str(e)) from None
    name = output or f"{safe_name(trace.meta.get('doc', 'trace'))}-{view_name(view)}.{fmt}"
    path = open_output(name)
    try:
        data = render_view(view, fmt, timeout=timeout, engine_preference=renderer,
                           path=path if fmt != 'json' else None)
    except LayoutTimeout as e:
        raise click.ClickException(str(e)) from None
    except RenderError as e:
        raise BadInput(str(e)) from None
    if path is None:
        write_output(None, data)
    else:
        if fmt == 'json':
            write_output(path, data)
        st = view.stats
        click.echo(f"wrote {path}: {view.selection.title}; level {st['level']}, {st['nodes']} nodes shown, "
                   f"{st['edges']} edges, {st['folded_ops']} ops folded into summaries")


def view_name(view):
    """'token4', 'layer0-token2', 'head0.1', 'layer0.attn_wq_3_5_', 'node4711', for file names."""
    q = view.selection.query
    kind = view.selection.kind
    if kind == 'token':
        return f"token{q.get('token')}"
    if kind == 'layer':
        return f"layer{q.get('layer')}" + (f"-token{q['token']}" if q.get('token') is not None else '')
    if kind == 'head':
        return f"layer{q.get('layer')}-head{q.get('head')}" + (f"-token{q['token']}" if q.get('token') is not None else '')
    if kind in ('param', 'matrix'):
        return safe_name(str(q.get('param', kind)))
    return safe_name(f"{kind}{q.get('node', '')}")


def render_diagnosis(result):
    """SVG bytes of a gradcheck: centred on the first failing node (its inputs and
    outputs, failing nodes outlined red), else the last token; health flags as notes."""
    from graphviz_export import build_view, failure_view, render_view
    view = failure_view(result)
    if view is None:
        view = build_view(result.trace, highlight=result.highlight(), notes=result.notes() or ['gradcheck: ok'])
    return render_view(view, 'svg')



def safe_name(text):
    """A file-name-safe version of a document."""
    out = ''.join(c if c.isalnum() or c in '-_' else '_' for c in text)
    return out[:40] or 'doc'


if __name__ == '__main__':
    main()
