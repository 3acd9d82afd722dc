"""The native-render tests decide once, at collection (tests/conftest.py): without `dot`
they are skipped, or fail when CI is set (.ci/run installs Graphviz, so a skip there
would hide a broken native path); with it they run with the very `dot` found then."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DOT, native

ROOT = Path(__file__).resolve().parent.parent
NATIVE_TEST = 'tests/test_render.py::test_native_png_and_auto_prefers_native'


def run_pytest(tmp_path, ci):
    env = {k: v for k, v in os.environ.items() if k != 'CI'}
    env['PATH'] = str(tmp_path)           # no `dot` anywhere
    if ci:
        env['CI'] = 'true'
    return subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', NATIVE_TEST,
                           'tests/test_export_escape.py', '-k', 'native', '-rs'],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_without_dot_native_tests_are_skipped_at_collection(tmp_path):
    r = run_pytest(tmp_path, ci=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert '2 skipped' in r.stdout and 'looked up once, at collection' in r.stdout


def test_without_dot_native_tests_fail_in_ci(tmp_path):
    r = run_pytest(tmp_path, ci=True)
    assert r.returncode == 1, r.stdout + r.stderr
    assert '2 errors' in r.stdout or '2 error' in r.stdout
    assert 'CI is set: .ci/run installs Graphviz' in r.stdout


@native
def test_a_native_test_runs_with_the_dot_found_at_collection():
    assert DOT is not None
    import shutil
    assert shutil.which('dot') == DOT
    assert os.environ['PATH'].split(os.pathsep)[0] == os.path.dirname(DOT)


@pytest.mark.parametrize('renderer', ['native'])
def test_a_renderer_native_parameter_is_pinned_too(renderer):
    assert os.environ['PATH'].split(os.pathsep)[0] == os.path.dirname(DOT)
