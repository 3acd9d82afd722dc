"""`render` and `gradcheck` on the command line: files, messages, exit codes."""

import json
import os
import re
import string
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

import cli
from microgpt.train import fresh_model
from tests.conftest import native
from tests.reference_figures import reference_with
from tests.test_cli import one_line_error

SVG = '{http://www.w3.org/2000/svg}'


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def texts(svg_bytes):
    root = ET.fromstring(svg_bytes)
    return [t.text for t in root.iter(SVG + 'text') if t.text]


def fmt(x):
    """A label's number: 4 significant digits (written out here, not imported)."""
    return f'{x:.4g}'


def reference_emma():
    """The reference's forward and backward of 'emma' on the default fresh model (seed 42,
    vocabulary a-z): (loss, [(logits, probs, position loss)] per position)."""
    params, _, _ = fresh_model(seed=42)
    ref = reference_with(params, string.ascii_lowercase)
    parts = []
    loss = ref.loss_of('emma', parts)
    loss.backward()
    return loss, parts


def label_after(words, title, k):
    """The k-th text line after the node label line `title` (exactly one such node)."""
    (i,) = [j for j, w in enumerate(words) if w == title]
    return words[i + k]


def span(values, what):
    xs = [getattr(v, what) for v in values]
    return f"{fmt(min(xs))} \u2026 {fmt(max(xs))}"


def test_default_render_writes_a_descriptive_svg(runner, tmp_path):
    """The default picture says what it shows, and its figures are the reference's:
    counts in the CLI line = the SVG's nodes and edges = the title's; the loss, the
    logits, probabilities and -log p of position 4 as the reference computes them."""
    r = runner.invoke(cli.main, ['render'])
    assert r.exit_code == 0, r.output
    m = re.fullmatch(r"wrote emma-token4\.svg: token 4 of 'emma': 'a' -> '<BOS>'; level vector, (\d+) nodes shown, "
                     r"(\d+) edges, (\d+) ops folded into summaries; drawn by "
                     r"(?:native Graphviz \(dot\)|WebAssembly Graphviz)\n", r.stdout)
    assert m, r.output
    nodes, edges, folded = map(int, m.groups())
    root = ET.parse(tmp_path / 'emma-token4.svg').getroot()
    groups = [g for g in root.iter(SVG + 'g')]
    drawn = [g for g in groups if g.get('class') == 'node' and not g.find(SVG + 'title').text.startswith('legend')]
    assert (len(drawn), sum(g.get('class') == 'edge' for g in groups)) == (nodes, edges)
    words = texts((tmp_path / 'emma-token4.svg').read_bytes())
    loss, parts = reference_emma()
    assert words[0] == "token 4 of 'emma': 'a' -> '<BOS>'"
    t = re.fullmatch(r"level vector \(auto\) \u00b7 (\d+) nodes, (\d+) edges \u00b7 (\d+) ops in view \+ (\d+) on its "
                     r"boundary, (\d+) of them folded into summary nodes \u00b7 loss (\S+)", words[1])
    assert t, words[1]
    assert (int(t[1]), int(t[2]), t[6]) == (nodes, edges, fmt(loss.data))
    in_view, boundary, folded_all = int(t[3]), int(t[4]), int(t[5])
    # the CLI counts the view's own ops; the title counts the boundary's too (issue 16)
    assert folded == in_view and folded_all == in_view + boundary
    logits, probs, loss4 = parts[4]
    assert label_after(words, 'logits = lm_head\u00b7x', 1) == '27 values \u00b7 891 ops'
    assert label_after(words, 'logits = lm_head\u00b7x', 2) == 'data ' + span(logits, 'data')
    assert label_after(words, 'logits = lm_head\u00b7x', 3).startswith('grad ' + span(logits, 'grad'))
    assert label_after(words, 'probs = softmax(logits)', 2) == 'data ' + span(probs, 'data')
    assert label_after(words, '\u2212log probs[target]', 2) == f'data {fmt(loss4.data)} \u2026 {fmt(loss4.data)}'
    assert {'embed', 'attn', 'mlp', 'loss'} <= set(words)
    assert all(any(w.startswith(f'head {h}') for w in words) for h in range(4))


def test_render_is_deterministic_and_json_matches_the_trace(runner, tmp_path):
    a = runner.invoke(cli.main, ['render', '--doc', 'ab', '--token', '1', '-o', 'a.svg'])
    b = runner.invoke(cli.main, ['render', '--doc', 'ab', '--token', '1', '-o', 'b.svg'])
    assert a.exit_code == b.exit_code == 0
    assert (tmp_path / 'a.svg').read_bytes() == (tmp_path / 'b.svg').read_bytes()
    j = runner.invoke(cli.main, ['render', '--doc', 'ab', '--param', 'layer0.attn_wq[3][5]', '-o', '-',
                                 '--format', 'json'])
    d = json.loads(j.stdout)
    assert d['kind'] == 'param'
    # exactly, as the README says: added up in the order backward added them, from 0
    total = 0
    for u in d['uses']:
        total += u['contrib']
    assert total == d['grad']
    # and that grad is the reference's
    params, _, _ = fresh_model(seed=42)
    ref = reference_with(params, string.ascii_lowercase)
    ref.loss_of('ab').backward()
    assert d['grad'] == ref.state_dict['layer0.attn_wq'][3][5].grad
    assert len(d['uses']) == 3      # 'ab' has 3 positions; the cell is used once at each


