"""A big step recorded now is recorded and stored in a process of its own (recording.apart): the server's copy is
the in-process recording bit for bit ("made by" chains and use records too), its use records are attached as soon
as the child has built them, before the entry is written (a view asked meanwhile reads them, not the edges), a
failing child is one line and the server goes on, and no child outlives its server (nor its store).

In-process servers on 127.0.0.1 with the threshold at 0 (Recordings.apart: every step recorded now goes apart),
real HTTP; and a real `explore` process recording a 600,000-node step at start (the default threshold), stopped
with Ctrl-C during its store. The child is held where a test needs it by a gate file (GATED: the real child,
waiting before it writes the entry)."""

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest

import graphviz_export.select as select
from microgpt.recording import Trace, apart, record_step, stepcache
from microgpt.recording.codecs import TraceFormatError
from microgpt.recording.madeby import kept_chains
from microgpt.recording.uses import FIGURE_COLUMNS, USE_COLUMNS, held, use_figures, use_records
from tests.explorer_helpers import default_signals, get_json, running_server
from tests.test_explorer_cli import ROOT, _api, _printed

# the real child, waiting before it writes the entry until the file GATE exists
GATED = ("import os, time\nimport microgpt.recording.apart as a\nreal = a.store\n"
         "def store(*args):\n    while not os.path.exists({gate!r}):\n        time.sleep(0.05)\n    return real(*args)\n"
         "a.store = store\na.child()")
CHRISTOPHER = ('christopher', None, 42)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv('MICROGPT_CACHE', str(tmp_path / 'cache'))
    monkeypatch.delenv('MICROGPT_NO_STEP_CACHE', raising=False)
    return tmp_path / 'cache' / 'steps'


@pytest.fixture
def children(monkeypatch):
    """Every Apart made meanwhile: each one's process must have ended by the test's end."""
    made, real = [], stepcache.Apart

    def watched(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]
    monkeypatch.setattr(stepcache, 'Apart', watched)
    yield made
    deadline = time.monotonic() + 10
    while any(a.process.poll() is None for a in made) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [a.process.poll() is None for a in made] == [False] * len(made)


def _same_records(got, want):
    names = [n for n, _ in (*USE_COLUMNS, *FIGURE_COLUMNS)]
    assert {n: got.index(n).tobytes() for n in names} == {n: want[n].tobytes() for n in names}


def _recorded(server, doc, seconds=120):
    deadline = time.monotonic() + seconds
    while True:
        status, got = get_json(server, f'/api/record?doc={doc}')
        if status != 200 or got['ready'] or time.monotonic() > deadline:
            return status, got
        time.sleep(0.05)


def _settled(server, seconds=120):
    deadline = time.monotonic() + seconds
    while server.api.work.running('store') and time.monotonic() < deadline:
        time.sleep(0.05)
    return server.api.work.running('store')


def test_a_step_recorded_apart_is_the_in_process_recording_bit_for_bit(cache, children, recorded_christopher):
    from microgpt.checkpoint import load_model
    params, config, tokenizer = load_model(None, 42)
    stores, phases = [], []
    trace, reused = stepcache.cached_step(params, config, tokenizer, 'christopher', lines=True, later=stores.append,
                                          apart=0, progress=lambda *told: phases.append(told[0]))
    here = record_step(params, config, tokenizer, 'christopher', lines=True)
    assert reused is None and len(children) == 1 and trace == here == recorded_christopher
    (ids, table), (want_ids, want_table) = kept_chains(trace), kept_chains(here)
    assert ids.tobytes() == want_ids.tobytes() and [list(map(list, c)) for c in table] == [list(map(list, c)) for c in want_table]
    assert phases[0] == 'recording' and phases[-1] == apart.HANDOVER and not held(trace)
    trace.build_indexes()                   # as the first view does before the store is started
    [store] = stores
    [entry] = [store(lambda *told: phases.append(told[0]))]
    assert held(trace) and entry.is_file() and children[0].process.poll() is not None
    want = use_records(here)
    want.update(use_figures(here, want))
    _same_records(trace, want)
    stored = Trace.load(entry)
    assert stored == here and held(stored)
    _same_records(stored, want)
    assert stepcache.cached_step(params, config, tokenizer, 'christopher', lines=True, apart=0)[1] == entry


