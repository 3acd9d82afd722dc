"""Each script in examples/ runs, writes to its output folder (never over tracked files),
and the committed pictures are what the code draws today (DOT compared with a fresh build)."""

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / 'examples'
SCRIPTS = sorted(EXAMPLES.glob('[0-9]*.py'))
sys.path.insert(0, str(EXAMPLES))  # the example scripts themselves (the project is installed)
import regenerate  # noqa: E402

from tests.conftest import names_path, needs_names  # noqa: E402
from tests.explorer_helpers import read_to_the_end  # noqa: E402
from tests.svg_read import read_svg  # noqa: E402


def run(script, *args, env=None):
    return subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env)


def test_there_are_five_examples_and_each_has_its_committed_svg_and_dot():
    assert [s.name[:3] for s in SCRIPTS] == ['01_', '02_', '03_', '04_', '05_']
    for s in SCRIPTS:
        svgs = sorted(EXAMPLES.glob(s.name[:3] + '*.svg'))
        assert svgs, f"{s.name} has no SVG in examples/"
        for svg in svgs:
            assert svg.with_suffix('.dot').is_file(), svg


@pytest.mark.parametrize('script', SCRIPTS[:4], ids=[s.stem for s in SCRIPTS[:4]])
def test_committed_picture_is_a_fresh_render(script):
    """The committed DOT equals the DOT the example builds now (bytes of the SVG differ
    between renderers; the DOT does not), and the committed SVG was drawn from it."""
    for name, view in regenerate.example_views(script):
        committed = (EXAMPLES / name).with_suffix('.dot').read_text(encoding='utf-8')
        assert view.source == committed, f"{name} is stale: run python examples/regenerate.py"
        svg = ET.parse(EXAMPLES / name).getroot()
        title = next(t for t in svg.iter('{http://www.w3.org/2000/svg}text'))
        assert title.text.split(':')[0] in committed


@pytest.mark.slow
@needs_names
def test_committed_before_after_picture_is_a_fresh_render_of_the_300_step_run():
    """Example 05 trains the reference run 300 steps (about a minute): its picture of differences
    says loss 3.4955 -> 2.6158 (issue 16's figure for 300 steps) and every grad norm it measured."""
    pairs, (before, after) = regenerate.load(SCRIPTS[4]).views()
    assert (round(before.loss, 4), round(after.loss, 4)) == (3.4955, 2.6158)
    [(name, view)] = pairs
    committed = (EXAMPLES / name).with_suffix('.dot').read_text(encoding='utf-8')
    assert view.source == committed, f"{name} is stale: run python examples/regenerate.py"
    drawn = read_svg((EXAMPLES / name).read_bytes())
    notes = ' '.join(drawn['nodes']['notes']['texts'])
    assert 'loss 3.4955 -> 2.6158' in notes and '(\u0394 loss -0.879644)' in notes
    assert 'layer0.attn_wq \u2016grad\u2016 0.004448 -> 0.05415 (grew)' in ' '.join(notes.split())
    assert any(t.startswith('\u0394grad ') for n in drawn['nodes'].values() for t in n['texts'])


@pytest.mark.parametrize('script', SCRIPTS[:4], ids=[s.stem for s in SCRIPTS[:4]])
def test_example_runs_and_writes_into_its_output_folder(script, tmp_path):
    r = run(script, tmp_path)
    assert r.returncode == 0, r.stderr
    svgs = sorted(tmp_path.glob('*.svg'))
    assert [p.name for p in svgs] == [p.name for p in EXAMPLES.glob(script.name[:3] + '*.svg')]
    for p in svgs:
        ET.parse(p)
    if script.name.startswith('04_'):
        assert r.stdout.rstrip().endswith(': True')          # the contributions sum to the grad exactly
        assert r.stdout.count('use at ') == 5
    if script.name.startswith('03_'):
        assert '2 uses' in r.stdout


def test_without_an_output_folder_examples_write_to_out_examples_not_examples(tmp_path):
    before = {p: p.stat().st_mtime_ns for p in EXAMPLES.glob('*.svg')}
    r = run(SCRIPTS[0])
    assert r.returncode == 0, r.stderr
    assert (EXAMPLES.parent / 'out' / 'examples' / '01_token_forward_block.svg').is_file()
    assert {p: p.stat().st_mtime_ns for p in EXAMPLES.glob('*.svg')} == before


def test_training_example_refuses_without_the_names_data(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ('MICROGPT_NAMES', 'MICROGPT_DATA')}
    env['MICROGPT_DATA'] = str(tmp_path / 'missing' / 'names.txt')
    r = run(SCRIPTS[4], tmp_path, 3, env=env)
    assert r.returncode == 2
    assert r.stderr.startswith('error: this example needs the names data') and 'MICROGPT_DATA=' in r.stderr
    assert str(tmp_path / 'missing' / 'names.txt') in r.stderr
    assert not list(tmp_path.glob('*.svg'))


@needs_names
def test_training_example_measures_before_and_after(tmp_path):
    env = dict(os.environ, MICROGPT_DATA=str(names_path()))
    r = run(SCRIPTS[4], tmp_path, 3, env=env)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.glob('*.svg')) == ['05_layer_before_after_training.svg']
    lines = r.stdout.splitlines()
    assert lines[0].startswith("loss of 'emma': before 3.4955, after 3 steps ")
    norms = [line for line in lines if ' \u2016grad\u2016 ' in line and ('(grew)' in line or '(shrank)' in line)]
    assert len(norms) == 9
    drawn = read_svg((tmp_path / '05_layer_before_after_training.svg').read_bytes())
    notes = [' '.join(t.split()) for t in drawn['nodes']['notes']['texts']]
    for line in norms:      # the numbers printed are the numbers written on the picture
        assert ' '.join(line.split()) in notes, (line, notes)


@needs_names
def test_training_example_shows_a_progress_bar_only_at_a_terminal(tmp_path):
    """Example 05 trains for about a minute: at a terminal it draws click's bar on
    stderr, step by step; piped, it stays silent (the test above: no bar text)."""
    import pty
    env = dict(os.environ, MICROGPT_DATA=str(names_path()), COLUMNS='100')
    master, slave = pty.openpty()
    try:
        r = subprocess.run([sys.executable, str(SCRIPTS[4]), str(tmp_path), '3'], stdout=subprocess.PIPE,
                           stderr=slave, env=env, timeout=300)
        os.close(slave)
        seen = read_to_the_end(master)
    finally:
        os.close(master)
    assert r.returncode == 0
    text = seen.decode('utf-8', 'replace')
    assert 'training' in text and '3/3' in text, text
    piped = run(SCRIPTS[4], tmp_path / 'piped', 3, env=env)
    assert piped.returncode == 0 and 'training' not in piped.stderr and '3/3' not in piped.stderr
