"""Issue 21's harness: every class of hostile case, run once, counted, and a table of how clean it was.

    nice python -m benchmarks.bench_hostile [--quick] [--only WORDS] [--jobs N]

Exit 0 when every case of every class is clean, 1 otherwise. The cases are the project's own, never a
second copy: the HTTP classes run the case lists and the check of one case of tests/hostile_cases.py
here, case by case, against one explorer on 127.0.0.1 (tests/test_explorer_access.py runs the same);
the classes that need a browser, processes or files run their test modules under pytest (each test
one case, its own assertions its verdict); the load class is benchmarks/bench_explorer_slow_clients.py.

Columns, per class:
  cases         what ran (a skipped test counts as unclean: the harness did not see it pass)
  clean         exit 0/1/2 with one line, HTTP 4xx with one line of JSON, or the answer the case asks for
  tracebacks    a 500 (the server printed a traceback), or a failed test whose report shows one
  files damaged files changed by the class: every file git tracks here (tracked_files), the names data, the cases' own
                checkpoints and names (sha256 before and after)
  processes     processes of ours still running 5 s after the class ended: this process is a child
    left        subreaper (prctl), so whatever a test or its children left behind is re-parented to it
                and found; they are killed after being counted
  cross-origin  a request from another page (no token, another Origin or Sec-Fetch-Site, a request
    effects     hidden in a body, a cross-origin page in Chromium) that made the server record, load,
                train or draw anything ('-': the class sends none)
"""

import argparse
import contextlib
import ctypes
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from tests import hostile_cases as hc

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ('class', 'cases', 'clean', 'tracebacks', 'files damaged', 'processes left', 'cross-origin effects')

# (class, pytest arguments): each test one case
PYTEST = [
    ('cross-origin pages in Chromium', ['tests/test_explorer_attacks_browser.py'], True),
    ('hostile trace text in Chromium', ['tests/test_explorer_escaping_browser.py'], False),
    ('slow and half-open clients', ['tests/test_explorer_access.py', '-k', 'half_open or trickling or slow_clients'],
     False),
    ('long work: train, record, cancel', ['tests/test_explorer_long_work.py'], False),
    ('hostile traces (both codecs)', ['tests/test_hardening_codecs.py'], False),
    ('hostile files, checkpoints, CLI', ['tests/test_hardening_defects.py', 'tests/test_hardening_fuzz.py'], False),
    ('NaN/inf traces and scripts', ['tests/test_hardening_nonfinite.py'], False),
    ('tours and smaller failures', ['tests/test_hardening_reliability.py', '-k', 'not ctrl_c and not children'], False),
    ('signals', ['tests/test_record_lifetime.py', 'tests/test_hardening_reliability.py',
                 '-k', 'killed or timeout_stops or descendants or ctrl_c or children'], False),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--quick', action='store_true', help='a tenth of the endpoint x hostile value cases, '
                    'a shorter load (to try the harness; the counts to report come without it)')
    ap.add_argument('--only', help='run the classes whose name contains one of these words (comma-separated)')
    ap.add_argument('--jobs', type=int, default=2, help='pytest-xdist workers for the pytest classes')
    a = ap.parse_args()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:        # PR_SET_CHILD_SUBREAPER: our orphans come back to us
        sys.exit("bench_hostile: cannot become a child subreaper (prctl); processes left would go unseen")
    wanted = [w.strip().lower() for w in a.only.split(',')] if a.only else None
    rows = []
    with tempfile.TemporaryDirectory(prefix='hostile-') as tmp:
        offered = hc.offered_files(Path(tmp))
        watched = tracked_files() + [Path(tmp) / n for n in ('start.json', 'secret.json', 'names.txt',
                                                              'runs/later.json', 'runs/.hidden.json')]
        if os.environ.get('MICROGPT_DATA'):
            watched.append(Path(os.environ['MICROGPT_DATA']))
        for name, run in classes(offered, a):
            if wanted and not any(w in name.lower() for w in wanted):
                continue
            print(f"-- {name}", flush=True)
            before = hashes(watched)
            t0 = time.monotonic()
            row = run()
            row['files damaged'] = sum(before.get(p) != h for p, h in hashes(watched).items())
            row['processes left'] = left_behind()
            row['class'] = name
            rows.append(row)
            print(f"   {row['clean']}/{row['cases']} clean in {time.monotonic() - t0:.0f} s", flush=True)
    print()
    table(rows)
    unclean = [r['class'] for r in rows if r['clean'] != r['cases'] or r['cases'] == 0 or any(
        isinstance(r[c], int) and r[c] for c in COLUMNS[3:])]
    if unclean:
        print(f"unclean: {', '.join(unclean)}")
    sys.exit(1 if unclean else 0)


def classes(offered, a):
    """(name, run) of every class, in the order they run; run() -> the class's row."""
    yield 'smuggled requests', lambda: http_class(offered, [(hc.smuggle, c) for c in hc.SMUGGLING], foreign=True)
    yield 'token and origin', lambda: http_class(
        offered, [(hc.foreign, (e, *c)) for c in hc.FOREIGN for e in hc.ENDPOINTS], foreign=True)
    yield 'checkpoint paths', lambda: http_class(offered, [
        (hc.unoffered, (e, f, p)) for f in hc.CHECKPOINT_FIELDS for e in hc.CHECKPOINT_ENDPOINTS
        for p in hc.unoffered_paths(offered[1], offered[2])], same_answer=True)
    yield 'malformed HTTP', lambda: http_class(offered, [(hc.malformed, c) for c in hc.MALFORMED])
    values = hc.hostile_values()[::10] if a.quick else hc.hostile_values()
    yield 'endpoint x field x hostile value', lambda: http_class(offered, [(hc.hostile_value, c) for c in values])
    for name, args, foreign in PYTEST:
        yield name, lambda args=args, foreign=foreign: pytest_class(args, foreign, a.jobs)
    clients, seconds = (60, 8.0) if a.quick else (300, 12.0)
    yield f'load: {clients} half-open + {clients} slow clients', lambda: load_class(clients, seconds)


