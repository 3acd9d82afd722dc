"""The README cannot rot: its Quick start is what CI runs, and every
`microgpt-graph` command in its shell blocks runs here (train with 2 steps)."""

import json
import re
import shlex
import string
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

import cli
from microgpt.recording import Trace
from microgpt.train import fresh_model
from tests.conftest import names_path
from tests.reference_figures import count_step_nodes, reference_train_output, reference_with

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / 'README.md').read_text()
SVG = '{http://www.w3.org/2000/svg}'


def shell_blocks(text):
    return re.findall(r'```sh\n(.*?)```', text, flags=re.S)


def commands():
    """[(args, expected exit status)]: a line may end in a comment '# exit 1'."""
    out = []
    for block in shell_blocks(README):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == 'microgpt-graph':
                status = re.search(r'#.*\bexit (\d)\b', line)
                out.append((words[1:], int(status.group(1)) if status else 0))
    return out


def localise(args, tmp_path):
    """Paths as a reader runs them from the repository: examples/... from the checkout,
    names.txt from the names data (or a tiny stand-in), train's --steps cut to 2."""
    args = [str(ROOT / a) if a.startswith('examples/') else a for a in args]
    if any(a.endswith('names.txt') for a in args):
        data = names_path()
        if data is None:
            (tmp_path / 'names.txt').write_text('emma\nolivia\nava\n')
            data = tmp_path / 'names.txt'
        args = [str(data) if a.endswith('names.txt') else a for a in args]
    if args[0] == 'train':
        args[args.index('--steps') + 1] = '2'
    return args


def test_quick_start_has_two_commands_and_ci_runs_the_second():
    section = README.split('## Quick start', 1)[1]
    block = shell_blocks(section)[0]
    lines = [l for l in block.splitlines() if l.strip()]
    assert len(lines) == 2
    assert lines[0].endswith('.venv/bin/microgpt-graph render') and "pip install -e '.[test]'" in lines[0]
    ci = (ROOT / '.ci' / 'run').read_text().strip().splitlines()
    assert ci[-1] == lines[1] == '.venv/bin/python -m pytest'


def test_readme_has_no_placeholders():
    """Nor a capitalised name the code does not know (FIGURES_PLAY stood in for the play figures):
    such a word must be one the package reads (an environment variable such as MICROGPT_DATA)."""
    assert 'PLACEHOLDER' not in README
    code = ''.join(f.read_text() for d in ('microgpt', 'graphviz_export', 'microgpt_graph')
                   for f in sorted((ROOT / d).rglob('*.py')))
    caps = set(re.findall(r'\b[A-Z]{2,}(?:_[A-Z]+)+\b', README))
    assert 'MICROGPT_DATA' in caps and {w for w in caps if w not in code} == set()


WROTE = re.compile(r"^wrote (\S+): .*; level (\w+), (\d+) nodes shown, (\d+) edges, (\d+) ops folded into summaries"
                   r"(?:; drawn by [^\n]*)?$", re.M)


def svg_counts(path):
    """(nodes, edges) drawn in an SVG: the legend's own nodes left out, a heat-map's rows
    ('m0_d3', 'm0_g3') counted as the one matrix node they draw."""
    root = ET.parse(path).getroot()
    gs = list(root.iter(SVG + 'g'))
    names = {g.find(SVG + 'title').text.split('_')[0] for g in gs if g.get('class') == 'node'}
    return len(names - {'legend'}), sum(g.get('class') == 'edge' for g in gs)


def reference_step(doc):
    """The reference's loss Value of `doc` (backpropagated) on the default fresh model, and
    the number of nodes a recorded step of it has (parameters + Values the reference makes)."""
    params, _, _ = fresh_model(seed=42)
    ref = reference_with(params, string.ascii_lowercase)
    loss = ref.loss_of(doc)
    loss.backward()
    n_params, made = count_step_nodes(string.ascii_lowercase, doc)
    return ref, loss, n_params + made


def check_render(out, tmp_path):
    """A render line names a file that exists and holds what the line says."""
    (m,) = WROTE.findall(out)
    path, level, nodes, edges, folded = m[0], m[1], int(m[2]), int(m[3]), int(m[4])
    f = tmp_path / path
    assert f.exists() and f.stat().st_size > 0
    if path.endswith('.svg'):
        assert svg_counts(f) == (nodes, edges)
    elif path.endswith('.json'):
        view = json.loads(f.read_text())
        assert (len(view['nodes']), len(view['edges']), view['stats']['level']) == (nodes, edges, level)
        assert view['stats']['folded_ops'] == folded <= view['stats']['ops']
    return path


