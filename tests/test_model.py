"""The model and training loop reproduce the reference algorithm float for float."""

import hashlib
import json
import random
import re
import string

import pytest

from microgpt.data import Tokenizer, read_docs
from microgpt.model import GPTConfig, doc_loss, flat_params, init_params, param_shapes
from microgpt.sample import format_sample, sample
from microgpt.train import format_step, start_run, train, train_step
from tests.conftest import names_path, needs_names
from tests.reference_figures import REFERENCE_RUN, count_step_nodes
from tests.reference_impl import make_reference

TINY_DOCS = ['anna', 'bob', 'cecilia', 'dmitri', 'eve', 'frank', 'gina', 'hal', 'ida', 'jo']


def test_default_config_has_4192_parameters_in_reference_order():
    config = GPTConfig()
    shapes = param_shapes(config)
    assert list(shapes) == ['wte', 'wpe', 'lm_head', 'layer0.attn_wq', 'layer0.attn_wk',
                            'layer0.attn_wv', 'layer0.attn_wo', 'layer0.mlp_fc1', 'layer0.mlp_fc2']
    assert shapes['layer0.mlp_fc1'] == (64, 16) and shapes['layer0.mlp_fc2'] == (16, 64)
    assert sum(r * c for r, c in shapes.values()) == 4192
    params = init_params(config, random.Random(42))
    assert len(flat_params(params)) == 4192
    # first draw of the stream goes to wte[0][0]
    assert params['wte'][0][0].data == random.Random(42).gauss(0, 0.08)


@pytest.mark.parametrize('bad,msg', [
    (dict(n_embd=10, n_head=4), "n_embd (10) must be divisible by n_head (4)"),
    (dict(n_layer=0), "n_layer must be a positive integer, got 0"),
    (dict(vocab_size=1), "vocab_size must be at least 2"),
])
def test_config_rejects_bad_sizes(bad, msg):
    with pytest.raises(ValueError, match=msg.replace('(', r'\(').replace(')', r'\)')):
        GPTConfig(**bad)


def test_tiny_dataset_training_matches_reference_bit_for_bit(tmp_path):
    path = tmp_path / 'tiny.txt'
    path.write_text('\n'.join(TINY_DOCS) + '\n\n  \n')  # blank lines are not documents
    docs = read_docs(path)
    assert docs == TINY_DOCS
    run = start_run(docs, seed=3)
    ref = make_reference(docs, seed=3)
    assert run.docs == ref.docs and run.tokenizer.chars == ref.uchars
    told = []                                       # on_step: each step, its count and its loss, as taken
    ours = train(run, 15, on_step=lambda *a: told.append(a))
    theirs = [ref.step(k, 15) for k in range(15)]
    assert ours == theirs                           # every float, not just 4 decimals
    assert told == [(k, 15, theirs[k]) for k in range(15)]
    assert [p.data for p in flat_params(run.params)] == [p.data for p in ref.params]
    # sampling continues the same random stream
    assert [sample(run.params, run.config, run.tokenizer, run.rng) for _ in range(5)] == \
           [ref.sample() for _ in range(5)]
    assert ours[-1] < ours[0]


@needs_names
def test_names_data_seed_42_first_five_losses_match_the_reference():
    docs = read_docs(names_path())
    lines = names_path().read_text().splitlines()
    assert len(docs) == sum(1 for line in lines if line.strip()) == 32033
    assert docs == [line.strip() for line in lines if line.strip()]
    run = start_run(docs, seed=42)
    assert run.config.vocab_size == 27
    lines = [format_step(k, 1000, train_step(run, k, 1000)) for k in range(5)]
    assert lines == ['step    1 / 1000 | loss 3.3660', 'step    2 / 1000 | loss 3.4243',
                     'step    3 / 1000 | loss 3.1778', 'step    4 / 1000 | loss 3.0664',
                     'step    5 / 1000 | loss 3.2209']


@pytest.mark.parametrize('doc,sizes', [('emma', {}), ('christopher', {}), ('ab', dict(n_layer=2, n_embd=8, n_head=2)),
                                       ('abcdefghijklmnopqrstu', dict(block_size=8))])
def test_a_recorded_step_has_as_many_nodes_as_the_reference_makes_values(doc, sizes):
    """Node count of a trace = parameters + every Value the reference's forward and loss
    create (constants included), counted by instrumenting tests/reference_impl.py."""
    from microgpt.recording import record_step
    n_params, made = count_step_nodes(string.ascii_lowercase, doc, **sizes)
    tok = Tokenizer(list(string.ascii_lowercase))
    config = GPTConfig(vocab_size=tok.vocab_size, **sizes)
    trace = record_step(init_params(config, random.Random(0)), config, tok, doc)
    assert n_params == len(flat_params(init_params(config, random.Random(0))))
    assert len(trace) == n_params + made
    if (doc, sizes) == ('emma', {}):
        assert len(trace) == 43895                # the figure `inspect` and the README give
    if (doc, sizes) == ('christopher', {}):
        assert len(trace) == 103675


