"""Adam's state in a checkpoint: saved by `train --out`, read back bit for bit, and the
explorer's update panel from it equals the update Adam takes next."""

import json

import pytest
from click.testing import CliRunner

import cli
from microgpt.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from microgpt.model import flat_params
from microgpt.recording import record_step
from microgpt.train import start_run, train
from tests.explorer_helpers import get_json, running_server

DOCS = ['emma', 'olivia', 'ava', 'anna', 'mia', 'liam', 'noah', 'ella']


@pytest.fixture
def trained(tmp_path):
    """A run stopped after 3 of a 10-step schedule, saved with its optimizer."""
    run = start_run(DOCS, seed=7)
    train(run, 3, schedule=10)
    path = tmp_path / 'model.json'
    save_checkpoint(path, run.params, run.config, run.tokenizer, step=3, optimizer=run.optimizer, num_steps=10)
    return run, path


def test_the_state_round_trips_bit_for_bit(trained):
    run, path = trained
    ck = read_checkpoint(path)
    assert ck.step == 3 and ck.optimizer['step'] == 3 and ck.optimizer['num_steps'] == 10
    assert ck.optimizer['m'] == run.optimizer.m and ck.optimizer['v'] == run.optimizer.v
    assert any(ck.optimizer['m']) and all(v >= 0 for v in ck.optimizer['v'])


@pytest.mark.parametrize('mutate, message', [
    (lambda o: o.update(m=o['m'][:-1]), 'm must list one number per parameter'),
    (lambda o: o['v'].__setitem__(0, -1.0), 'moments are finite numbers >= 0'),
    (lambda o: o.update(step='3'), 'step must be a whole number >= 0'),
    (lambda o: o.update(num_steps=2), 'num_steps must be a whole number >= step (3)'),
])
def test_a_bad_state_is_refused(trained, mutate, message):
    _, path = trained
    d = json.loads(path.read_text())
    mutate(d['optimizer'])
    path.write_text(json.dumps(d))
    with pytest.raises(CheckpointError, match='"optimizer"'):
        read_checkpoint(path)
    with pytest.raises(CheckpointError) as e:
        read_checkpoint(path)
    assert message in str(e.value)


def test_train_out_saves_the_state_on_the_schedule(tmp_path):
    data = tmp_path / 'names.txt'
    data.write_text('\n'.join(DOCS) + '\n')
    out = tmp_path / 'm.json'
    r = CliRunner().invoke(cli.main, ['train', str(data), '--steps', '2', '--schedule', '5', '--out', str(out)])
    assert r.exit_code == 0, r.output
    run = start_run(DOCS, seed=42)
    train(run, 2, schedule=5)
    ck = read_checkpoint(out)
    assert ck.optimizer == {'step': 2, 'num_steps': 5, 'm': run.optimizer.m, 'v': run.optimizer.v}
    assert [p.data for p in flat_params(ck.params)] == [p.data for p in flat_params(run.params)]


def test_the_explorer_update_uses_the_checkpoint_state(trained):
    """The next update of a cell this step moves, on the checkpoint's 10-step schedule: lr_t is
    lr * (1 - 3/10), not the default run length's (a cell without grad or moments moves by 0
    whatever lr_t is, so it could not tell)."""
    run, path = trained
    t = record_step(run.params, run.config, run.tokenizer, 'emma')   # this step's grads on the parameters
    flat = flat_params(run.params)
    old = [p.data for p in flat]
    m_prev = list(run.optimizer.m)
    run.optimizer.step(3, 10)                                     # the update Adam takes next
    i = next(i for i in t.param_nodes('wte') if t.grad[i] != 0 and m_prev[i] != 0)
    name, r, c = t.param_cell(i)
    with running_server(doc='emma', checkpoint=str(path)) as server:
        status, u = get_json(server, f'/api/update?view=param&param={name}[{r}][{c}]&level=auto&ckpt={path}')
    assert status == 200, u
    assert u['step'] == 3 and "checkpoint's optimizer state after 3 of 10" in u['source']
    assert u['num_steps'] == 10 and float(u['lr_t']) == run.optimizer.config.lr * (1 - 3 / 10)
    [row] = [r for r in u['rows'] if r['id'] == i]     # the cell (the view has its use's other cells too)
    assert float(row['m']) == run.optimizer.m[i] and float(row['v']) == run.optimizer.v[i]
    assert float(row['delta']) == flat[i].data - old[i] != 0


def test_the_explorer_reads_a_checkpoints_state_once_per_version_of_the_file(trained, monkeypatch):
    """Recordings.moments (the update panel's moments): the checkpoint's optimizer state, read once while the
    file is unchanged (issue 25: 0.3-0.5 s of every update request at 4 x 64), again once it changes; a missing
    file is optimizer_state's one-line error."""
    import graphviz_export.web.explorer.recordings as recordings
    from microgpt.recording.session import optimizer_state

    run, path = trained
    reads = []
    monkeypatch.setattr(recordings, 'optimizer_state', lambda p: reads.append(p) or optimizer_state(p))
    rec = recordings.Recordings(doc='emma', checkpoint=str(path))
    want = optimizer_state(path)
    for _ in range(3):
        got = rec.moments(str(path))
        assert got['step'] == want['step'] == 3 and got['m'] == want['m'] and got['v'] == want['v']
    assert len(reads) == 1
    save_checkpoint(path, run.params, run.config, run.tokenizer, step=None, num_steps=10)     # rewritten: no state
    assert rec.moments(str(path)) is None and len(reads) == 2
    with pytest.raises(CheckpointError) as e:
        rec.moments(str(path) + '.gone')
    with pytest.raises(CheckpointError) as again:
        optimizer_state(str(path) + '.gone')
    assert str(e.value) == str(again.value)
