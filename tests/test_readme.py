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
    out = []
    for block in shell_blocks(README):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == 'microgpt-graph':
                out.append(words[1:])
    return out


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


@pytest.mark.parametrize('args', commands(), ids=[' '.join(a)[:60] for a in commands()])
def test_readme_command_runs(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if args[0] == 'train':
        args = [a for a in args]
        i = args.index('--steps')
        args[i + 1] = '2'
        data = names_path()
        if data is None:
            (tmp_path / 'names.txt').write_text('emma\nolivia\nava\n')
            data = tmp_path / 'names.txt'
        args = [str(data) if a.endswith('names.txt') else a for a in args]
    r = CliRunner().invoke(cli.main, args)
    expected = 1 if args[0] == 'gradcheck' and '--inject' in args else 0
    assert r.exit_code == expected, r.output
    assert 'Traceback' not in r.output


def test_readme_render_output_line_is_real(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = re.search(r"`(wrote emma-token4\.svg: [^`]*)`", README).group(1)
    r = CliRunner().invoke(cli.main, ['render'])
    assert r.output.strip() == line