def test_deep_config_forward_and_backward_complete():
    """Four layers over a full block of 16 positions: every layer runs forward, and backward
    reaches the deepest one (narrow, 8 wide with 2 heads: depth is what is under test, and a
    32-wide model took 8x as long for the same coverage)."""
    tok = Tokenizer([chr(c) for c in range(97, 123)])
    config = GPTConfig(vocab_size=tok.vocab_size, n_layer=4, n_embd=8, n_head=2)
    params = init_params(config, random.Random(0))
    assert [k for k in params if k.startswith('layer3.')]      # the fourth layer exists
    loss, losses = doc_loss(params, config, tok.encode('abcdefghijklmno'))  # 15 characters
    loss.backward()
    assert len(losses) == 16 and 2.5 < loss.data < 4.5
    for layer in range(4):      # backward reached every layer's last matrix
        assert all(p.grad != 0 for p in params[f'layer{layer}.mlp_fc2'][0])


def test_long_document_is_truncated_to_block_size_like_the_reference():
    tok = Tokenizer([chr(c) for c in range(97, 123)])
    config = GPTConfig(vocab_size=tok.vocab_size, block_size=4)
    params = init_params(config, random.Random(0))
    loss, losses = doc_loss(params, config, tok.encode('abcdefgh'))
    assert len(losses) == 4


def test_format_lines():
    assert format_step(0, 1000, 3.36596) == 'step    1 / 1000 | loss 3.3660'
    assert format_sample(0, 'kamon') == 'sample  1: kamon'


@pytest.mark.slow
@needs_names
def test_full_reference_run_1000_steps_and_20_samples_bit_for_bit():
    """The whole reference run: every loss of 1,000 steps and the 20 samples after it, against
    what the independent transcription (tests/reference_impl.py) computes for the same data,
    kept in tests/golden/reference_run.json (`python -m tests.reference_figures NAMES_FILE`
    writes it; running the transcription here too would double the test's minute)."""
    want = json.loads(REFERENCE_RUN.read_text())
    raw = names_path().read_bytes()
    assert hashlib.sha256(raw).hexdigest() == want['names_sha256'], 'the reference run was recorded on other data'
    run = start_run(read_docs(names_path()), seed=42)
    for k in range(1000):
        assert train_step(run, k, 1000) == want['losses'][k], f"step {k + 1} differs"
    ours = [sample(run.params, run.config, run.tokenizer, run.rng) for _ in range(20)]
    assert ours == want['samples']
    assert format_step(999, 1000, run.losses[-1]).startswith('step 1000 / 1000 | loss 2.6')


@pytest.mark.parametrize('tokens,bad', [([26, -1, 26], "token -1 at index 1"), ([26, 27, 26], "token 27 at index 1"),
                                        ([26, 1.0, 26], "token 1.0 at index 1"), ([26], "at least 2 tokens")])
def test_bad_token_lists_are_refused_before_any_op(tokens, bad):
    """Out-of-range ids (-1 would silently read the last row), non-integers and a list
    without a target are one-line errors, not an IndexError or a wrong loss."""
    tok = Tokenizer([chr(c) for c in range(97, 123)])
    config = GPTConfig(vocab_size=tok.vocab_size)
    params = init_params(config, random.Random(0))
    with pytest.raises(ValueError, match=re.escape(bad)):
        doc_loss(params, config, tokens)


def test_the_shortest_document_bos_bos_is_one_position_as_in_the_reference():
    """doc_loss's own contract ("at least 2 tokens ([BOS] + [BOS])"): [BOS, BOS] is one
    position predicting BOS after BOS, not refused (the tokenizer refuses an empty
    document first; doc_loss is also called with token lists); its loss is the
    reference's for an empty document, bit for bit."""
    run = start_run(TINY_DOCS, seed=3)
    ref = make_reference(TINY_DOCS, seed=3)
    tokens = [run.tokenizer.BOS] * 2
    assert tokens == [ref.BOS, ref.BOS]
    loss, positions = doc_loss(run.params, run.config, tokens)
    assert len(positions) == 1 and loss.data == ref.loss_of('').data


def test_defaults_are_the_reference_scripts():
    """start_run without a seed is the reference script's seed 42 (its shuffle and init),
    and a Run built by hand gets an Adam over its parameters, in parameter order."""
    from microgpt.train import Run
    run = start_run(TINY_DOCS)
    ref = make_reference(TINY_DOCS, seed=42)
    assert run.docs == ref.docs
    assert [p.data for p in flat_params(run.params)] == [p.data for p in ref.params]
    bare = Run(run.config, run.tokenizer, run.params, run.rng, run.docs)
    assert bare.optimizer.params == flat_params(run.params)
    assert bare.optimizer.m == [0.0] * len(ref.params)


def test_fresh_model_default_is_the_reference_init_with_seed_42():
    """fresh_model() (what render/gradcheck draw by default) = the reference's parameters
    drawn from Random(42) over a-z (shuffling one document draws nothing)."""
    from microgpt.train import fresh_model
    params, config, tok = fresh_model()
    ref = make_reference([string.ascii_lowercase], seed=42)
    assert tok.chars == ref.uchars and config.vocab_size == ref.vocab_size == 27
    assert [p.data for p in flat_params(params)] == [p.data for p in ref.params]
