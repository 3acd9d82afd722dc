"""The README cannot rot. Its Quick start is what CI runs. Every `microgpt-graph` command
of its shell blocks runs here as written, from the folder of a fresh clone, with
$MICROGPT_DATA set as the README sets it (`train` cut to 2 steps); every `explore` of its
console blocks starts and serves; every Python block runs on its own in a fresh
interpreter, echoing what a REPL would echo. None of them may write outside out/."""

import json
import os
import re
import shlex
import string
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

import pytest
from click.testing import CliRunner

import cli
from microgpt.data import read_docs
from microgpt.recording import Trace
from microgpt.train import fresh_model
from tests.clone import clone_files, fresh_clone
from tests.conftest import SUITE_MINUTES, names_path
from tests.explorer_helpers import default_signals, opened, stopped_in_the_end
from tests.reference_figures import count_step_nodes, reference_train_output, reference_with

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / 'README.md').read_text()
SVG = '{http://www.w3.org/2000/svg}'
STEPS = 2       # README `train --steps N` commands run this many steps here


def blocks(text, lang):
    return re.findall(rf'```{lang}\n(.*?)```', text, flags=re.S)


def readme_commands(lang='sh', name='microgpt-graph'):
    """[(args, expected exit status)] of the `name` lines of the README's `lang` blocks; a line
    may end in a comment '# exit 1'."""
    out = []
    for block in blocks(README, lang):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == name:
                status = re.search(r'#.*\bexit (\d)\b', line)
                out.append((words[1:], int(status.group(1)) if status else 0))
    return out


def commands():
    return readme_commands('sh')


def test_quick_start_gets_the_source_then_two_commands_and_ci_runs_the_second():
    section = README.split('## Quick start', 1)[1].split('\n## ', 1)[0]
    assert 'a clone of this repository, or its source archive' in section
    lines = [line for line in blocks(section, 'sh')[0].splitlines() if line.strip()]
    assert len(lines) == 2
    # the first installs the package alone (its runtime dependencies) and draws, into out/
    assert lines[0] == ('python3 -m venv .venv && .venv/bin/pip install -e . && '
                        '.venv/bin/microgpt-graph render -o out/emma-token4.svg')
    # the second adds the test extras and runs every test, on every core
    ci = (ROOT / '.ci' / 'run').read_text().strip().splitlines()
    assert lines[1] == ".venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest -n auto" and lines[1] in ci
    # ... and says how long each takes; the suite's figure is the one pytest prints when it starts
    assert f'{SUITE_MINUTES} minutes' in section and ' s on a 2-core machine' in section


def test_readme_has_no_placeholders():
    """Nor a capitalised name the code does not know (FIGURES_PLAY stood in for the play figures):
    such a word must be one the package reads (an environment variable such as MICROGPT_DATA)."""
    assert 'PLACEHOLDER' not in README and 'QS_' not in README
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


# -- a fresh clone, and a folder of its own for each command ------------------------------------
@pytest.fixture(scope='session')
def clone(tmp_path_factory):
    """A fresh clone of the project (the files `git clone` gives), shared and never written to."""
    return fresh_clone(tmp_path_factory.mktemp('clone'))


@pytest.fixture(scope='session')
def names_data(tmp_path_factory):
    """What $MICROGPT_DATA names: the names data, or a three-name stand-in where there is none."""
    found = names_path()
    if found is not None:
        return found
    stand_in = tmp_path_factory.mktemp('data') / 'names.txt'
    stand_in.write_text('emma\nolivia\nava\n')
    return stand_in


