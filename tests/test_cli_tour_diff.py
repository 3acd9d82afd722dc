"""`tour` and `diff` as a user meets them: exit codes, the files written, the numbers printed."""

import re
from pathlib import Path

from click.testing import CliRunner

import cli
from graphviz_export.web.tour import load_tour
from microgpt.checkpoint import save_checkpoint
from microgpt.recording import record_step
from microgpt.train import start_run, train

ROOT = Path(__file__).resolve().parent.parent
DOCS = ['emma', 'olivia', 'ava', 'anna', 'mia', 'liam']


def invoke(*args):
    return CliRunner().invoke(cli.main, list(map(str, args)))


def test_tour_writes_one_html_with_every_stop(tmp_path):
    out = tmp_path / 'lecture.html'
    r = invoke('tour', ROOT / 'examples' / 'backprop_tour.toml', '-o', out)
    assert r.exit_code == 0, r.output
    stops = len(load_tour(ROOT / 'examples' / 'backprop_tour.toml').stops)
    html = out.read_text()
    assert re.search(rf'wrote {re.escape(str(out))}: {stops} stops, \d+\.\d\d MB', r.output)
    assert html.count('<svg') >= stops
    assert 'src="http' not in html and "src='http" not in html   # nothing fetched from the network


def test_tour_bad_file_is_exit_2(tmp_path):
    bad = tmp_path / 'bad.toml'
    bad.write_text('[[stop]]\ncaption = "x"\nlevel = "atoms"\n')
    r = invoke('tour', bad, '-o', tmp_path / 'x.html')
    assert r.exit_code == 2
    assert r.output.startswith("Error: Invalid value for 'TOUR_FILE':") and 'atoms' in r.output
    assert not (tmp_path / 'x.html').exists()


def test_diff_of_two_checkpoints_prints_the_two_losses(tmp_path):
    run = start_run(DOCS, seed=3)
    a = tmp_path / 'a.json'
    save_checkpoint(a, run.params, run.config, run.tokenizer, step=0)
    before = record_step(run.params, run.config, run.tokenizer, 'emma').loss
    train(run, 5)
    b = tmp_path / 'b.json'
    save_checkpoint(b, run.params, run.config, run.tokenizer, step=5)
    after = record_step(run.params, run.config, run.tokenizer, 'emma').loss
    out = tmp_path / 'd.svg'
    r = invoke('diff', '--checkpoint', a, '--checkpoint-after', b, '--level', 'block', '-o', out)
    assert r.exit_code == 0, r.output
    assert f"loss {before:.6f} -> {after:.6f} ({after - before:+.6f})" in r.output
    assert out.read_text().lstrip().startswith(('<?xml', '<svg', '<!DOCTYPE'))


def test_diff_needs_exactly_one_after(tmp_path):
    r = invoke('diff')
    assert r.exit_code == 2 and 'give exactly one of --checkpoint-after B or --train-steps N' in r.output
