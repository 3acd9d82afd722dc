import random
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
