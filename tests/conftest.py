import os
import random
import shutil
from pathlib import Path

import pytest

from microgpt.data import Tokenizer, data_path_from_env, names_cache_path
from microgpt.model import GPTConfig, init_params

ROOT = Path(__file__).resolve().parent.parent

AZ = [chr(c) for c in range(ord('a'), ord('z') + 1)]


def names_path():
    """The reference names data: $MICROGPT_DATA (alias $MICROGPT_NAMES), else
    ../shared/data/names.txt, else the copy `microgpt-graph train` downloaded
    into the user cache; None when there is none (the tests never download)."""
    named = data_path_from_env()
    candidates = [named[0]] if named else [ROOT.parent / 'shared' / 'data' / 'names.txt', names_cache_path()]
    return next((p for p in candidates if p.is_file()), None)


needs_names = pytest.mark.skipif(
    names_path() is None,
    reason="names data not found: set MICROGPT_DATA=/path/to/names.txt, or run `microgpt-graph train` once "
           "(it downloads makemore's names.txt into the user cache)")


# -- the native renderer: decided once, when the tests are collected -------------------------
DOT = shutil.which('dot')   # the one lookup; every native-render test runs with exactly this program
IN_CI = os.environ.get('CI', '').strip().lower() in ('1', 'true', 'yes')
NO_DOT = 'Graphviz `dot` is not on PATH'
native = pytest.mark.native  # a test that renders with `dot`; or parametrize it with renderer='native'


def pytest_configure(config):
    config.addinivalue_line('markers', 'native: needs the Graphviz `dot` program (skipped without it, '
                                       'failed without it when CI is set: .ci/run installs it)')


def _wants_native(item):
    callspec = getattr(item, 'callspec', None)
    return item.get_closest_marker('native') is not None or (
        callspec is not None and callspec.params.get('renderer') == 'native')


def pytest_collection_modifyitems(config, items):
    """Skip the native-render tests here, at collection, when `dot` was not found; with CI
    set they are kept, and fail (see _native_dot_pinned) instead of silently skipping."""
    if DOT is not None or IN_CI:
        return
    for item in items:
        if _wants_native(item):
            item.add_marker(pytest.mark.skip(reason=f'{NO_DOT} (looked up once, at collection)'))


@pytest.fixture(autouse=True)
def _native_dot_pinned(request, monkeypatch):
    """A native-render test runs with the `dot` found at collection, first on PATH, so
    the library's own lookup finds that same program (no second decision mid-run)."""
    if not _wants_native(request.node):
        return
    if DOT is None:
        pytest.fail(f'{NO_DOT}, and CI is set: .ci/run installs Graphviz, so native-render tests must run')
    monkeypatch.setenv('PATH', os.path.dirname(DOT) + os.pathsep + os.environ.get('PATH', ''))


@pytest.fixture
def az_model():
    """(params, config, tokenizer): the default config over a-z, seeded Random(42)."""
    tok = Tokenizer(AZ)
    config = GPTConfig(vocab_size=tok.vocab_size)
    return init_params(config, random.Random(42)), config, tok


@pytest.fixture(scope='session')
def recorded_christopher():
    """A recorded step of 'christopher' (12 positions) on the a-z model; shared, read-only."""
    from microgpt.recording.step import record_step
    tok = Tokenizer(AZ)
    config = GPTConfig(vocab_size=tok.vocab_size)
    params = init_params(config, random.Random(42))
    return record_step(params, config, tok, 'christopher')


@pytest.fixture(scope='module')
def tiny():
    """(params, config, tokenizer) of tests/tiny_model.py: n_embd 8, 2 heads, block 8;
    one per test module (tests that change parameters make their own)."""
    from tests.tiny_model import tiny_model
    return tiny_model()
