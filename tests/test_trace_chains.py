"""A binary trace file carries the "made by" chains (codecs.binary version 3, issue 25): a file
written with them opens without replaying the forward pass and answers "made by" exactly as a
replay does; an older file (version 2, or one saved without them) still opens and replays, saying
so; a file whose chains are damaged is refused in one line naming the file and what is wrong (not
replayed instead: the zlib body's checksum passed, so the writer wrote them wrong, and a made-by
answer read from them would be wrong without a sign)."""

import pytest
from click.testing import CliRunner

import microgpt.recording.madeby as madeby_module
from graphviz_export.web.explorer.recordings import REPLAYING_OLD, Recordings
from microgpt.recording import Trace, record_step
from microgpt.recording.codecs import TraceFormatError
from microgpt.recording.madeby import REPLAYING, kept_chains, needs_replay
from microgpt_graph import cli
from tests.explorer_helpers import stopped_in_the_end
from tests.test_explorer_cli import _printed, _start
from tests.test_step_cache_madeby import _made_by, answers
from tests.test_trace_stored_indexes import join, set_item, split


@pytest.fixture(scope='module')
def files(tiny, tmp_path_factory):
    """(with chains, without: what a version 2 file held, the replayed answers) of one step."""
    params, config, tok = tiny
    folder = tmp_path_factory.mktemp('chains')
    step = record_step(params, config, tok, 'abcdef', lines=True)
    new, old = folder / 'new.mgtrace', folder / 'old.mgtrace'
    step.to_binary(new)
    header, body = split(step.to_binary(chains=False))
    header['version'] = 2           # what this tool wrote before the chains were stored
    old.write_bytes(join(header, body))
    replayed = Trace.load(old)
    assert needs_replay(replayed)
    madeby_module.replay(replayed)
    return new, old, answers(replayed)


def counted_replays(monkeypatch):
    """The list each replay of a forward pass appends to (madeby.replay_chains, still run)."""
    ran, real = [], madeby_module.replay_chains
    def replay_chains(trace, progress=None, phase=REPLAYING):
        ran.append(phase)
        return real(trace, progress, phase)
    monkeypatch.setattr(madeby_module, 'replay_chains', replay_chains)
    return ran


def opened(path):
    """(the trace, the phases told, the notes) of opening `path` as `explore --trace` does."""
    told, notes = [], []
    rec = Recordings(trace=None, tell=lambda phase, done, total: told.append(phase), note=notes.append)
    rec.open('opening', load=lambda progress: Trace.load(path, progress))
    rec.opening.done.wait(60)
    assert rec.opening.error is None, rec.opening.error
    return rec.fixed, list(dict.fromkeys(told)), notes


def test_a_file_with_chains_opens_without_replaying_and_answers_as_a_replay(files, monkeypatch):
    new, _, want = files
    ran = counted_replays(monkeypatch)
    trace, phases, notes = opened(new)
    assert ran == [] and not needs_replay(trace) and notes == []
    assert phases == ['reading', 'inflating', 'checking']     # no replay, no 'building indexes' (none missing)
    assert answers(trace) == want       # every node's chain and 300 nodes' made_by: as the replay makes them
    assert any(d is not None and len(d['chain']) > 1 for d in want[0])      # lines inside the model's functions


def test_an_older_file_opens_by_replaying_and_says_so(files, monkeypatch):
    _, old, want = files
    ran = counted_replays(monkeypatch)
    trace, phases, notes = opened(old)
    assert ran == [REPLAYING_OLD] and REPLAYING_OLD in phases and phases.index(REPLAYING_OLD) > phases.index('checking')
    assert len(notes) == 1 and 'no made-by lines' in notes[0] and 'export --trace' in notes[0]
    assert answers(trace) == want


def test_wrong_chains_would_show_in_the_answers(files):
    """The guard of the two tests above: chains shifted by one node answer differently."""
    new, _, want = files
    trace = Trace.load(new)
    per_node, table = kept_chains(trace)
    madeby_module.put_chains(trace, (per_node[1:] + per_node[:1], table))
    assert answers(trace) != want


def _damaged(good):
    header, body = split(good)
    n_chains = len(header['chains'])
    cols = [c for c in header['columns'] if c[0] != 'made_by']
    at_end = [c for c in header['columns'] if c[0] == 'made_by']
    offset = sum(c[2] * c[3] for c in cols)
    return {
        "'made_by' holds 30, which is not a chain": set_item(good, 'made_by', 40, n_chains),
        "'made_by' holds -2, which is not a chain": set_item(good, 'made_by', 7, -2),
        f"'made_by' holds {n_chains - 1}, which is not a chain (-1..0)": join(dict(header, chains=header['chains'][:1]), body),
        "entry 1 must be 1 to 64 [function, line] pairs": join(dict(header, chains=[header['chains'][0], [['gpt', 'x']]]
                                                                     + header['chains'][2:]), body),
        "entry 0 must be 1 to 64 [function, line] pairs, got []": join(dict(header, chains=[[]] + header['chains'][1:]), body),
        "need both the header's \"chains\" and the 'made_by' column": join(dict(header, columns=cols), body[:offset]),
        "'made_by' has 5 entries": join(dict(header, columns=cols + [[*at_end[0][:3], 5]]), body[:offset + 20]),
        "must be a list": join(dict(header, chains={'gpt': 1}), body),
    }