def test_a_view_asked_while_the_child_writes_the_entry_reads_the_use_records(cache, children, tmp_path, monkeypatch):
    """The records come before the entry is written (the child held at its gate there): the server's trace holds
    them and a matrix's view is drawn from them (select reads stored uses), the same view as after the store."""
    gate = tmp_path / 'gate'
    monkeypatch.setattr(apart, '_CHILD', GATED.format(gate=str(gate)))
    read, select_real = [], select.stored_uses

    def spied(trace, name):
        got = select_real(trace, name)
        read.append(got is not None)
        return got
    monkeypatch.setattr(select, 'stored_uses', spied)
    with running_server(doc='emma') as server:
        recordings = server.api.recordings
        try:
            assert _settled(server) == []
            recordings.apart = 0
            assert _recorded(server, 'christopher')[1]['ready'] and len(children) == 1
            trace = recordings.get(CHRISTOPHER)
            assert not held(trace)
            status, _ = get_json(server, '/api/view?doc=christopher')     # its first view: the store starts
            assert status == 200
            deadline = time.monotonic() + 60
            while not held(trace) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert held(trace) and server.api.work.running('store') and children[0].process.poll() is None
            assert len(list(cache.glob(f'*{stepcache.SUFFIX}'))) == 1          # emma's only: not written yet
            read.clear()
            status, during = get_json(server, '/api/view?doc=christopher&view=param&param=wte')
            assert status == 200 and during['kind'] == 'matrix' and read and all(read)
            gate.touch()
            assert _settled(server) == []
            assert len(list(cache.glob(f'*{stepcache.SUFFIX}'))) == 2      # emma's and christopher's
            server.api.views.clear()          # drawn again, from the records
            status, after = get_json(server, '/api/view?doc=christopher&view=param&param=wte')
            assert status == 200 and after['svg'] == during['svg'] and after['nodes'] == during['nodes']
        finally:
            gate.touch()
            recordings.close()


def test_a_failing_child_is_one_line_and_the_server_goes_on(cache, children, tmp_path, monkeypatch):
    told = []
    with running_server(doc='emma', note=told.append) as server:
        recordings = server.api.recordings
        try:
            assert _settled(server) == []
            recordings.apart = 0
            # the child ends before it hands the step over: the recording's error, one line
            child = apart._CHILD
            monkeypatch.setattr(apart, '_CHILD', 'import sys; sys.exit(3)')
            status, got = _recorded(server, 'anna')
            assert status == 500 and got['error'] == 'internal error: ApartError: the recording process ended (exit status 3)'
            status, view = get_json(server, '/api/view')
            assert status == 200 and view['title'].endswith("of 'emma': 'a' -> '<BOS>'")
            # the child cannot write the entry: its store fails in one line, the step is shown
            monkeypatch.setattr(apart, '_CHILD', child)
            monkeypatch.setenv('MICROGPT_CACHE', str(tmp_path / 'not-a-folder'))
            (tmp_path / 'not-a-folder').write_text('a file where the cache folder would be')
            assert _recorded(server, 'christopher')[1]['ready']
            status, view = get_json(server, '/api/view?doc=christopher&view=param&param=wte')
            assert status == 200 and view['kind'] == 'matrix'
            assert _settled(server) == []
            assert held(recordings.get(CHRISTOPHER))        # the records came before the write failed
        finally:
            recordings.close()
    [line] = [t for t in told if 'user cache' in t]
    assert line.startswith("could not store the step of 'christopher' in the user cache (OSError: ") and 'Error' in line[60:]
    assert line.endswith('); it is shown, not kept') and '\n' not in line


