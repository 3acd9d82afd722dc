"""Progress of recording and loading a step (issue 25): progress.Phases turns the library's
progress(phase, done, total) into 'phase: 42% (3 s left)' on stderr, only when the work takes
long; record_step tells it each position of the forward pass, then backward and the trace. A
fake clock stands in for time: the lines asserted are the lines written."""

import functools
import io

from click.testing import CliRunner

import cli
from microgpt.recording import record_step
from microgpt_graph import plumbing
from microgpt_graph.progress import Phases
from tests.tiny_model import tiny_model


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def feed(phases, clock, calls):
    """calls: (seconds later, phase, done, total)."""
    for dt, *call in calls:
        clock.now += dt
        phases(*call)


def test_a_log_gets_plain_lines_once_the_work_is_long():
    clock, out = Clock(), io.StringIO()
    phases = Phases(file=out, tty=False, clock=clock, log_after=5, every=5)
    feed(phases, clock, [(0, 'recording', 0, 10), (2, 'recording', 1, 10), (2, 'recording', 2, 10),
                         (2, 'recording', 3, 10),     # 6 s in: the first line
                         (2, 'recording', 4, 10),     # 2 s after it: none
                         (4, 'recording', 6, 10),     # 6 s after it: one
                         (8, 'recording', 10, 10),    # done: always
                         (0.1, 'backward', 0, 1), (0.2, 'backward', 1, 1)])   # a short phase: none
    assert out.getvalue().splitlines() == ['recording: 30% (14 s left)', 'recording: 60% (8 s left)',
                                           'recording: 100% (20.0 s)']


def test_quick_work_prints_nothing_and_quiet_prints_nothing_at_all():
    for quiet, tty, seconds, want in ((False, False, 0.3, ''), (False, True, 0.1, ''), (True, True, 30, ''),
                                      (True, False, 30, '')):
        clock, out = Clock(), io.StringIO()
        phases = Phases(quiet, file=out, tty=tty, clock=clock)
        feed(phases, clock, [(0, 'recording', 0, 4), (seconds, 'recording', 2, 4), (seconds, 'recording', 4, 4)])
        assert out.getvalue() == want, (quiet, tty)


def test_a_terminal_gets_one_line_rewritten_then_ended():
    clock, out = Clock(), io.StringIO()
    phases = Phases(file=out, tty=True, clock=clock, after=0.5)
    feed(phases, clock, [(0, 'loading', 0, 1), (0.25, 'recording', 0, 4), (0.5, 'recording', 1, 4),
                         (0.0625, 'recording', 2, 4),   # within 0.1 s of the last: not redrawn
                         (0.5, 'recording', 3, 4), (0.5, 'recording', 4, 4)])
    assert out.getvalue() == ('\r\x1b[Krecording: 25% (2 s left)' '\r\x1b[Krecording: 75% (0 s left)'
                              '\r\x1b[Krecording: 100% (1.6 s)\n')


def test_a_phase_that_stops_before_its_end_has_its_line_ended_before_the_error():
    clock, out = Clock(), io.StringIO()
    phases = Phases(file=out, tty=True, clock=clock, after=0.5)
    feed(phases, clock, [(0, 'inflating', 0, 4), (1, 'inflating', 1, 4)])
    phases.close()          # the load failed here: the error printed next starts its own line
    phases.close()
    feed(phases, clock, [(1, 'checking', 0, 1), (1, 'checking', 1, 1)])
    phases.close()          # an ended line: nothing more
    assert out.getvalue() == ('\r\x1b[Kinflating: 25% (3 s left)\n'
                              '\r\x1b[Kchecking: 0% (time left unknown)\r\x1b[Kchecking: 100% (1.0 s)\n')