def test_a_file_whose_chains_are_damaged_is_refused_in_one_line_naming_the_file(files, tmp_path):
    new, _, _ = files
    good = new.read_bytes()
    for why, bad in _damaged(good).items():
        with pytest.raises(TraceFormatError) as e:
            Trace.from_binary(bad)
        assert f"binary trace: made-by chains {why}" in str(e.value), (why, str(e.value))
    # as a user meets it: one line, exit 2, the file named
    path = tmp_path / 'bad.mgtrace'
    path.write_bytes(set_item(good, 'made_by', 40, 10**6))
    r = CliRunner().invoke(cli.main, ['inspect', '--trace', str(path)])
    assert r.exit_code == 2 and r.stderr.strip().splitlines() == [
        f"Error: Invalid value for '--trace': {path}: binary trace: made-by chains 'made_by' holds 1000000, "
        f"which is not a chain (-1..{len(split(good)[0]['chains']) - 1})"], r.stderr


def test_chains_come_with_version_3_only(files):
    new, _, _ = files
    header, body = split(new.read_bytes())
    with pytest.raises(TraceFormatError, match="a column must be .* with a name of"):
        Trace.from_binary(join(dict(header, version=2), body))          # a version 2 file has no such column
    with pytest.raises(TraceFormatError, match="version '4' is not supported; this tool reads versions 1, 2 and 3$"):
        Trace.from_binary(join(dict(header, version=4), body))
    header, body = split(Trace.load(files[1]).to_binary(chains=False))
    assert header['version'] == 3 and 'chains' not in header      # none kept: none written, replayed on open


def test_export_writes_the_chains_and_upgrades_an_older_file(files, tmp_path, monkeypatch):
    monkeypatch.setenv('MICROGPT_CACHE', str(tmp_path / 'cache'))
    monkeypatch.chdir(tmp_path)
    _, old, want = files
    runner = CliRunner()
    r = runner.invoke(cli.main, ['export', '--trace', str(old), '-o', 'up.mgtrace'])
    assert r.exit_code == 0, r.output
    up = Trace.load(tmp_path / 'up.mgtrace')
    assert not needs_replay(up) and answers(up) == want and up == Trace.load(old)
    # a step recorded for export captures its chains as it records (no replay after)
    ran = counted_replays(monkeypatch)
    r = runner.invoke(cli.main, ['export', '--doc', 'abc', '--no-cache', '-o', 'abc.mgtrace'])
    assert r.exit_code == 0, r.output
    abc = Trace.load(tmp_path / 'abc.mgtrace')
    assert ran == [] and not needs_replay(abc)
    fresh = Trace.load(tmp_path / 'abc.mgtrace')
    fresh._cache.clear()
    madeby_module.replay(fresh)
    assert answers(abc) == answers(fresh)


def test_explore_answers_made_by_from_the_file_as_from_a_replay(files):
    """The page's "made by" (the node panel's source) of a file with chains and of the same step in an
    older file (replayed by the server): the same for nodes spread over the step."""
    new, old, _ = files
    n = len(Trace.load(new))
    ids = range(0, n, n // 25)
    got = {}
    for path in (new, old):
        with stopped_in_the_end(_start('--trace', str(path), '--no-check')) as p:
            origin, token = _printed(p.stdout.readline(), wait=True)
            got[path] = _made_by(origin, token, ids)
        assert p.returncode == 0, p.err
        got[path, 'said'] = p.err
    assert got[new] == got[old] and sum(d is not None and len(d['chain']) > 1 for d in got[new].values()) >= 5
    assert 'no made-by lines' not in got[new, 'said'] and 'no made-by lines' in got[old, 'said']


def test_a_step_cache_entry_is_the_same_file_format(tiny, tmp_path, monkeypatch):
    """One serializer: the user step cache's entry is a binary trace file that opens with its chains."""
    from microgpt.recording import stepcache
    monkeypatch.setenv('MICROGPT_CACHE', str(tmp_path / 'cache'))
    monkeypatch.delenv(stepcache.NO_CACHE_ENV, raising=False)
    params, config, tok = tiny
    trace, _ = stepcache.cached_step(params, config, tok, 'abcdef', lines=True)
    [entry] = (tmp_path / 'cache' / 'steps').glob('*.mgtrace')
    loaded = Trace.load(entry)
    assert not needs_replay(loaded) and answers(loaded) == answers(trace)