def test_render_from_saved_trace_gives_the_same_bytes(runner, tmp_path):
    runner.invoke(cli.main, ['export', '--doc', 'ab', '-o', 't.json'])
    a = runner.invoke(cli.main, ['render', '--trace', 't.json', '-o', 'a.dot'])
    b = runner.invoke(cli.main, ['render', '--doc', 'ab', '-o', 'b.dot'])
    assert a.exit_code == b.exit_code == 0
    assert (tmp_path / 'a.dot').read_bytes() == (tmp_path / 'b.dot').read_bytes()
    assert (tmp_path / 'a.dot').read_text().startswith('digraph')


@pytest.mark.parametrize('args,fragments', [
    (['--token', '9'], ['position 9 is not in this trace; positions: 0..4']),
    (['--layer', '3'], ['layer 3 is not in this trace; layers: 0..0']),
    (['--head', '4'], ['head 4 is not in this trace; heads: 0..3']),
    (['--param', 'wq[1][1]'], ["unknown parameter 'wq'; parameters: wte, wpe"]),
    (['--param', 'wte[27][0]'], ['cell [27][0] is outside wte, which is 27x16']),
    (['--node', 'abc'], ["'--node'", "node must be a node id (a whole number 0..1000000000) or 'loss', got 'abc'"]),
    (['--level', 'fine'], ["'--level'", "level 'fine' is not one of: auto, scalar, vector, block"]),
    (['--budget', '0'], ["'--budget'"]),
    (['--doc', 'a<b'], ["'--doc'", "character '<' at index 1"]),
    (['--format', 'gif'], ["'--format'"]),
    (['-o', '/nonexistent-dir/x.svg'], ["folder '/nonexistent-dir' does not exist"]),
    (['--checkpoint', 'missing.json'], ['checkpoint not found: missing.json']),
])
def test_render_bad_input(runner, args, fragments):
    one_line_error(runner.invoke(cli.main, ['render'] + args), 2, *fragments)


def test_png_without_native_graphviz_says_so(runner, tmp_path, monkeypatch):
    monkeypatch.setenv('PATH', str(tmp_path / 'empty'))  # no `dot` anywhere: WebAssembly only
    one_line_error(runner.invoke(cli.main, ['render', '--format', 'png']), 2,
                   "format 'png' needs the Graphviz `dot` program on PATH")


@native
def test_png_with_native_graphviz(runner, tmp_path):
    r = runner.invoke(cli.main, ['render', '--doc', 'ab', '-o', 'x.png'])
    assert r.exit_code == 0 and (tmp_path / 'x.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_unwritable_output_keeps_the_old_file(runner, tmp_path, monkeypatch):
    (tmp_path / 'keep.svg').write_text('old picture')

    def boom(*a, **k):
        raise OSError('disk full')
    monkeypatch.setattr(os, 'replace', boom)
    r = runner.invoke(cli.main, ['render', '--doc', 'ab', '-o', 'keep.svg'])
    assert r.exit_code != 0
    assert (tmp_path / 'keep.svg').read_text() == 'old picture'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['keep.svg']


def test_gradcheck_passes_on_the_correct_engine(runner):
    r = runner.invoke(cli.main, ['gradcheck', '--doc', 'ab', '--sample', '8'])
    assert r.exit_code == 0, r.output
    assert r.output.rstrip().endswith('gradcheck: ok')


def test_gradcheck_finds_an_injected_fault_and_draws_it(runner, tmp_path):
    r = runner.invoke(cli.main, ['gradcheck', '--doc', 'ab', '--inject', 'relu-flip', '--no-params',
                                 '--render', 'fail.svg'])
    assert r.exit_code == 1
    assert 'relu' in r.output and '\ngradcheck: FAIL\n' in r.output
    svg = (tmp_path / 'fail.svg').read_bytes()
    root = ET.fromstring(svg)
    from graphviz_export.draw.style import HIGHLIGHT
    red = [e for e in root.iter() if e.get('stroke') == HIGHLIGHT['color']]
    assert len(red) >= 2, 'failing nodes are outlined in red (one more red outline is the legend entry)'


def test_gradcheck_json_and_fault_list(runner):
    r = runner.invoke(cli.main, ['gradcheck', '--doc', 'ab', '--inject', 'exp-x2', '--no-params', '--json'])
    assert r.exit_code == 1
    d = json.loads(r.output)
    assert d['ok'] is False and d['fault']['name'] == 'exp-x2'
    assert {f['op'] for f in d['nodes']['failures']} == {'exp'}
    lst = runner.invoke(cli.main, ['gradcheck', '--list-faults'])
    assert lst.exit_code == 0 and 'relu-flip' in lst.output and 'accumulate-overwrite' in lst.output


@pytest.mark.parametrize('args,fragments', [
    (['--inject', 'nan-everywhere'], ["'--inject'", "'nan-everywhere' is not one of"]),
    (['--param', 'wxx'], ["unknown parameter"]),
    (['--all-params', '--sample', '3'], ['--all-params cannot be combined']),
])
def test_gradcheck_bad_input(runner, args, fragments):
    one_line_error(runner.invoke(cli.main, ['gradcheck', '--doc', 'ab'] + args), 2, *fragments)
