"""What a new user meets first: output names, which renderer drew, progress bars
that appear only for a person at a terminal, the binary export, and `train`
with no data file."""

import io
import re
import socket

import pytest
from click.testing import CliRunner

import cli
import microgpt.data as data
from graphviz_export import build_view
from graphviz_export.view import file_name
from microgpt_graph.progress import Progress, busy_bar


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return CliRunner()


@pytest.mark.parametrize('args,name', [
    ([], 'emma-token4.svg'),
    (['--level', 'scalar', '--layer', '0', '--head', '1'], 'emma-layer0-head1-token4-scalar.svg'),
    (['--param', 'layer0.attn_wq[3][5]'], 'emma-layer0.attn_wq-3-5.svg'),
    (['--param', 'wte'], 'emma-wte.svg'),
    (['--node', '4711'], 'emma-node4711.svg'),
    (['--layer', '0', '--head', '1', '--token', '3', '--edge-grads'], 'emma-layer0-head1-token3-edge-grads.svg'),
])
def test_default_output_names_are_readable_and_distinct(runner, tmp_path, args, name):
    if '--level' in args:
        # the name is the point, not 15,000 nodes of a whole token (19 s to build under load): one head's
        args = args + ['--token', '4', '--format', 'dot']
        name = name.replace('.svg', '.dot')
    r = runner.invoke(cli.main, ['render', *args])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f'wrote {name}: ') and (tmp_path / name).is_file()


def test_render_says_which_renderer_drew_the_picture(runner):
    r = runner.invoke(cli.main, ['render', '--token', '1', '--renderer', 'wasm', '-o', 'w.svg'])
    assert r.exit_code == 0 and r.output.rstrip().endswith('; drawn by WebAssembly Graphviz')
    r = runner.invoke(cli.main, ['render', '--token', '1', '--format', 'dot', '-o', 'w.dot'])
    assert r.exit_code == 0 and 'drawn by' not in r.output  # DOT text is not drawn


def test_view_repr_is_short(recorded_christopher):
    view = build_view(recorded_christopher, token=3)
    text = repr(view)
    assert text == ("<View \"token 3 of 'christopher': 'r' -> 'i'\": level vector, "
                    f"{view.stats['nodes']} nodes, {view.stats['edges']} edges, {view.stats['folded_ops']} ops folded>")
    assert len(text) < 120
    assert file_name(view, 'svg') == 'christopher-token3.svg'


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_draws_only_on_a_terminal_and_not_when_quiet():
    term = Terminal()
    with Progress('checking', file=term) as progress:
        for k in range(1, 6):
            progress(k, 5)
    assert 'checking' in term.getvalue() and '5/5' in term.getvalue()
    pipe, quiet = io.StringIO(), Terminal()
    for out, q in ((pipe, False), (quiet, True)):
        with Progress('checking', quiet=q, file=out) as progress:
            progress(5, 5)
    assert pipe.getvalue() == '' and quiet.getvalue() == ''


def test_busy_bar_ticks_while_one_call_runs():
    import time
    term = Terminal()
    with busy_bar('layout', 60, file=term):
        time.sleep(0.5)
    assert re.search(r'layout .* \d s of 60 s', term.getvalue())


def test_export_binary_and_render_from_it(runner, tmp_path):
    r = runner.invoke(cli.main, ['export', '--doc', 'anna', '--format', 'binary'])
    assert r.exit_code == 0, r.output
    assert re.search(r'^wrote trace-anna\.mgtrace \(\d+ nodes, binary, \d+\.\d MB\)$', r.stderr, re.M)
    r = runner.invoke(cli.main, ['export', '--doc', 'anna', '-o', 'a.mgtrace'])  # the suffix picks binary
    assert (tmp_path / 'a.mgtrace').read_bytes() == (tmp_path / 'trace-anna.mgtrace').read_bytes()
    a = runner.invoke(cli.main, ['render', '--trace', 'a.mgtrace', '--token', '2', '-o', 'a.svg'])
    b = runner.invoke(cli.main, ['render', '--doc', 'anna', '--token', '2', '-o', 'b.svg'])
    assert a.exit_code == b.exit_code == 0
    assert (tmp_path / 'a.svg').read_bytes() == (tmp_path / 'b.svg').read_bytes()


def test_train_without_data_offline_says_how_to_supply_it(runner, tmp_path, monkeypatch):
    for var in ('MICROGPT_DATA', 'MICROGPT_NAMES'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv('MICROGPT_CACHE', str(tmp_path / 'cache'))
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(data, 'NAMES_URL', f'http://127.0.0.1:{port}/names.txt')
    r = runner.invoke(cli.main, ['train', '--steps', '1'])
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert lines[0] == (f'downloading the makemore names list from http://127.0.0.1:{port}/names.txt '
                        f'to {tmp_path / "cache" / "names.txt"}')
    assert lines[1].startswith(f'Error: download of http://127.0.0.1:{port}/names.txt failed: ')
    assert "Invalid value for 'DATA'" not in r.output and 'set $MICROGPT_DATA=/path/to/names.txt' in lines[1]
    assert not (tmp_path / 'cache').exists()
