"""The README cannot rot: its Quick start is what CI runs, and every
`microgpt-graph` command in its shell blocks runs here (train with 2 steps)."""

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

import cli
from tests.conftest import names_path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / 'README.md').read_text()


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
    assert 'PLACEHOLDER' not in README


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
    r = CliRunner().invoke(cli.main, localise(args, tmp_path))
    assert r.exit_code == expected, r.output
    assert 'Traceback' not in r.output


def test_readme_render_output_line_is_real(tmp_path, monkeypatch):
    """The line as the README shows it; which renderer drew the picture depends on
    the machine (native `dot` or the WebAssembly Graphviz), so that part may differ."""
    monkeypatch.chdir(tmp_path)
    line = re.search(r"`(wrote emma-token4\.svg: [^`]*)`", README).group(1)
    r = CliRunner().invoke(cli.main, ['render'])
    drawn = r'; drawn by (native Graphviz \(dot\)|WebAssembly Graphviz)$'
    assert re.search(drawn, r.output.strip())
    assert re.sub(drawn, '', r.output.strip()) == re.sub(drawn, '', line)
