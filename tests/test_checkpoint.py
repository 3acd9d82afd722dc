import json
import os
import re

import pytest

from microgpt.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from microgpt.model import flat_params


def test_round_trip_is_bit_exact(tmp_path, az_model):
    params, config, tok = az_model
    path = tmp_path / 'model.json'
    save_checkpoint(path, params, config, tok, step=12)
    p2, c2, t2, step = load_checkpoint(path)
    assert (c2, t2, step) == (config, tok, 12)
    assert [p.data.hex() for p in flat_params(p2)] == [p.data.hex() for p in flat_params(params)]
    assert list(p2) == list(params)


@pytest.mark.parametrize('mutate,msg', [
    (lambda t: t[: len(t) // 2], 'is corrupt or truncated'),
    (lambda t: '[]', 'is not a microgpt-graph checkpoint'),
    (lambda t: t.replace('"version":1', '"version":9'), 'has version 9'),
    (lambda t: t.replace('"n_embd":16', '"n_embd":15'), 'bad config: n_embd (15) must be divisible by n_head (4)'),
    (lambda t: t.replace('"chars":"abcdefghijklmnopqrstuvwxyz"', '"chars":"abc"'), 'is inconsistent: 3 characters'),
    (lambda t: t.replace('"wpe":', '"wpx":'), 'does not match its config: missing wpe; unexpected wpx'),
])
def test_damaged_checkpoints_give_clear_errors(tmp_path, az_model, mutate, msg):
    params, config, tok = az_model
    path = tmp_path / 'model.json'
    save_checkpoint(path, params, config, tok)
    path.write_text(mutate(path.read_text()))
    with pytest.raises(CheckpointError, match=re.escape(msg)):
        load_checkpoint(path)


def test_wrong_matrix_shape_and_non_numbers(tmp_path, az_model):
    params, config, tok = az_model
    path = tmp_path / 'model.json'
    save_checkpoint(path, params, config, tok)
    d = json.loads(path.read_text())
    d['params']['wpe'] = d['params']['wpe'][:-1]
    path.write_text(json.dumps(d))
    with pytest.raises(CheckpointError, match=r'wpe must be a 16x16 matrix'):
        load_checkpoint(path)
    d['params']['wpe'] = [[None] * 16] * 16
    path.write_text(json.dumps(d))
    with pytest.raises(CheckpointError, match=r'wpe holds None; parameters must be finite numbers'):
        load_checkpoint(path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match='checkpoint not found: .*nope.json'):
        load_checkpoint(tmp_path / 'nope.json')


def test_interrupted_save_leaves_old_file_intact(tmp_path, az_model, monkeypatch):
    params, config, tok = az_model
    path = tmp_path / 'model.json'
    save_checkpoint(path, params, config, tok, step=1)
    before = path.read_bytes()

    def boom(*a, **k):
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-save
    monkeypatch.setattr(os, 'replace', boom)
    params['wte'][0][0].data = 123.0
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, params, config, tok, step=2)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ['model.json']  # no temp file left behind
