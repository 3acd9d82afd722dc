"""Recorded steps reused from the user cache (issue 25; microgpt.recording.stepcache): a second
`render` of the same step does not record again and draws the same bytes; anything the step
depends on (document, parameters, config, code) misses; a corrupt entry is recorded again,
never an error; --no-cache, $MICROGPT_NO_STEP_CACHE and an injected fault bypass it.

Recordings are counted where every recording goes through: the tape (recording.step.record)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import cli
import microgpt.recording.step as step_module
from microgpt.checkpoint import save_checkpoint
from microgpt.checks.faults import inject
from microgpt.recording import Trace, record_step, stepcache
from microgpt.recording import entries as entry_files
from tests.tiny_model import tiny_model

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def recordings(tmp_path, monkeypatch):
    """The number of steps recorded so far (a list: its length), with a cache folder of this test's own."""
    monkeypatch.setenv('MICROGPT_CACHE', str(tmp_path / 'cache'))
    monkeypatch.delenv(stepcache.NO_CACHE_ENV, raising=False)
    made = []
    real = step_module.record

    def counting(params):
        made.append(1)
        return real(params)
    monkeypatch.setattr(step_module, 'record', counting)
    return made


def render(tmp_path, name, *args):
    out = tmp_path / name
    r = CliRunner().invoke(cli.main, ['render', '--format', 'dot', '-o', str(out), *args])
    assert r.exit_code == 0, r.output
    return r.output, out.read_bytes()


def entries(tmp_path):
    return sorted((tmp_path / 'cache' / 'steps').glob('*.mgtrace'))


def test_a_second_render_reads_the_step_it_recorded_and_draws_the_same(tmp_path, recordings):
    said, first = render(tmp_path, 'a.dot', '--doc', 'christopher', '--token', '11')
    assert len(recordings) == 1 and 'reused' not in said
    [entry] = entries(tmp_path)
    said, second = render(tmp_path, 'b.dot', '--doc', 'christopher', '--token', '11')
    assert len(recordings) == 1                       # not recorded again
    assert f"reused the recorded step from {entry}\n" in said
    assert second == first
    _, other_view = render(tmp_path, 'c.dot', '--doc', 'christopher', '--token', '3')
    assert len(recordings) == 1 and other_view != first     # another view of the same step: reused too


def test_what_the_step_depends_on_is_in_the_key(tmp_path, recordings):
    """Another document, seed, checkpoint content (same path), config, or code: recorded again."""
    render(tmp_path, 'a.dot', '--doc', 'emma')
    render(tmp_path, 'b.dot', '--doc', 'anna')
    assert len(recordings) == 2
    render(tmp_path, 'c.dot', '--doc', 'emma', '--seed', '7')
    assert len(recordings) == 3
    ckpt = tmp_path / 'm.json'
    params, config, tok = tiny_model(seed=1)
    save_checkpoint(ckpt, params, config, tok)
    render(tmp_path, 'd.dot', '--doc', 'ab', '--checkpoint', str(ckpt))
    render(tmp_path, 'd.dot', '--doc', 'ab', '--checkpoint', str(ckpt))
    assert len(recordings) == 4
    params['wte'][0][0].data += 1e-12                  # one parameter, in its last bits, same file name
    save_checkpoint(ckpt, params, config, tok)
    render(tmp_path, 'e.dot', '--doc', 'ab', '--checkpoint', str(ckpt))
    assert len(recordings) == 5
    params, config, tok = tiny_model(seed=1, n_layer=2)   # another config
    save_checkpoint(ckpt, params, config, tok)
    render(tmp_path, 'f.dot', '--doc', 'ab', '--checkpoint', str(ckpt))
    assert len(recordings) == 6
    assert len(entries(tmp_path)) == 6


def test_a_code_change_records_again(tmp_path, recordings, monkeypatch):
    render(tmp_path, 'a.dot')
    monkeypatch.setattr(stepcache, 'code_version', lambda: 'an edited port')
    render(tmp_path, 'b.dot')
    assert len(recordings) == 2


