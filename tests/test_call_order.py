"""Truth under any call order: recording a step, checking gradients or sampling before
(or between) training steps never changes what training does.

Each test runs two identical runs, does something to one of them, trains both, and
compares every parameter bit for bit with the run that did nothing (and, where cheap,
with the independent transcription of the reference in tests/reference_impl.py).
"""

import gc
import random

import pytest

from microgpt import engine, tags
from microgpt.checks.diagnose import diagnose
from microgpt.checks.params import check_params
from microgpt.data import read_docs
from microgpt.model import flat_params
from microgpt.recording import record_step
from microgpt.sample import sample
from microgpt.train import start_run, train, train_step
from tests.conftest import names_path
from tests.reference_impl import make_reference

SMALL_DOCS = ['anna', 'bob', 'cecilia', 'dmitri', 'eve', 'frank', 'gina', 'hal', 'ida', 'jo', 'emma']
TINY = dict(n_embd=8, n_head=2, block_size=8)   # a step in a few ms


def docs():
    """The issue's data: the names data when present, else a small made-up list."""
    path = names_path()
    return read_docs(path) if path is not None else SMALL_DOCS


def datas(run):
    return [p.data for p in flat_params(run.params)]


def grads(run):
    return [p.grad for p in flat_params(run.params)]


def state(run):
    """Everything a run carries into its next step: data, Adam moments, the rng stream."""
    return datas(run), list(run.optimizer.m), list(run.optimizer.v), run.rng.getstate(), list(run.losses)


def test_the_issues_reproduction_exactly():
    """The reproduction from issue 16, verbatim: parameters used to differ by up to 0.02."""
    d = docs()
    a = start_run(d, seed=42)
    b = start_run(d, seed=42)
    record_step(b.params, b.config, b.tokenizer, 'emma')
    assert any(g != 0 for g in grads(b))              # the recorded step left its grads behind
    train(a, 1)
    train(b, 1)
    assert datas(a) == datas(b)
    assert a.losses == b.losses
    ref = make_reference(d, seed=42)
    assert a.losses == [ref.step(0, 1)]
    assert datas(a) == [p.data for p in ref.params]


def _record(run):
    record_step(run.params, run.config, run.tokenizer, 'emma')


def _check_params(run):
    check_params(run.params, run.config, run.tokenizer, 'emma', sample=6)


def _diagnose(run):
    diagnose(run.params, run.config, run.tokenizer, 'emma', sample=4)


def _diagnose_with_fault(run):
    diagnose(run.params, run.config, run.tokenizer, 'emma', fault='exp-x2', sample=4)


def _diagnose_accumulate_fault(run):
    diagnose(run.params, run.config, run.tokenizer, 'emma', fault='accumulate-overwrite', sample=2)


def _sample_own_rng(run):
    sample(run.params, run.config, run.tokenizer, random.Random(7))


def _failed_record(run):
    with pytest.raises(ValueError):
        record_step(run.params, run.config, run.tokenizer, 'Emma')   # 'E' is not in the vocabulary


def _everything(run):
    for f in (_record, _check_params, _diagnose_with_fault, _sample_own_rng, _record):
        f(run)


BEFORE = [_record, _check_params, _diagnose, _diagnose_with_fault, _diagnose_accumulate_fault,
          _sample_own_rng, _failed_record, _everything]


@pytest.mark.parametrize('meddle', BEFORE, ids=[f.__name__.strip('_') for f in BEFORE])
@pytest.mark.parametrize('when', ['before', 'between'])
def test_meddling_never_changes_training(meddle, when):
    """Record / check / diagnose / sample before the first step or between two steps:
    both runs end bit for bit equal, Adam moments and rng stream included, and equal to
    the reference transcription's parameters."""
    a = start_run(SMALL_DOCS, seed=5, **TINY)
    b = start_run(SMALL_DOCS, seed=5, **TINY)
    ref = make_reference(SMALL_DOCS, seed=5, **TINY)
    n = 3
    if when == 'before':
        meddle(b)
    for k in range(n):
        train_step(a, k, n)
        train_step(b, k, n)
        ref.step(k, n)
        if when == 'between' and k == 0:
            meddle(b)
    assert state(a) == state(b)
    assert a.losses == b.losses
    assert datas(a) == [p.data for p in ref.params]
    # a step leaves zero grads behind, as the reference's Adam loop does
    assert grads(a) == grads(b) == [p.grad for p in ref.params] == [0] * len(ref.params)
    # and sampling afterwards continues the same stream as the reference's
    assert sample(b.params, b.config, b.tokenizer, b.rng) == ref.sample()


@pytest.mark.parametrize('meddle', [_record, _check_params, _diagnose, _diagnose_with_fault, _failed_record],
                         ids=['record', 'check_params', 'diagnose', 'diagnose_fault', 'failed_record'])
def test_checks_leave_data_adam_rng_and_globals_alone(meddle):
    """What a check may change is grads (record_step leaves the step's grads, as the
    reference's backward would); never .data, the optimizer, the run's rng, Python's
    global rng, the engine's ops, the recording hook or the garbage collector."""
    run = start_run(SMALL_DOCS, seed=9, **TINY)
    train(run, 2)
    before = state(run)
    global_rng = random.getstate()
    ops = {name: engine.Value.__dict__[attr] for name, attr in engine.PRIMITIVES.items()}
    gc_on = gc.isenabled()
    meddle(run)
    assert state(run) == before
    assert random.getstate() == global_rng
    assert {name: engine.Value.__dict__[attr] for name, attr in engine.PRIMITIVES.items()} == ops
    assert tags._listener is None
    assert gc.isenabled() == gc_on


def test_check_params_restores_the_grads_it_found():
    run = start_run(SMALL_DOCS, seed=9, **TINY)
    _record(run)
    held = grads(run)
    assert any(held)
    _check_params(run)
    assert grads(run) == held


def test_a_recorded_step_after_training_has_the_references_grads():
    """record_step starts from zero grads too: after two training steps its parameter
    grads are the reference's backward of the same document on the same parameters."""
    run = start_run(SMALL_DOCS, seed=4, **TINY)
    ref = make_reference(SMALL_DOCS, seed=4, **TINY)
    for k in range(2):
        train_step(run, k, 10)
        ref.step(k, 10)
    for p in flat_params(run.params):
        p.grad = 0.125                        # junk a previous user left behind
    trace = record_step(run.params, run.config, run.tokenizer, 'emma')
    loss = ref.loss_of('emma')
    loss.backward()
    assert trace.loss == loss.data
    assert grads(run) == [p.grad for p in ref.params]
    assert datas(run) == [p.data for p in ref.params]


def test_two_recordings_of_one_step_are_identical():
    """Recording twice in a row (grads left by the first) records the same step."""
    run = start_run(SMALL_DOCS, seed=4, **TINY)
    t1 = record_step(run.params, run.config, run.tokenizer, 'emma')
    t2 = record_step(run.params, run.config, run.tokenizer, 'emma')
    assert list(t1.grad) == list(t2.grad) and list(t1.data) == list(t2.data)