def http_class(offered, cases, foreign=False, same_answer=False):
    """Each (check, args) of tests/hostile_cases.py against one explorer: clean unless it raised."""
    row = {'cases': len(cases), 'clean': 0, 'tracebacks': 0, 'cross-origin effects': 0 if foreign else '-'}
    answers = {}
    with hc.hostile_server(offered) as server:
        for check, args in cases:
            try:
                said = check(server, *args)
            except hc.Unclean as e:
                row['tracebacks'] += e.kind == 'traceback'
                if foreign and e.kind == 'side effect':
                    row['cross-origin effects'] += 1
                print(f"   unclean: {str(e)[:300]}", flush=True)
                continue
            except Exception as e:          # noqa: BLE001 -- a case the harness could not run is unclean
                print(f"   unclean (the case did not run): {type(e).__name__}: {e} {args!r}"[:300], flush=True)
                continue
            answers.setdefault(args[:2], set()).add(said)
            row['clean'] += 1
        server.api.work.cancel()
    if same_answer:                         # one answer for every path: no existence oracle
        for group, said in answers.items():
            if len(said) > 1:
                print(f"   unclean: {group} answered {len(said)} ways: {sorted(said)[:3]}", flush=True)
                row['clean'] -= sum(1 for c, args in cases if args[:2] == group)
    return row


def pytest_class(args, foreign, jobs):
    """The tests `args` select, under pytest in a process of their own: one case each."""
    with tempfile.TemporaryDirectory(prefix='hostile-pytest-') as tmp:
        report = Path(tmp) / 'report.xml'
        command = [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', f'--junitxml={report}', *args]
        if jobs > 1:
            command[3:3] = ['-n', str(jobs)]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if not report.exists():
            print(done.stdout[-2000:] + done.stderr[-2000:])
            return {'cases': 0, 'clean': 0, 'tracebacks': 0, 'cross-origin effects': '-'}
        cases = list(ET.parse(report).getroot().iter('testcase'))
    failed = [c for c in cases if c.find('failure') is not None or c.find('error') is not None]
    skipped = [c for c in cases if c.find('skipped') is not None]
    for c in failed + skipped:
        what = next(e for e in (c.find('failure'), c.find('error'), c.find('skipped')) if e is not None)
        print(f"   unclean: {c.get('name')}: {(what.get('message') or '')[:200]}", flush=True)
    texts = [''.join(c.itertext()) for c in failed]
    return {'cases': len(cases), 'clean': len(cases) - len(failed) - len(skipped),
            'tracebacks': sum('Traceback (most recent call last)' in t or 'internal error' in t for t in texts),
            'cross-origin effects': len(failed) if foreign else '-'}


def load_class(clients, seconds):
    """benchmarks/bench_explorer_slow_clients.py: the page's requests during the attack (each a case:
    clean when answered) and every attacking connection let go by the server's deadline."""
    from benchmarks.bench_explorer_slow_clients import attack
    served, sent, let_go, opened = attack(clients, seconds)
    return {'cases': sent + opened, 'clean': served + let_go, 'tracebacks': 0, 'cross-origin effects': '-'}


def tracked_files():
    """Every file git tracks here (outside a git checkout, e.g. an unpacked `git archive`: every file
    but hidden folders, caches and the tests' artifacts)."""
    got = subprocess.run(['git', 'ls-files', '-z'], cwd=ROOT, capture_output=True)
    if got.returncode == 0:
        return [ROOT / p for p in got.stdout.decode().split('\0') if p]
    return [p for p in ROOT.rglob('*') if p.is_file() and not any(
        part.startswith('.') or part in ('__pycache__', 'artifacts') for part in p.relative_to(ROOT).parts)]


def hashes(paths):
    got = {}
    for p in paths:
        with contextlib.suppress(OSError):
            got[p] = hashlib.sha256(p.read_bytes()).hexdigest()
    return got


def our_children():
    """The processes whose parent is this one (as a subreaper: whatever our descendants left)."""
    me, out = str(os.getpid()), []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                status = Path(f'/proc/{entry}/status').read_text()
                fields = dict(line.split(':\t', 1) for line in status.splitlines() if ':\t' in line)
                if fields.get('PPid', '').strip() == me and not fields.get('State', '').startswith('Z'):
                    out.append(int(entry))
    return out


def left_behind(grace=5.0):
    """How many of our processes still run `grace` s after a class ended (then killed: ours)."""
    end = time.monotonic() + grace
    while our_children() and time.monotonic() < end:
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        time.sleep(0.1)
    left = our_children()
    for pid in left:
        print(f"   left running: {pid} {Path(f'/proc/{pid}/cmdline').read_bytes()[:200]!r}", flush=True)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    return len(left)


def table(rows):
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in COLUMNS]
    print('  '.join(c.ljust(w) for c, w in zip(COLUMNS, widths)))
    for r in rows:
        print('  '.join(str(r[c]).ljust(w) for c, w in zip(COLUMNS, widths)))
    total = {c: sum(r[c] for r in rows if isinstance(r[c], int)) for c in COLUMNS[1:]}
    print('  '.join([('all').ljust(widths[0])] + [str(total[c]).ljust(w) for c, w in zip(COLUMNS[1:], widths[1:])]))


if __name__ == '__main__':
    main()
