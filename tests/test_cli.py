"""The command line: exit codes, one-line errors, outputs. (render/gradcheck: see
test_cli_render.py and test_cli_gradcheck.py.)"""

import json
import os

import click
import pytest
from click.testing import CliRunner

import cli
from microgpt.checkpoint import load_checkpoint
from tests.conftest import names_path, needs_names

TINY = 'anna\nbob\ncecilia\ndmitri\neve\n'


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def tiny_data(tmp_path):
    p = tmp_path / 'tiny.txt'
    p.write_text(TINY)
    return p


def one_line_error(result, code, *fragments):
    assert result.exit_code == code, result.output
    lines = [l for l in result.output.splitlines() if l.strip()]
    errors = [l for l in lines if l.startswith('Error: ')]
    assert len(errors) == 1, result.output
    for f in fragments:
        assert f in errors[0], errors[0]
    assert 'Traceback' not in result.output
    return errors[0]


def all_commands(group=cli.main, prefix=()):
    for name, cmd in sorted(group.commands.items()):
        yield prefix + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from all_commands(cmd, prefix + (name,))


def test_every_command_and_option_has_help(runner):
    assert cli.main.help
    names = []
    for path, cmd in all_commands():
        names.append(path[-1])
        assert cmd.help and len(cmd.help.strip()) > 20, f"{path} has no help"
        for p in cmd.params:
            if isinstance(p, click.Option):
                assert p.help, f"{' '.join(path)} {p.opts} has no help"
        r = runner.invoke(cli.main, list(path) + ['--help'])
        assert r.exit_code == 0 and 'Example' in r.output, path
    assert {'train', 'sample', 'render', 'inspect', 'export', 'gradcheck'} <= set(names)


def test_train_logs_like_the_reference_and_saves_a_checkpoint(runner, tiny_data, tmp_path):
    out = tmp_path / 'm.json'
    r = runner.invoke(cli.main, ['train', str(tiny_data), '--steps', '6', '--log-every', '2',
                                 '--samples', '3', '--out', str(out), '--n-embd', '8', '--n-head', '2'])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[:3] == ['num docs: 5', 'vocab size: 14', 'num params: 1120']
    steps = [l for l in lines if l.startswith('step')]
    assert [l[:15] for l in steps] == ['step    2 /    ', 'step    4 /    ', 'step    6 /    ']
    assert all(' | loss ' in l for l in steps)
    assert sum(l.startswith('sample ') for l in lines) == 3
    params, config, tok, step = load_checkpoint(out)
    assert (config.n_embd, config.n_head, step) == (8, 2, 6)


def test_train_same_seed_same_losses_and_samples(runner, tiny_data):
    args = ['train', str(tiny_data), '--steps', '4', '--log-every', '1', '--samples', '2', '--n-embd', '8']
    a = runner.invoke(cli.main, args)
    b = runner.invoke(cli.main, args)
    assert a.exit_code == 0 and a.output == b.output


@needs_names
def test_train_names_reference_figures(runner):
    r = runner.invoke(cli.main, ['train', str(names_path()), '--steps', '1000', '--log-every', '1'],
                      catch_exceptions=False) if os.environ.get('MICROGPT_SLOW') else \
        runner.invoke(cli.main, ['train', str(names_path()), '--steps', '3', '--log-every', '1'])
    assert r.exit_code == 0
    assert 'num docs: 32033' in r.output and 'vocab size: 27' in r.output and 'num params: 4192' in r.output


def test_train_progress_bar_without_log_every(runner, tiny_data):
    r = runner.invoke(cli.main, ['train', str(tiny_data), '--steps', '3', '--n-embd', '8'])
    assert r.exit_code == 0 and 'final loss' in r.output


@pytest.mark.parametrize('args,code,fragments', [
    (['train', 'missing.txt'], 2, ["Invalid value for 'DATA'", 'data file not found: missing.txt']),
    (['train', '{tiny}', '--steps', '0'], 2, ["'--steps'", '0 is not in the range x>=1']),
    (['train', '{tiny}', '--n-embd', '10', '--n-head', '4'], 2, ['n_embd (10) must be divisible by n_head (4)']),
    (['train', '{tiny}', '--temperature', '0'], 2, ["'--temperature'"]),
    (['train', '{tiny}', '--out', '/nonexistent-dir/m.json'], 2, ["folder '/nonexistent-dir' does not exist"]),
    (['sample'], 2, ["Missing option '--checkpoint'"]),
    (['sample', '--checkpoint', 'nope.json'], 2, ["'--checkpoint'", 'checkpoint not found: nope.json']),
    (['inspect', '--doc', ''], 2, ["'--doc'", 'the document is empty']),
    (['inspect', '--doc', 'Emma'], 2, ["'--doc'", "character 'E' at index 0 of 'Emma' is not in the vocabulary"]),
    (['inspect', '--trace', 'nope.json'], 2, ["'--trace'", 'cannot read trace file nope.json']),
    (['export', '-o', '/nonexistent-dir/t.json'], 2, ["folder '/nonexistent-dir' does not exist"]),
    (['frobnicate'], 2, ["No such command 'frobnicate'"]),
])
def test_bad_input_gives_one_line_errors(runner, tiny_data, args, code, fragments):
    args = [a.replace('{tiny}', str(tiny_data)) for a in args]
    one_line_error(runner.invoke(cli.main, args), code, *fragments)