@pytest.mark.parametrize('damage', ['cut short', 'flipped bytes', 'empty', 'not a trace'])
def test_a_corrupt_entry_is_recorded_again_and_rewritten(tmp_path, recordings, damage):
    _, first = render(tmp_path, 'a.dot', '--token', '2')
    [entry] = entries(tmp_path)
    raw = entry.read_bytes()
    broken = {'cut short': raw[:len(raw) // 2],
              'flipped bytes': raw[:200] + bytes(b ^ 0xFF for b in raw[200:4000]) + raw[4000:],
              'empty': b'',
              'not a trace': b'{"nodes": 1}'}[damage]
    entry.write_bytes(broken)
    said, again = render(tmp_path, 'b.dot', '--token', '2')
    assert len(recordings) == 2 and 'Error' not in said and 'reused' not in said
    assert again == first
    assert entry.read_bytes() == raw                  # rewritten whole
    render(tmp_path, 'c.dot', '--token', '2')
    assert len(recordings) == 2                       # and read the next time


def test_no_cache_and_the_variable_bypass_it(tmp_path, recordings, monkeypatch):
    render(tmp_path, 'a.dot')
    said, _ = render(tmp_path, 'b.dot', '--no-cache')
    assert len(recordings) == 2 and 'reused' not in said
    monkeypatch.setenv(stepcache.NO_CACHE_ENV, '1')
    said, _ = render(tmp_path, 'c.dot')
    assert len(recordings) == 3 and 'reused' not in said
    monkeypatch.setenv(stepcache.NO_CACHE_ENV, '0')
    render(tmp_path, 'd.dot')
    assert len(recordings) == 3


def test_quiet_reuses_without_saying_so(tmp_path, recordings):
    render(tmp_path, 'a.dot', '-q')
    said, _ = render(tmp_path, 'b.dot', '-q')
    assert len(recordings) == 1 and 'reused' not in said


def test_a_step_recorded_under_a_fault_is_never_stored_nor_read(tmp_path, recordings):
    """A fault swaps the engine's ops: that step is not the key's step."""
    params, config, tok = tiny_model()
    with inject('exp-x2'):
        wrong, reused = stepcache.cached_step(params, config, tok, 'ab')
    assert reused is None and entries(tmp_path) == []
    right, _ = stepcache.cached_step(params, config, tok, 'ab')
    with inject('exp-x2'):
        again, reused = stepcache.cached_step(params, config, tok, 'ab')
    assert reused is None and len(recordings) == 3
    assert right != wrong and again == wrong


def test_the_stored_step_is_the_recorded_step_bit_for_bit(tmp_path, recordings):
    params, config, tok = tiny_model()
    recorded, _ = stepcache.cached_step(params, config, tok, 'abc')
    loaded, reused = stepcache.cached_step(params, config, tok, 'abc')
    assert reused == entries(tmp_path)[0] and loaded == recorded == record_step(params, config, tok, 'abc')
    assert isinstance(loaded, Trace)


def test_the_budget_still_refuses_a_step_it_has_stored(tmp_path, recordings):
    render(tmp_path, 'a.dot')
    r = CliRunner().invoke(cli.main, ['render', '--max-nodes', '100', '-o', str(tmp_path / 'b.dot')])
    assert r.exit_code == 2 and 'max-nodes' in r.output and len(recordings) == 1


def test_a_cache_folder_that_cannot_be_written_only_records(tmp_path, recordings, monkeypatch):
    blocker = tmp_path / 'a-file'
    blocker.write_text('not a folder')
    monkeypatch.setenv('MICROGPT_CACHE', str(blocker))
    _, first = render(tmp_path, 'a.dot')
    _, second = render(tmp_path, 'b.dot')
    assert len(recordings) == 2 and first == second


def test_the_folder_keeps_the_most_recently_used_entries(tmp_path, recordings, monkeypatch):
    monkeypatch.setattr(entry_files, 'MAX_ENTRIES', 2)     # the store's (entries.py, stepcache's and a child's)
    params, config, tok = tiny_model()
    for doc in ('ab', 'cd', 'ab', 'ef'):      # 'ab' used again before 'ef' arrives: 'cd' goes
        stepcache.cached_step(params, config, tok, doc)
    kept = {Trace.load(p).meta['doc'] for p in entries(tmp_path)}
    assert kept == {'ab', 'ef'} and len(recordings) == 3


def test_a_new_process_says_it_reused_the_step(tmp_path):
    """As a user meets it: two `render` runs, the second names the file it read."""
    env = dict(os.environ, MICROGPT_CACHE=str(tmp_path / 'cache'), PYTHONPATH=str(ROOT))
    env.pop(stepcache.NO_CACHE_ENV, None)
    runs = [subprocess.run([sys.executable, '-m', 'cli', 'render', '--token', '2', '--format', 'dot',
                            '-o', str(tmp_path / f'{k}.dot')], cwd=ROOT, env=env, capture_output=True, text=True)
            for k in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr + runs[1].stderr
    [entry] = entries(tmp_path)
    assert 'reused' not in runs[0].stderr
    assert runs[1].stderr == f"reused the recorded step from {entry}\n"
    assert (tmp_path / '0.dot').read_bytes() == (tmp_path / '1.dot').read_bytes()
