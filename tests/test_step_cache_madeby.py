"""A step reused from the user cache answers "made by" as the recording did (issue 25): the chains
the explorer records with (record_step(lines=True)) are kept in the cache entry (a binary trace
file stores them: codecs.binary version 3), so the explorer reuses a step `render` or an earlier
explorer recorded without replaying its forward pass under the engine's lock when the page first
asks "made by"; and `explore` says it reused the step.
"""

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

import microgpt.recording.madeby as madeby_module
from microgpt.recording import record_step, stepcache
from microgpt.recording.madeby import kept_chains, made_by, needs_replay
from microgpt.recording.sourcemap import SourceMap
from tests.explorer_helpers import default_signals, stopped_in_the_end
from tests.test_explorer_cli import _printed
from tests.test_trace_stored_indexes import join, set_item, split

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv('MICROGPT_CACHE', str(tmp_path / 'cache'))
    monkeypatch.delenv(stepcache.NO_CACHE_ENV, raising=False)
    return tmp_path / 'cache' / 'steps'


def answers(trace):
    """What the explorer's "made by" panel shows: made_by of 300 nodes spread over the step (every
    node would take a minute: made_by parses engine.py each time), and the chain of every node."""
    sources = SourceMap()
    shown = [made_by(trace, i, sources) for i in range(0, len(trace), max(1, len(trace) // 300))]
    chains = kept_chains(trace)
    return shown, (list(chains[0]), [tuple(map(tuple, c)) for c in chains[1]])


def no_replay(monkeypatch):
    def refused(trace):
        raise AssertionError("the forward pass was replayed")
    monkeypatch.setattr(madeby_module, 'replay_chains', refused)
    monkeypatch.setattr(stepcache, 'replay_chains', refused)


def stores_chains(entry):
    """Whether the cache entry (a binary trace file) holds made-by chains (codecs.binary version 3)."""
    header, _ = split(entry.read_bytes())
    return 'chains' in header and any(c[0] == 'made_by' for c in header['columns'])


def test_a_reused_step_answers_made_by_as_a_fresh_recording_without_a_replay(tiny, cache, monkeypatch):
    params, config, tok = tiny
    fresh = record_step(params, config, tok, 'abcde', lines=True)
    first, reused = stepcache.cached_step(params, config, tok, 'abcde', lines=True)
    assert reused is None
    [entry] = sorted(cache.glob('*.mgtrace'))
    assert stores_chains(entry) and sorted(cache.iterdir()) == [entry]     # in the entry: nothing beside it
    no_replay(monkeypatch)              # the chains come from the entry, not from a replay
    second, reused = stepcache.cached_step(params, config, tok, 'abcde', lines=True)
    assert reused == entry and not needs_replay(second)
    want = answers(fresh)
    shown = want[0]
    assert sum(d is not None and d['file'] == 'microgpt/model.py' for d in shown) > len(shown) // 2
    assert answers(second) == want
    # the lines inside the model's functions, not only the scopes' call sites: what chains add
    assert any(d is not None and len(d['chain']) > 1 for d in shown)


def test_a_step_render_recorded_gets_its_chains_once_then_from_the_entry(tiny, cache, monkeypatch):
    params, config, tok = tiny
    fresh = record_step(params, config, tok, 'abcde', lines=True)
    _, reused = stepcache.cached_step(params, config, tok, 'abcde')      # as `render` records: no lines
    [entry] = sorted(cache.glob('*.mgtrace'))
    assert reused is None and not stores_chains(entry)
    told = []
    second, reused = stepcache.cached_step(params, config, tok, 'abcde', lines=True,
                                           progress=lambda *a: told.append(a))
    assert reused == entry and not needs_replay(second) and stores_chains(entry)
    assert ('noting the line of model.py behind each op', 1, 1) in told     # replayed here, once
    assert answers(second) == answers(fresh)
    no_replay(monkeypatch)
    third, _ = stepcache.cached_step(params, config, tok, 'abcde', lines=True)
    assert answers(third) == answers(fresh)
    assert stepcache.cached_step(params, config, tok, 'abcde')[0] == fresh     # render's reuse: the same step


def test_an_entry_whose_chains_do_not_fit_is_recorded_again_not_believed(tiny, cache):
    """A damaged chains section makes the entry fail to load (the loader refuses it: test_trace_chains),
    so the step is recorded again and the entry rewritten, never answered from wrong chains."""
    params, config, tok = tiny
    fresh = record_step(params, config, tok, 'abcde', lines=True)
    stepcache.cached_step(params, config, tok, 'abcde', lines=True)
    [entry] = sorted(cache.glob('*.mgtrace'))
    good = entry.read_bytes()
    header, body = split(good)
    n_chains = len(header['chains'])
    recorded = []
    def record(*a, **k):
        recorded.append(a[3])
        return record_step(*a, **k)
    for bad in (good[:len(good) - 7], set_item(good, 'made_by', 40, n_chains),
                join(dict(header, chains=header['chains'][:1]), body),
                join(dict(header, chains=[[['gpt', 'x']]] + header['chains'][1:]), body)):
        entry.write_bytes(bad)
        recorded.clear()
        trace, reused = stepcache.cached_step(params, config, tok, 'abcde', lines=True, record=record)
        assert reused is None and recorded == ['abcde'] and answers(trace) == answers(fresh)
        assert entry.read_bytes() == good          # recorded and stored again


def _explore(cache_dir, *args):
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED='1', MICROGPT_CACHE=str(cache_dir))
    env.pop(stepcache.NO_CACHE_ENV, None)
    return subprocess.Popen([sys.executable, str(ROOT / 'cli.py'), 'explore', '--no-browser', '--no-check', *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True, preexec_fn=default_signals)


def _made_by(origin, token, ids):
    out = {}
    for i in ids:
        req = urllib.request.Request(f'{origin}/api/node?id={i}', headers={'X-Explorer-Token': token})
        with urllib.request.urlopen(req, timeout=60) as r:
            out[i] = json.loads(r.read())['source']
    return out


def test_explore_says_it_reused_the_step_and_answers_made_by_as_when_it_recorded_it(tmp_path):
    ids = range(0, 9000, 300)
    answered = []
    for _ in range(2):
        with stopped_in_the_end(_explore(tmp_path / 'cache', '--doc', 'anna')) as p:
            origin, token = _printed(p.stdout.readline(), wait=True)
            answered.append(_made_by(origin, token, ids))
        assert p.returncode == 0, p.err
        answered[-1] = (answered[-1], p.err)
    (first, said_first), (second, said_second) = answered
    [entry] = sorted((tmp_path / 'cache' / 'steps').glob('*.mgtrace'))
    assert 'reused' not in said_first
    assert f"reused the recorded step from {entry}\n" in said_second
    assert second == first
    # the model's inner lines (from the chains), not the scope's call site it falls back to
    assert sum(d is not None and len(d['chain']) > 1 for d in first.values()) >= 5