def check_outcome(args, expected, r, tmp_path):
    """What each README command must have written and said, with figures from the reference
    (commands without figures of their own: every file a 'wrote X' line names exists)."""
    cmd = args[0]
    if cmd == 'render':
        path = check_render(r.output, tmp_path)
        if '-o' in args:
            assert path == args[args.index('-o') + 1]
    elif cmd == 'inspect' and '--trace' not in args:
        doc = args[args.index('--doc') + 1]
        _, loss, nodes = reference_step(doc)
        assert f"document '{doc}': {nodes} nodes" in r.output and f"loss {loss.data:.6f}" in r.output
    elif cmd == 'export':
        doc, path = args[args.index('--doc') + 1], args[args.index('-o') + 1]
        trace = Trace.load(tmp_path / path)      # JSON or binary, told apart by content
        _, loss, nodes = reference_step(doc)
        assert (trace.meta['doc'], len(trace), trace.loss) == (doc, nodes, loss.data)
        fmt = 'binary' if path.endswith('.mgtrace') else 'json'
        assert f"wrote {path} ({nodes} nodes, {fmt}, " in r.output
    elif cmd == 'gradcheck':
        if '--list-faults' in args:
            assert all(name in r.output for name in FAULT_NAMES)
        elif '--inject' in args:
            op = args[args.index('--inject') + 1].split('-')[0]
            assert '\ngradcheck: FAIL\n' in r.output and f' {op} ' in r.output
        elif expected == 1:
            assert 'FAIL' in r.output
        else:
            assert '\ngradcheck: ok\n' in r.output and 'FAIL' not in r.output
        if '--render' in args:
            path = args[args.index('--render') + 1]
            assert svg_counts(tmp_path / path)[0] > 0 and f"wrote {path}" in r.output
    elif cmd == 'train' and '--log-every' in args and '--samples' in args:
        docs = [line.strip() for line in Path(args[1]).read_text().splitlines() if line.strip()]
        steps = int(args[args.index('--steps') + 1])
        n_samples = int(args[args.index('--samples') + 1])
        want, _ = reference_train_output(docs, steps, log_every=int(args[args.index('--log-every') + 1]),
                                         samples=n_samples)
        assert [l for l in r.output.splitlines() if l.startswith(('step ', 'sample '))] == want
    for written in re.findall(r'^wrote (?:checkpoint )?(\S+?)(?::|;|\s|$)', r.output, flags=re.M):
        assert (tmp_path / written).exists() or Path(written).exists(), f"{args}: says it wrote {written}"


FAULT_NAMES = ('exp-x2', 'relu-flip', 'mul-swap', 'log-sign', 'pow-off-by-one', 'add-drop', 'accumulate-overwrite')


@pytest.mark.parametrize('args,expected', commands(), ids=[' '.join(a)[:60] for a, _ in commands()])
def test_readme_command_runs(args, expected, tmp_path, monkeypatch):
    """Run in one folder per test, in README order within a block's files: a command
    that reads a file an earlier README line writes gets it made first."""
    monkeypatch.chdir(tmp_path)
    for earlier, _ in commands():
        if earlier == args:
            break
        if earlier[0] in ('record', 'export') and '-o' in earlier:
            made = earlier[earlier.index('-o') + 1]
            if made in args:
                assert CliRunner().invoke(cli.main, localise(earlier, tmp_path)).exit_code == 0
    args = localise(args, tmp_path)
    r = CliRunner().invoke(cli.main, args)
    assert r.exit_code == expected, r.output
    assert 'Traceback' not in r.output
    check_outcome(args, expected, r, tmp_path)


def test_readme_render_output_line_is_real(tmp_path, monkeypatch):
    """The line as the README shows it; which renderer drew the picture depends on
    the machine (native `dot` or the WebAssembly Graphviz), so that part may differ."""
    monkeypatch.chdir(tmp_path)
    line = re.search(r"`(wrote emma-token4\.svg: [^`]*)`", README).group(1)
    r = CliRunner().invoke(cli.main, ['render'])
    drawn = r'; drawn by (native Graphviz \(dot\)|WebAssembly Graphviz)$'
    assert re.search(drawn, r.output.strip())
    assert re.sub(drawn, '', r.output.strip()) == re.sub(drawn, '', line)
