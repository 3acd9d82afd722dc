"""Play training (microgpt.recording.play): the played run is the reference run, bit for bit.

The oracle is the port's own loop (microgpt.train.train with the reference's 1000-step
schedule) and, for 100 steps, the `train` command a user runs, read back from its checkpoint.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from microgpt.model import flat_params
from microgpt.recording.play import Play
from microgpt.recording.session import SessionError
from microgpt.recording.step import record_step
from microgpt.train import NUM_STEPS, start_run, train, train_step
from tests.conftest import names_path, needs_names

pytestmark = needs_names


@pytest.fixture(scope='module')
def docs():
    return names_path().read_text().split()


def _reference(docs, k, doc=None):
    """The run after k steps of the port's loop (the reference's schedule)."""
    run = start_run(docs)
    if doc is None:
        train(run, k, schedule=NUM_STEPS)
    else:
        for step in range(k):
            train_step(run, step, NUM_STEPS, doc=doc)
    return run


def test_played_steps_are_the_reference_runs(docs):
    play = Play(docs, 'emma')
    for _ in range(5):
        trace = play.advance()
    run = _reference(docs, 5)
    assert play.params() == [p.data for p in flat_params(run.params)]
    state = play.optimizer_state()
    assert (state['m'], state['v'], state['step']) == (run.optimizer.m, run.optimizer.v, 5)
    assert play.losses == run.losses
    # the view after 5 steps is 'emma' recorded on those weights: the same numbers as recording it there
    again = record_step(run.params, run.config, run.tokenizer, 'emma')
    assert trace.data == again.data and trace.grad == again.grad


def test_training_on_the_shown_document_reuses_its_backward_bit_for_bit(docs):
    """tdoc == doc: the optimizer steps on the grads the recording left (one pass a step); the
    result must be train_step's on that document, which runs its own forward and backward."""
    play = Play(docs, 'emma', train_doc='emma')
    for _ in range(4):
        play.advance()
    run = _reference(docs, 4, doc='emma')
    assert play.params() == [p.data for p in flat_params(run.params)]
    assert play.optimizer_state()['v'] == run.optimizer.v
    assert play.losses == run.losses
    assert play.doc_losses[3] == run.losses[3]      # step 4 trained on the recording of step 3
    again = Play(docs, 'emma', train_doc='emma')
    again.seek(3)                                   # on the way: plain train_step on 'emma'
    again.advance()                                 # then the recording's backward again
    assert again.params() == play.params() and again.losses == play.losses


def test_seek_back_and_forth_lands_on_the_same_state(docs):
    play = Play(docs, 'emma', keep_every=4)
    for _ in range(10):
        play.advance()
    seven = _reference(docs, 7)
    play.seek(7)
    assert play.step == 7 and play.params() == [p.data for p in flat_params(seven.params)]
    assert play.optimizer_state()['m'] == seven.optimizer.m
    assert play.losses == seven.losses
    play.seek(2)
    play.seek(9)
    assert play.params() == [p.data for p in flat_params(_reference(docs, 9).params)]


def test_a_chosen_learning_rate_scales_the_first_step(docs):
    """lr=0.05: Adam's first step is lr * g / (|g| + eps), so 5x the reference's on each cell."""
    fast, ref = Play(docs, 'emma', lr=0.05), Play(docs, 'emma')
    before = fast.params()
    fast.advance(record=False)
    ref.advance(record=False)
    moved = [(a - b, c - b) for a, c, b in zip(fast.params(), ref.params(), before) if c != b]
    assert moved and all(abs(f / r - 5) < 1e-6 for f, r in moved)


def test_bad_documents_and_the_end_of_the_schedule(docs):
    with pytest.raises(SessionError, match="train_doc: .*'!'"):
        Play(docs, 'emma', train_doc='hi!')
    play = Play(docs, 'emma', schedule=2)
    play.advance(record=False)
    play.advance(record=False)
    with pytest.raises(Exception, match='reaches 0 at step 2'):
        play.advance()
    with pytest.raises(Exception, match=r'train must be in 0\.\.2'):
        play.seek(3)


@pytest.mark.slow
def test_100_played_steps_equal_the_train_command_bit_for_bit(docs, tmp_path):
    """After 100 played steps (each recording 'emma' too) the parameters and Adam's moments are
    those of `microgpt-graph train --steps 100 --schedule 1000`, read from its checkpoint."""
    out = tmp_path / 'model.json'
    subprocess.run([str(Path(sys.executable).parent / 'microgpt-graph'), 'train', str(names_path()), '--steps', '100',
                    '--schedule', str(NUM_STEPS), '--out', str(out), '--samples', '0', '--log-every', '0'],
                   check=True, capture_output=True, timeout=900)
    saved = json.loads(out.read_text())
    play = Play(docs, 'emma')
    for _ in range(100):
        play.advance()
    flat = [x for name in saved['params'] for row in saved['params'][name] for x in row]
    assert play.params() == flat
    assert play.optimizer_state()['m'] == saved['optimizer']['m']
    assert play.optimizer_state()['v'] == saved['optimizer']['v']
    assert saved['optimizer']['step'] == play.step == 100


def test_the_training_process_runs_one_step_ahead_and_ends_with_its_play(docs):
    """In the reference's order the training runs in a child process (recording.ahead) while the
    shown document is recorded here; it is the in-process run's bit for bit (above, and against
    `train` below), and it ends with its Play: closed, dropped, or moved back (restarted)."""
    import gc
    play = Play(docs, 'emma')
    play.advance()
    first = play._ahead.process
    assert first.poll() is None                          # alive, one step ahead
    play.seek(0)                                         # back: the process trained on; it is stopped
    assert first.wait(5) is not None
    play.advance()
    second = play._ahead.process
    assert second is not first and second.poll() is None
    del play
    gc.collect()
    assert second.wait(5) is not None                    # the dropped Play's process ends
    same = Play(docs, 'emma', train_doc='emma')          # one document: its recording is the step
    same.advance()
    assert same._ahead is None