def tree(folder):
    """Every path under `folder`, links not followed: what a command may not add to."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob('*'))


@pytest.fixture
def checkout(tmp_path, clone, names_data, monkeypatch):
    """The reader's shell after Quick start: in the clone's folder (its files linked in, out/ its
    own for this test), $MICROGPT_DATA set. Afterwards, nothing may have been written but in out/."""
    work = tmp_path / 'clone'
    work.mkdir()
    for entry in clone.iterdir():
        if entry.name != 'out':
            (work / entry.name).symlink_to(entry)
    (work / 'out').mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv('MICROGPT_DATA', str(names_data))
    before, clone_before = tree(work), tree(clone)
    yield work
    assert [p for p in tree(work) if not p.startswith('out')] == [p for p in before if not p.startswith('out')]
    assert tree(clone) == clone_before, 'a README command wrote into the checkout, outside out/'


def as_typed(args):
    """The arguments as the shell passes them ($MICROGPT_DATA expanded); `train --steps` cut to STEPS."""
    args = [os.path.expandvars(a) for a in args]
    if args[0] == 'train':
        args[args.index('--steps') + 1] = str(STEPS)
    return args


def producers(args):
    """The README commands that write a file `args` reads (`-o X` / `--out X`), wherever they are."""
    out = []
    for other, _ in commands():
        for flag in ('-o', '--out'):
            if flag in other and other[other.index(flag) + 1] in args and other != args:
                out.append(other)
    return out


def run(args):
    return CliRunner().invoke(cli.main, as_typed(args))


# -- what each command must have written and said ----------------------------------------------------
def check_render(out, work):
    """A render line names a file that exists and holds what the line says."""
    (m,) = WROTE.findall(out)
    path, level, nodes, edges, folded = m[0], m[1], int(m[2]), int(m[3]), int(m[4])
    f = work / path
    assert f.exists() and f.stat().st_size > 0
    if path.endswith('.svg'):
        assert svg_counts(f) == (nodes, edges)
    elif path.endswith('.json'):
        view = json.loads(f.read_text())
        assert (len(view['nodes']), len(view['edges']), view['stats']['level']) == (nodes, edges, level)
        assert view['stats']['folded_ops'] == folded <= view['stats']['ops']
    return path


def check_outcome(args, expected, r, work):
    """What each README command must have written and said, with figures from the reference
    (commands without figures of their own: every file a 'wrote X' line names exists)."""
    cmd = args[0]
    if cmd == 'render':
        path = check_render(r.output, work)
        if '-o' in args:
            assert path == args[args.index('-o') + 1]
    elif cmd == 'inspect' and '--why' in args:    # one parameter cell's answer (the why branch's --why)
        cell = args[args.index('--why') + 1]
        name, row, col = re.fullmatch(r'([\w.]+)\[(\d+)\]\[(\d+)\]', cell).groups()
        ref, _, _ = reference_step(args[args.index('--doc') + 1] if '--doc' in args else 'emma')
        v = ref.state_dict[name][int(row)][int(col)]
        lines = r.stdout.splitlines()
        assert re.fullmatch(rf"{re.escape(cell)} \(node \d+\): param, data {v.data:.6g}, grad {v.grad:.6g}", lines[0])
        assert any(line.endswith(f"= grad {v.grad:.6g} bit for bit") for line in lines), r.output
    elif cmd == 'inspect' and '--trace' not in args:
        doc = args[args.index('--doc') + 1]
        _, loss, nodes = reference_step(doc)
        assert f"document '{doc}': {nodes} nodes" in r.output and f"loss {loss.data:.6f}" in r.output
    elif cmd == 'inspect':          # a trace recorded from a script: named by the script, no empty table
        script = Trace.load(work / args[args.index('--trace') + 1]).meta['recorded_from']['script']
        assert r.output.startswith(f"script '{script}', backward() call 1: ") and 'None' not in r.output
        assert 'pos  input' not in r.output and "a position's loss" not in r.output
    elif cmd == 'export':
        doc, path = args[args.index('--doc') + 1], args[args.index('-o') + 1]
        trace = Trace.load(work / path)      # JSON or binary, told apart by content
        _, loss, nodes = reference_step(doc)
        assert (trace.meta['doc'], len(trace), trace.loss) == (doc, nodes, loss.data)
        fmt = 'binary' if path.endswith('.mgtrace') else 'json'
        size = (work / path).stat().st_size     # the file's, whichever way it was written (JSON streams)
        assert f"wrote {path} ({nodes} nodes, {fmt}, {size / 1e6:.1f} MB)" in r.output
    elif cmd == 'gradcheck':
        if '--list-faults' in args:
            assert all(name in r.output for name in FAULT_NAMES)
        elif '--inject' in args:
            op = args[args.index('--inject') + 1].split('-')[0]
            assert '\ngradcheck: FAIL\n' in r.output and f' {op} ' in r.output
        elif '--trace' in args:     # the README quotes what it says about the learner's script
            quoted = re.search(r'The node check names the line \(.*?\):\s+``(.*?)``', README, re.S).group(1)
            # the script's micrograd keeps children in a set: which tanh node comes first in its backward
            # order (its id, its numbers) depends on memory addresses; the lines and the op do not
            parts = re.split(r'((?<=node )\d+|(?<=found )[\d.]+|(?<=expected )[\d.]+)', ' '.join(quoted.split()))
            pattern = ''.join(r'[\d.]+' if k % 2 else re.escape(part) for k, part in enumerate(parts))
            assert expected == 1 and re.search(f'^  {pattern}$', r.output, re.M), (pattern, r.output)
        elif expected == 1:
            assert 'FAIL' in r.output
        else:
            assert '\ngradcheck: ok\n' in r.output and 'FAIL' not in r.output
        if '--render' in args:
            path = args[args.index('--render') + 1]
            assert svg_counts(work / path)[0] > 0 and f"wrote {path}" in r.output
    elif cmd == 'train' and '--log-every' in args and '--samples' in args:
        docs = read_docs(os.environ['MICROGPT_DATA'])          # where the README points it
        want, _ = reference_train_output(docs, STEPS, log_every=int(args[args.index('--log-every') + 1]),
                                         samples=int(args[args.index('--samples') + 1]))
        assert [line for line in r.output.splitlines() if line.startswith(('step ', 'sample '))] == want
    for written in re.findall(r'^wrote (?:checkpoint )?(\S+?)(?::|;|\s|$)', r.output, flags=re.M):
        assert written.startswith('out/'), f"{args}: wrote {written}, outside out/"
        assert (work / written).exists(), f"{args}: says it wrote {written}"


FAULT_NAMES = ('exp-x2', 'relu-flip', 'mul-swap', 'log-sign', 'pow-off-by-one', 'add-drop', 'accumulate-overwrite')


@pytest.mark.parametrize('args,expected', commands(), ids=[' '.join(a)[:60] for a, _ in commands()])
def test_readme_command_runs(args, expected, checkout):
    """Each in a clone of its own; a command that reads a file another README line writes
    gets that one run first."""
    for other in producers(args):
        assert run(other).exit_code == 0, other
    r = run(args)
    assert r.exit_code == expected, r.output
    assert 'Traceback' not in r.output
    check_outcome(as_typed(args), expected, r, checkout)


def test_readme_render_output_line_is_real(checkout):
    """The line as the README shows it (`render` without -o); which renderer drew the picture
    depends on the machine (native `dot` or the WebAssembly Graphviz), so that part may differ."""
    line = re.search(r"`(wrote emma-token4\.svg: [^`]*)`", README).group(1)
    r = CliRunner().invoke(cli.main, ['render', '-o', 'out/emma-token4.svg'])
    drawn = r'; drawn by (native Graphviz \(dot\)|WebAssembly Graphviz)$'
    assert re.search(drawn, r.stdout.strip())       # the line on stdout (a reused step is noted on stderr)
    assert re.sub(drawn, '', r.stdout.strip()) == 'wrote out/' + re.sub(drawn, '', line)[len('wrote '):]


# -- the explorer commands: each starts, serves its page, stops -----------------------------------------
EXPLORE = readme_commands('console')


def test_the_readme_shows_explore_commands():
    assert len(EXPLORE) >= 5 and all(args[0] == 'explore' for args, _ in EXPLORE)


@pytest.mark.parametrize('args', [a for a, _ in EXPLORE], ids=[' '.join(a)[:60] for a, _ in EXPLORE])
def test_readme_explore_command_serves(args, checkout):
    """As written but for --no-browser, and port 0 for a fixed --port (tests run side by side);
    the page's info answers, and Ctrl-C stops it (in a `finally`, whatever happens)."""
    for other in producers(args):
        assert run(other).exit_code == 0, other
    args = as_typed(args)
    if '--port' in args:
        args[args.index('--port') + 1] = '0'
    args += ['--no-browser'] * ('--no-browser' not in args)
    # the clone is shared by this module's tests, which check that nothing is written into it: its
    # bytecode goes to the run's own folder (conftest: PYTHONPYCACHEPREFIX), compiled once for them all
    env = dict(os.environ, PYTHONPATH=str(checkout), PYTHONUNBUFFERED='1')
    with stopped_in_the_end(subprocess.Popen([sys.executable, 'cli.py', *args], cwd=checkout, env=env, text=True,
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                             start_new_session=True, preexec_fn=default_signals)) as p:
        said = [p.stdout.readline() for _ in range(1)]
        while not said[-1].startswith('microgpt-graph explorer: ') and said[-1] and len(said) < 100:
            said.append(p.stdout.readline())     # what a recorded script prints comes first
        line = said[-1]
        assert line.startswith('microgpt-graph explorer: http://127.0.0.1:'), ''.join(said)
        url = urlsplit(line.split()[2])
        opened(line.split()[2])         # the step is recorded (or loaded) in the background first
        req = Request(f'{url.scheme}://{url.netloc}/api/info', headers={'X-Explorer-Token': url.fragment[6:]})
        with urlopen(req, timeout=60) as answer:
            info = json.loads(answer.read())
        assert answer.status == 200 and info
    assert p.returncode == 0 and 'Traceback' not in p.err, p.err