def test_a_big_step_recorded_at_start_goes_apart_and_no_child_outlives_a_stopped_server(tmp_path):
    """`explore` recording a 600,000-node step at start (over APART): stopped with Ctrl-C while its child, held at
    its gate, has not written the entry, it says the step was not kept, and its process group is empty soon after."""
    from benchmarks.bench_explorer_scale import big_checkpoint
    ckpt = big_checkpoint(tmp_path, 2, 32)
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED='1', MICROGPT_CACHE=str(tmp_path / 'cache'),
               GATE=str(tmp_path / 'gate'))
    env.pop('MICROGPT_NO_STEP_CACHE', None)
    code = ("import sys, microgpt.recording.apart as a\na._CHILD = {child!r}\nfrom microgpt_graph.cli import main\n"
            "sys.argv[0] = 'microgpt-graph'\nmain()").format(child=GATED.format(gate=str(tmp_path / 'gate')))
    p = subprocess.Popen([sys.executable, '-c', code, 'explore', '--no-browser', '--no-check', '--doc', 'christopher',
                          '--checkpoint', str(ckpt)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env, start_new_session=True, preexec_fn=default_signals)
    try:
        origin, token = _printed(p.stdout.readline(), wait=True)
        status, view = _api(origin, token, '/api/view?view=param&param=layer1.mlp_fc1')
        assert status == 200 and view['kind'] == 'matrix'
        assert [j['what'] for j in _api(origin, token, '/api/progress')[1]['work'] if j['kind'] == 'store'] == [
            "storing 'christopher' in the user cache"]
        assert len(_group(p.pid)) == 2      # the server and its child, held at the gate (its group: the server's id)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        deadline = time.monotonic() + 5
        while _group(p.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _group(p.pid) == []
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)        # whatever a failed test left
        if p.poll() is None:
            p.communicate()
    assert 'Traceback' not in err and list((tmp_path / 'cache').rglob('*.mgtrace')) == [] and out.endswith('stopped\n')
    assert err.splitlines()[-1] == ("the step being stored in the user cache was not kept (stopped before the store "
                                      "ended); the next start records it again"), err


def _group(pgid):
    """The ids of the live processes of process group `pgid` (/proc, Linux; a zombie is not live)."""
    found = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/stat') as f:
                    fields = f.read().rsplit(')', 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != 'Z':
                found.append(int(entry))
    return found


# the real child, waiting before it records the step until the file GATE exists (its columns' file not yet written)
HELD = ("import os, time\nimport microgpt.recording.apart as a\nreal = a.record_step\n"
        "def record_step(*args, **kwargs):\n    while not os.path.exists({gate!r}):\n        time.sleep(0.05)\n"
        "    return real(*args, **kwargs)\n"
        "a.record_step = record_step\na.child()")


def _columns_files(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(apart._PREFIX))


def test_the_columns_file_goes_when_the_recording_is_cancelled_or_its_server_killed(tmp_path, monkeypatch):
    """The file the child writes the step's columns to is the server's own (made before the child starts): a cancelled
    recording (Apart.close with the child held) removes it; a server killed outright (SIGKILL, nothing of it runs)
    leaves it to its child, which removes it as it ends. No temp file outlives either."""
    from microgpt.checkpoint import load_model
    temp = tmp_path / 'temp'
    temp.mkdir()
    monkeypatch.setenv('TMPDIR', str(temp))
    monkeypatch.setattr(apart.tempfile, 'tempdir', None)        # gettempdir() reads TMPDIR again
    monkeypatch.setattr(apart, '_CHILD', HELD.format(gate=str(tmp_path / 'gate')))
    params, config, tokenizer = load_model(None, 42)
    try:
        held_child = apart.Apart(params, config, tokenizer, 'emma')
        assert _columns_files(temp) == [held_child.columns.name]
        held_child.close()
        assert _columns_files(temp) == [] and held_child.process.poll() is not None
    finally:
        monkeypatch.undo()
    # a server process killed while its child is held: the child sees its parent gone, removes the file, ends
    env = dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(temp))
    code = ("import sys, microgpt.recording.apart as a\nfrom microgpt.checkpoint import load_model\n"
            f"a._CHILD = {HELD.format(gate=str(tmp_path / 'gate'))!r}\n"
            "child = a.Apart(*load_model(None, 42), 'emma')\nprint(child.process.pid, flush=True)\nsys.stdin.read()")
    server = subprocess.Popen([sys.executable, '-c', code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env=env, start_new_session=True)
    try:
        child_pid = int(server.stdout.readline())
        assert len(_columns_files(temp)) == 1
        server.kill()
        server.wait(10)
        deadline = time.monotonic() + 10
        while (_columns_files(temp) or _group(server.pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _columns_files(temp) == [] and child_pid not in _group(server.pid)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(server.pid, signal.SIGKILL)
        if server.poll() is None:
            server.communicate()
        server.stdin.close()
        server.stdout.close()


def test_the_use_records_come_whole_or_are_refused(recorded_christopher):
    """A 'u' message holds all the use records, or all their figures; anything else (a column missing, one cut
    short, a column it should not hold) is refused, not attached."""
    trace = Trace.from_binary(recorded_christopher.to_binary(indexes=False))
    records = use_records(trace)
    figures = use_figures(trace, records)
    assert apart.records_of(apart.pack_records(records)).keys() == records.keys()
    assert apart.records_of(apart.pack_records(figures)).keys() == figures.keys()
    apart.attach(trace, apart.records_of(apart.pack_records(records)))
    assert held(trace) and 'use_fig_data_min' not in trace._index
    apart.attach(trace, apart.records_of(apart.pack_records(figures)))
    _same_records(trace, {**records, **figures})
    for bad in ({k: v for k, v in records.items() if k != 'use_kids'}, {'op': trace.op},
                {**records, 'use_ptr': records['use_ptr'][:-1]}):
        raw = apart.pack_records(bad)
        if 'use_ptr' in bad and len(bad['use_ptr']) < len(records['use_ptr']):
            raw = raw[:-1]          # cut short
        with pytest.raises(TraceFormatError):
            apart.records_of(raw)