def test_loading_a_trace_tells_its_phases_binary_and_json(tmp_path):
    """What explore --trace shows while it opens a file (Recordings.open), from the loader itself:
    reading, then inflating (bytes of the columns, up to all of them) and checking (the columns,
    then the stored indexes) of a binary file; parsing and checking of a JSON one; then the
    replay of the forward pass for "made by", one position at a time."""
    from microgpt.recording import Trace
    from microgpt.recording.madeby import needs_replay, replay
    params, config, tok = tiny_model()
    trace = record_step(params, config, tok, 'abcd')
    trace.to_binary(tmp_path / 'a.mgtrace')
    (tmp_path / 'a.json').write_text(trace.to_json())
    told = []
    loaded = Trace.load(tmp_path / 'a.mgtrace', lambda *call: told.append(call))
    inflated = [c for c in told if c[0] == 'inflating']
    body = sum(col.itemsize * len(col) for col in (loaded.op, loaded.data, loaded.grad, loaded.scope, loaded.child,
                                                    loaded.child_ptr, loaded.local, loaded.backward_order))
    assert told[:2] == [('reading', 0, 1), ('reading', 1, 1)] and told[-3:] == [
        ('checking', 0, 2), ('checking', 1, 2), ('checking', 2, 2)]
    total = inflated[0][2]
    assert total > body and inflated[-1][1:] == (total, total)        # the columns and the stored indexes
    assert [d for _, d, _ in inflated] == sorted({d for _, d, _ in inflated})    # only forward
    told.clear()
    from_json = Trace.load(tmp_path / 'a.json', lambda *call: told.append(call))
    assert told == [('reading', 0, 1), ('reading', 1, 1), ('parsing', 0, 1), ('parsing', 1, 1),
                    ('checking', 0, 1), ('checking', 1, 1)]
    told.clear()
    assert needs_replay(from_json)
    replay(from_json, lambda *call: told.append(call))
    assert told == [('replaying the forward pass', p, 5) for p in range(5)] + [('replaying the forward pass', 5, 5)]
    assert not needs_replay(from_json)


def test_building_indexes_is_told_only_for_a_file_that_lacks_them(tmp_path):
    """explore --trace tells 'building indexes' (Recordings.open) for a file without them (JSON, version 1):
    a part at a time; for one that stores them (every binary file written now) nothing, not a phase at 100%
    that did nothing."""
    from microgpt.recording import Trace
    params, config, tok = tiny_model()
    trace = record_step(params, config, tok, 'abcd')
    trace.to_binary(tmp_path / 'a.mgtrace')
    trace.to_binary(tmp_path / 'bare.mgtrace', indexes=False)
    told = []
    stored = Trace.load(tmp_path / 'a.mgtrace')
    assert stored.build_indexes(lambda *call: told.append(call)) and told == []
    bare = Trace.load(tmp_path / 'bare.mgtrace')
    bare.build_indexes(lambda *call: told.append(call))
    assert told == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert {n: c.tobytes() for n, c in bare.build_indexes().items()} == {
        n: c.tobytes() for n, c in stored.build_indexes().items() if n in bare.build_indexes()}


def test_record_step_tells_each_position_then_backward_then_the_trace():
    params, config, tok = tiny_model()
    told = []
    trace = record_step(params, config, tok, 'abcd', progress=lambda *call: told.append(call))
    assert told == [('recording', p, 5) for p in range(5)] + [
        ('recording', 5, 5), ('backward', 0, 1), ('backward', 1, 1), ('building the trace', 0, 1),
        ('building the trace', 1, 1)]
    assert trace == record_step(params, config, tok, 'abcd')     # listening changes nothing recorded


def test_render_reports_its_phases_on_stderr_and_not_with_q(tmp_path, monkeypatch):
    monkeypatch.setenv('MICROGPT_CACHE', str(tmp_path / 'cache'))
    monkeypatch.setattr(plumbing, 'Phases', functools.partial(Phases, tty=False, log_after=0, every=0))
    args = ['render', '--doc', 'abc', '--format', 'dot', '--no-cache', '-o', str(tmp_path / 'v.dot')]
    r = CliRunner().invoke(cli.main, args)
    assert r.exit_code == 0, r.output
    lines = r.stderr.splitlines()
    assert [t for t in lines if t.startswith('recording: ')][0] == 'recording: 0% (time left unknown)'
    assert [t.split(':')[0] for t in lines if t.endswith(' s)')] == [
        'recording', 'backward', 'building the trace']
    r = CliRunner().invoke(cli.main, [*args, '-q'])
    assert r.exit_code == 0 and r.stderr == ''
    cached = [*args[:-3], '-o', str(tmp_path / 'w.dot')]
    r = CliRunner().invoke(cli.main, cached)   # with the cache: recorded, then stored
    assert [t.split(':')[0] for t in r.stderr.splitlines() if t.endswith(' s)')] == [
        'recording', 'backward', 'building the trace', 'building the use records', 'storing the recorded step']
    r = CliRunner().invoke(cli.main, cached)   # then read
    assert [t.split(':')[0] for t in r.stderr.splitlines() if t.endswith(' s)')] == ['loading the recorded step']
