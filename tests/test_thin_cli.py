"""What the commands used to compute in their bodies is the library's now, written
once: the defaults every surface shares, the output format a file name asks for,
and the training loop with its log lines and progress."""

import inspect

import pytest
from click.testing import CliRunner

import cli
from graphviz_export.options import output_format
from graphviz_export.steps.update import adam_update
from graphviz_export.web.explorer.recordings import Recordings
from graphviz_export.web.explorer.server import make_server, serve
from graphviz_export.web.tour.spec import parse_tour
from microgpt.checkpoint import load_model
from microgpt.recording import DEFAULT_DOC, NUM_STEPS, SEED
from microgpt.recording.formats import trace_format
from microgpt.recording.session import train_and_record
from microgpt.train import format_step, fresh_model, start_run, train
from tests.reference_impl import make_reference


def default_of(function, name):
    return inspect.signature(function).parameters[name].default


def option_default(command, name):
    return next(p.default for p in cli.main.commands[command].params if p.name == name)


def test_every_surface_takes_the_ports_defaults():
    """One document, one seed, one schedule: a surface with its own literal fails here."""
    assert (DEFAULT_DOC, SEED, NUM_STEPS) == ('emma', 42, 1000)    # the reference's seed and num_steps
    for command in ('render', 'inspect', 'export', 'gradcheck', 'diff', 'explore'):
        assert option_default(command, 'doc') == DEFAULT_DOC, command
    for command in ('train', 'sample', 'render', 'gradcheck', 'diff', 'explore'):
        assert option_default(command, 'seed') == SEED, command
    assert option_default('train', 'steps') == NUM_STEPS
    for function in (Recordings, make_server, serve):
        assert (default_of(function, 'doc'), default_of(function, 'seed')) == (DEFAULT_DOC, SEED)
    for function in (start_run, fresh_model, load_model, train_and_record):
        assert default_of(function, 'seed') == SEED
    assert default_of(train_and_record, 'num_steps') == default_of(adam_update, 'num_steps') == NUM_STEPS
    tour = parse_tour('[[stop]]\ncaption = "x"\n')
    assert (tour.doc, tour.seed) == (DEFAULT_DOC, SEED)


@pytest.mark.parametrize('outfile,given,fmt', [
    ('loss.svg', None, 'svg'), ('loss.PNG', None, 'png'), ('view.json', None, 'json'), ('a.b/c.dot', None, 'dot'),
    ('picture.txt', None, 'svg'), ('noext', None, 'svg'), ('-', None, 'svg'), (None, None, 'svg'),
    ('loss.png', 'pdf', 'pdf'),
])
def test_a_picture_format_from_the_file_name(outfile, given, fmt):
    assert output_format(outfile, given) == fmt


@pytest.mark.parametrize('outfile,given,fmt', [
    ('anna.mgtrace', None, 'binary'), ('anna.json', None, 'json'), ('anna.trace', None, 'json'), (None, None, 'json'),
    ('-', None, 'json'), ('anna.mgtrace', 'json', 'json'), ('anna.json', 'binary', 'binary'),
])
def test_a_trace_format_from_the_file_name(outfile, given, fmt):
    assert trace_format(outfile, given) == fmt


def test_render_writes_the_format_its_file_name_asks_for(tmp_path):
    r = CliRunner().invoke(cli.main, ['render', '--doc', 'ab', '-o', str(tmp_path / 'v.dot')])
    assert r.exit_code == 0, r.output
    assert (tmp_path / 'v.dot').read_text().startswith('digraph')


def test_train_logs_every_k_steps_and_reports_progress_without_changing_a_step():
    docs = ['ab', 'ba', 'abba', 'b']
    run, ref = start_run(docs, seed=3), make_reference(docs, seed=3)
    lines, ticks = [], []
    losses = train(run, 5, schedule=9, log=lines.append, log_every=2, progress=lambda done, n: ticks.append((done, n)))
    assert losses == [ref.step(k, 9) for k in range(5)]     # the reference's steps, every float
    assert lines == [format_step(k, 5, losses[k]) for k in (1, 3, 4)]   # every 2nd step, and the last
    assert ticks == [(k, 5) for k in range(1, 6)]