# -- the Python blocks, each on its own ----------------------------------------------------------------
REPL = '''
import ast, sys
namespace = {'__name__': '__main__'}
for node in ast.parse(open(sys.argv[1], encoding='utf-8').read()).body:
    if isinstance(node, ast.Expr):      # echoed, as a REPL or a notebook cell echoes it
        exec(compile(ast.Interactive([node]), '<README>', 'single'), namespace)
    else:
        exec(compile(ast.Module([node], []), '<README>', 'exec'), namespace)
'''
PYTHON = blocks(README, 'python')


def test_the_readme_has_python_blocks():
    assert len(PYTHON) >= 2


@pytest.mark.parametrize('k', range(len(PYTHON)))
def test_readme_python_block_runs_on_its_own(k, tmp_path, names_data):
    """In a fresh interpreter, in an empty folder but for out/, $MICROGPT_DATA set as the README
    sets it: it runs, what it echoes is short (a call that writes a file says where, it does not
    return the file), and it writes only in out/."""
    block = tmp_path / 'block.py'
    block.write_text(PYTHON[k])
    work = tmp_path / 'work'
    (work / 'out').mkdir(parents=True)
    r = subprocess.run([sys.executable, '-c', REPL, str(block)], cwd=work, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT), MICROGPT_DATA=str(names_data)), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert len(r.stdout) < 5000, f'the block echoes {len(r.stdout)} characters: {r.stdout[:300]}...'
    assert [p.name for p in work.iterdir()] == ['out']


def test_the_api_block_echoes_the_paths_it_writes(tmp_path):
    """The ten-line API block: render_view(..., path=) and to_json(path) echo their paths."""
    (api,) = [b for b in PYTHON if 'to_json(' in b]
    (tmp_path / 'out').mkdir()
    block = tmp_path / 'block.py'
    block.write_text(api)
    r = subprocess.run([sys.executable, '-c', REPL, str(block)], cwd=tmp_path, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "'out/emma-token3.svg'\n'out/emma.json'\n" in r.stdout
    assert {p.name for p in (tmp_path / 'out').iterdir()} == {'emma-token3.svg', 'emma.json'}


def test_the_clone_is_what_git_tracks():
    """The clone the commands run in holds the tracked tree (not this checkout's leftovers)."""
    files = clone_files()
    assert 'README.md' in files and 'tests/conftest.py' in files and 'out/.gitignore' in files
    assert not any(f.startswith(('.venv/', 'out/examples/')) or '__pycache__' in f for f in files)
