"""The command line: exit codes, one-line errors, outputs. (render/gradcheck: see
test_cli_render.py and test_cli_gradcheck.py.)"""

import json
import os

import click
import pytest
from click.testing import CliRunner

import cli
from microgpt.checkpoint import load_checkpoint
from tests.reference_figures import reference_train_output

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


def header(docs, ref):
    """The three header lines, from the data and the reference (not from our code)."""
    return [f'num docs: {len(docs)}', f"vocab size: {len(set(''.join(docs))) + 1}",
            f'num params: {len(ref.params)}']


def test_train_logs_like_the_reference_and_saves_a_checkpoint(runner, tiny_data, tmp_path):
    out = tmp_path / 'm.json'
    r = runner.invoke(cli.main, ['train', str(tiny_data), '--steps', '6', '--log-every', '2',
                                 '--samples', '3', '--out', str(out), '--n-embd', '8', '--n-head', '2'])
    assert r.exit_code == 0, r.output
    docs = TINY.split()
    want, ref = reference_train_output(docs, 6, log_every=2, samples=3, n_embd=8, n_head=2)
    lines = r.output.splitlines()
    assert lines[:3] == header(docs, ref) == ['num docs: 5', 'vocab size: 14', 'num params: 1120']
    assert [l for l in lines if l.startswith(('step ', 'sample '))] == want
    assert [l[:15] for l in want[:3]] == ['step    2 /    ', 'step    4 /    ', 'step    6 /    ']
    assert f"wrote checkpoint {out}" in lines
    params, config, tok, step = load_checkpoint(out)
    assert (config.n_embd, config.n_head, step) == (8, 2, 6)
    # the checkpoint holds the reference's trained parameters, every float
    assert [v.data for m in params.values() for row in m for v in row] == [p.data for p in ref.params]
    assert list(params) == list(ref.state_dict) and tok.chars == ref.uchars


def test_train_same_seed_same_losses_and_samples(runner, tiny_data):
    """Two runs agree with each other and with the reference; another seed does not."""
    args = ['train', str(tiny_data), '--steps', '4', '--log-every', '1', '--samples', '2', '--n-embd', '8']
    a = runner.invoke(cli.main, args)
    b = runner.invoke(cli.main, args)
    c = runner.invoke(cli.main, args + ['--seed', '7'])
    assert a.exit_code == b.exit_code == c.exit_code == 0
    assert a.output == b.output != c.output
    want = reference_train_output(TINY.split(), 4, log_every=1, samples=2, n_embd=8)[0]
    assert [l for l in a.output.splitlines() if l.startswith(('step ', 'sample '))] == want
    want7 = reference_train_output(TINY.split(), 4, seed=7, log_every=1, samples=2, n_embd=8)[0]
    assert [l for l in c.output.splitlines() if l.startswith(('step ', 'sample '))] == want7


def test_train_progress_bar_without_log_every(runner, tiny_data):
    """No log lines, then the final loss, which is the reference's last loss. (The bar
    is drawn on a terminal only: CliRunner's output is not one; tests/test_cli_first_hour.py
    covers the bar.)"""
    r = runner.invoke(cli.main, ['train', str(tiny_data), '--steps', '3', '--n-embd', '8'])
    assert r.exit_code == 0, r.output
    _, ref = reference_train_output(TINY.split(), 0, n_embd=8)
    losses = [ref.step(k, 3) for k in range(3)]
    assert r.output.splitlines()[-1] == f"final loss {losses[-1]:.4f}"
    assert r.output.splitlines()[:3] == ['num docs: 5', 'vocab size: 14', 'num params: 1120']
    assert len(r.output.splitlines()) == 4 and 'training' not in r.output


@pytest.mark.parametrize('args,code,fragments', [
    (['train', 'missing.txt'], 2, ["Invalid value for 'DATA'", 'data file not found: missing.txt']),
    (['train', '{tiny}', '--steps', '0'], 2, ["'--steps'", '0 is not in the range 1<=x<=1000000000']),
    (['train', '{tiny}', '--n-embd', '10', '--n-head', '4'], 2, ['n_embd (10) must be divisible by n_head (4)']),
    (['train', '{tiny}', '--temperature', '0'], 2, ["'--temperature'"]),
    (['train', '{tiny}', '--out', '/nonexistent-dir/m.json'], 2, ["folder '/nonexistent-dir' does not exist"]),
    (['sample'], 2, ["Missing option '--checkpoint'"]),
    (['sample', '--checkpoint', 'nope.json'], 2, ["'--checkpoint'", 'checkpoint not found: nope.json']),
    (['inspect', '--doc', ''], 2, ["'--doc'", 'the document is empty']),
    (['inspect', '--doc', 'Emma'], 2, ["'--doc'", "character 'E' at index 0 of 'Emma' is not in the vocabulary"]),
    (['inspect', '--trace', 'nope.json'], 2, ["'--trace'", 'trace file not found: nope.json']),
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
    assert ": loss_t@pos2 (pos2/loss/loss) of" in r.output  # position 2's loss node, by its name


def test_export_round_trips_through_inspect(runner, tmp_path):
    out = tmp_path / 'anna.json'
    r = runner.invoke(cli.main, ['export', '--doc', 'anna', '-o', str(out)])
    assert r.exit_code == 0 and f"wrote {out}" in r.output
    d = json.loads(out.read_text())
    assert d['schema'] == 'microgpt-graph.trace' and d['meta']['doc'] == 'anna'
    a = runner.invoke(cli.main, ['inspect', '--trace', str(out), '--json'])
    b = runner.invoke(cli.main, ['inspect', '--doc', 'anna', '--json'])
    assert a.exit_code == 0 and a.stdout == b.stdout
    s = runner.invoke(cli.main, ['export', '--doc', 'ab', '-o', '-'])
    assert json.loads(s.stdout)['meta']['doc'] == 'ab'


def test_export_never_half_writes(runner, tmp_path, monkeypatch):
    out = tmp_path / 't.json'
    out.write_text('old')

    def boom(*a, **k):
        raise OSError('disk full')
    monkeypatch.setattr(os, 'replace', boom)
    r = runner.invoke(cli.main, ['export', '--doc', 'ab', '-o', str(out)])
    assert r.exit_code != 0
    assert out.read_text() == 'old' and sorted(p.name for p in tmp_path.iterdir()) == ['t.json']