def test_corrupt_and_mismatched_checkpoints(runner, tiny_data, tmp_path):
    good = tmp_path / 'm.json'
    runner.invoke(cli.main, ['train', str(tiny_data), '--steps', '1', '--out', str(good), '--n-embd', '8'])
    bad = tmp_path / 'bad.json'
    bad.write_text(good.read_text()[:500])
    one_line_error(runner.invoke(cli.main, ['sample', '--checkpoint', str(bad)]), 2, 'is corrupt or truncated')
    # a checkpoint over another vocabulary: 'emma' has characters it lacks
    one_line_error(runner.invoke(cli.main, ['inspect', '--checkpoint', str(good), '--doc', 'zoe']), 2,
                   "character 'z' at index 0 of 'zoe' is not in the vocabulary 'abcdeilmnortv'")


def test_inspect_text_and_json(runner):
    r = runner.invoke(cli.main, ['inspect', '--doc', 'emma'])
    assert r.exit_code == 0
    assert "document 'emma': 43895 nodes" in r.output
    assert '  0  <BOS>   e ' in r.output and 'layer0.mlp_fc1    64 x 16' in r.output
    assert 'pos4/layer0/mlp/relu' in r.output
    j = runner.invoke(cli.main, ['inspect', '--doc', 'emma', '--json'])
    d = json.loads(j.output)
    assert d['nodes'] == 43895 and [p['token'] for p in d['positions']] == ['<BOS>', 'e', 'm', 'm', 'a']
    assert d['loss'] == pytest.approx(sum(p['loss'] for p in d['positions']) / 5, rel=1e-14)
    assert d['scopes']['pos4/layer0/mlp/relu']['nodes'] == 64


def test_long_document_is_truncated_with_a_notice(runner):
    r = runner.invoke(cli.main, ['inspect', '--doc', 'abcdefghijklmnopqrstu', '--no-scopes'])
    assert r.exit_code == 0
    assert "only the first 16 positions (block_size) are used" in r.output
    table = r.output.split('loss node\n')[1].split('\n\n')[0].split()
    assert table[0::6] == [str(p) for p in range(16)]        # positions 0..15 only
    assert table[1::6][-1] == 'o' and table[2::6][-1] == 'p'  # the 16th input and its target
    loss_ids = [int(x) for x in table[5::6]]                  # each position's loss node, in order
    assert loss_ids == sorted(loss_ids) and len(set(loss_ids)) == 16


def test_inspect_lists_node_ids_that_render_accepts(runner, tmp_path):
    r = runner.invoke(cli.main, ['inspect', '--doc', 'emma', '--no-scopes'])
    assert 'node ids to start from (render --node ID): loss 43894;' in r.output
    row = [line.split() for line in r.output.splitlines() if line.startswith('  2  m')][0]
    out = tmp_path / 'n.svg'
    r = runner.invoke(cli.main, ['render', '--node', row[-1], '-o', str(out)])
    assert r.exit_code == 0, r.output
    assert f": mul #{row[-1]} (pos2/loss/loss) of" in r.output  # position 2's loss node


def test_export_round_trips_through_inspect(runner, tmp_path):
    out = tmp_path / 'anna.json'
    r = runner.invoke(cli.main, ['export', '--doc', 'anna', '-o', str(out)])
    assert r.exit_code == 0 and f"wrote {out}" in r.output
    d = json.loads(out.read_text())
    assert d['schema'] == 'microgpt-graph.trace' and d['meta']['doc'] == 'anna'
    a = runner.invoke(cli.main, ['inspect', '--trace', str(out), '--json'])
    b = runner.invoke(cli.main, ['inspect', '--doc', 'anna', '--json'])
    assert a.exit_code == 0 and a.output == b.output
    s = runner.invoke(cli.main, ['export', '--doc', 'ab', '-o', '-'])
    assert json.loads(s.output)['meta']['doc'] == 'ab'


def test_export_never_half_writes(runner, tmp_path, monkeypatch):
    out = tmp_path / 't.json'
    out.write_text('old')

    def boom(*a, **k):
        raise OSError('disk full')
    monkeypatch.setattr(os, 'replace', boom)
    r = runner.invoke(cli.main, ['export', '--doc', 'ab', '-o', str(out)])
    assert r.exit_code != 0
    assert out.read_text() == 'old' and sorted(p.name for p in tmp_path.iterdir()) == ['t.json']
