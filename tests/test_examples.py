"""Each script in examples/ runs, writes well-formed SVGs and says what it should."""

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / 'examples'
SCRIPTS = sorted(EXAMPLES.glob('[0-9]*.py'))


def run(script, out_dir, *extra):
    r = subprocess.run([sys.executable, str(script), str(out_dir), *extra], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_there_are_five_examples_and_each_has_its_committed_svg():
    assert [s.name[:3] for s in SCRIPTS] == ['01_', '02_', '03_', '04_', '05_']
    for s in SCRIPTS:
        assert list(EXAMPLES.glob(s.name[:3] + '*.svg')), f"{s.name} has no SVG in examples/"


@pytest.mark.parametrize('script', SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_example_runs_and_writes_svg(script, tmp_path):
    extra = ('3',) if script.name.startswith('05_') else ()   # 3 training steps keep the smoke test quick
    out = run(script, tmp_path, *extra)
    svgs = sorted(tmp_path.glob('*.svg'))
    assert svgs and all(p.stat().st_size > 1000 for p in svgs)
    for p in svgs:
        ET.parse(p)  # well-formed
    if script.name.startswith('04_'):
        assert out.rstrip().endswith(': True')          # the contributions sum to the grad exactly
        assert out.count('use at ') == 5
    if script.name.startswith('03_'):
        assert '2 uses' in out
    if script.name.startswith('05_'):
        assert [p.name for p in svgs] == ['05_layer_after_training.svg', '05_layer_before_training.svg']
