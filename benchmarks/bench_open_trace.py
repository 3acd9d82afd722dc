"""Opening a saved binary trace, as a user meets it (issue 25: explorer first view <= 3 s after a cached
binary load, <= 10 s from a cold binary file, at 4 x 64). Prints figures, asserts nothing.

    python -m benchmarks.bench_open_trace FILE [FILE ...] [--reps 2] [--tree PATH ...] [--commands explore,render,inspect]
    python -m benchmarks.bench_open_trace --case TREE FILE [--case TREE FILE ...] [--checkpoint CKPT --doc DOC]

Each run is a fresh process on a file it has not opened before ("cold" as far as a user without
root can make it: the page cache is the machine's, so a file read twice is in memory after the first):
  explore   `explore --trace FILE --no-browser --port 0`: seconds from the command to the URL printed,
            and to /api/progress listing no opening (the first view drawn: the page shows it at once)
  cached    `explore --checkpoint CKPT --doc DOC`, its step in the user cache: FILE's trace stored there
            by TREE itself (to_binary, in a cache folder of that tree's own) before the timed runs
  load      `Trace.load(FILE)` in a fresh process: wall and CPU seconds (every thread's), the peak resident
            MB, then `to_binary()` of it (saving: wall and CPU seconds, the bytes it makes with TREE's codec)
  render    `render --trace FILE -o VIEW.svg` (its default view, laid out): the command's wall and CPU time
  inspect   `inspect --trace FILE`: the command's wall and CPU time
and the phases the opening told (reading, inflating, checking, replaying, building indexes, drawing
the first view), polled from /api/progress every 50 ms, the CPU seconds the process used by then
(/proc: what the machine's load does not inflate) and its peak resident memory (VmHWM) and at rest.
FILEs and --tree checkouts (PYTHONPATH, default this one) alternate, A B B A ..., so a pair shares
the machine's load (every tree on every file; --case TREE FILE: those pairs only, e.g. an old tree on
its file and a new one on the same step re-saved in its format); medians per (tree, file, command).
State the load: printed at each run.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent


def _env(tree):
    return dict(os.environ, PYTHONPATH=str(tree), PYTHONUNBUFFERED='1')


def cpu_seconds(pid):
    """User + system CPU seconds process `pid` has used so far (Linux /proc; None elsewhere): a
    figure the machine's load does not inflate, unlike wall time."""
    try:
        fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def memory_mb(pid):
    """(peak, now) resident MB of process `pid` (Linux /proc: VmHWM, VmRSS; None elsewhere)."""
    try:
        lines = dict(ln.split(':', 1) for ln in Path(f'/proc/{pid}/status').read_text().splitlines() if ':' in ln)
    except OSError:
        return None, None
    return tuple(round(int(lines[k].split()[0]) / 1024) for k in ('VmHWM', 'VmRSS'))


def explore(tree, opened, env=None):
    """(s to the URL, s to the first view drawn, {phase: s}, CPU s then, (peak MB, MB) then) of one
    `explore` process on `opened` (its arguments: --trace FILE, or a checkpoint and a document)."""
    t0 = time.monotonic()
    p = subprocess.Popen([sys.executable, str(Path(tree) / 'cli.py'), 'explore', *opened, '--no-browser',
                          '--no-check', '--port', '0'], cwd=tree, env=env or _env(tree), stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    try:
        line = p.stdout.readline()
        if 'http://' not in line:
            raise SystemExit(f"explore did not start: {line!r}")
        t_url = time.monotonic() - t0
        parts = urlsplit(line.split()[2])
        req = urllib.request.Request(f'{parts.scheme}://{parts.netloc}/api/progress',
                                     headers={'X-Explorer-Token': parts.fragment[len('token='):]})
        phases, last = {}, None
        while True:
            with urllib.request.urlopen(req, timeout=120) as r:
                work = [j for j in json.loads(r.read())['work'] if j['kind'] == 'open']
            now = time.monotonic() - t0
            if not work:
                break
            phase = work[0].get('phase')
            if phase != last:
                phases.setdefault(phase, now)
                last = phase
            time.sleep(0.05)
        return t_url, now, _durations(phases, now), cpu_seconds(p.pid), memory_mb(p.pid)
    finally:
        p.terminate()
        p.wait()


def _durations(starts, end):
    """{phase: seconds} from {phase: when first seen} (polled every 50 ms: +-0.05 s each)."""
    items = sorted(starts.items(), key=lambda kv: kv[1])
    return {ph: round(b - a, 2) for (ph, a), (_, b) in zip(items, items[1:] + [(None, end)])}


def command(tree, args):
    """(wall s, CPU s) of one command run to its end."""
    t0, used = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run([sys.executable, str(Path(tree) / 'cli.py'), *args], cwd=tree, env=_env(tree),
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{args[0]} failed: {r.stderr.strip()[-400:]}")
    now = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.monotonic() - t0, now.ru_utime + now.ru_stime - used.ru_utime - used.ru_stime


SEED_CACHE = """
import sys
from microgpt.checkpoint import load_checkpoint
from microgpt.recording import Trace
from microgpt.recording.stepcache import entry_path, step_key
params, config, tokenizer = load_checkpoint(sys.argv[1])[:3]
path = entry_path(step_key(params, config, tokenizer, sys.argv[2]))
path.parent.mkdir(parents=True, exist_ok=True)
Trace.load(sys.argv[3]).to_binary(path)
"""


LOAD_SAVE = """
import json, resource, sys, time
from microgpt.recording import Trace
def timed(fn):
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t, time.process_time() - c
trace, wall, cpu = timed(lambda: Trace.load(sys.argv[1]))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
raw, save_wall, save_cpu = timed(trace.to_binary)
print(json.dumps([wall, cpu, peak, save_wall, save_cpu, len(raw)]))
"""


def load_save(tree, path):
    """(load wall s, CPU s, peak MB, save wall s, CPU s, bytes) of a fresh process in `tree`."""
    r = subprocess.run([sys.executable, '-c', LOAD_SAVE, str(path)], cwd=tree, env=_env(tree), check=True,
                       stdout=subprocess.PIPE, text=True)
    return json.loads(r.stdout)


def seed_cache(tree, folder, ckpt, doc, path):
    """The env of `tree` with its user cache in `folder`, holding FILE's trace as the step of `doc` on
    `ckpt` (the entry as that tree names and writes it)."""
    env = dict(_env(tree), MICROGPT_CACHE=str(folder))
    subprocess.run([sys.executable, '-c', SEED_CACHE, str(ckpt), doc, str(path)], cwd=tree, env=env, check=True)
    return env


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('files', nargs='*')
    ap.add_argument('--reps', type=int, default=2)
    ap.add_argument('--tree', action='append', default=None, help='a checkout to run (PYTHONPATH); repeatable')
    ap.add_argument('--case', nargs=2, action='append', metavar=('TREE', 'FILE'), help='one tree on one file; repeatable')
    ap.add_argument('--commands', default='explore', help='comma-separated: explore, cached, load, render, inspect')
    ap.add_argument('--checkpoint', help='cached: the checkpoint whose step FILE holds')
    ap.add_argument('--doc', default='christopher', help='cached: the document whose step FILE holds')
    a = ap.parse_args()
    cases = [tuple(c) for c in a.case or ()] or [(t, f) for t in (a.tree or [str(ROOT)]) for f in a.files]
    commands = a.commands.split(',')
    if 'cached' in commands and not a.checkpoint:
        ap.error('cached needs --checkpoint (the step FILE holds)')
    got = {}
    with tempfile.TemporaryDirectory() as tmp:
        envs = {case: seed_cache(case[0], Path(tmp) / f'cache{k}', a.checkpoint, a.doc, case[1])
                for k, case in enumerate(cases)} if 'cached' in commands else {}
        for rep in range(a.reps):
            for tree, path in (cases if rep % 2 == 0 else cases[::-1]):
                for cmd in commands:
                    if cmd in ('explore', 'cached'):
                        opened = ['--trace', str(path)] if cmd == 'explore' else [
                            '--checkpoint', a.checkpoint, '--doc', a.doc, '--max-nodes', '0']
                        t_url, t_view, phases, cpu, (peak, rss) = explore(tree, opened, envs.get((tree, path)))
                        figure = t_view
                        got.setdefault((tree, path, f'{cmd} CPU'), []).append(cpu)
                        got.setdefault((tree, path, f'{cmd} peak MB'), []).append(peak)
                        said = (f"url {t_url:.1f} s, first view {t_view:.1f} s (CPU {cpu} s; {peak} MB at the "
                                f"peak, {rss} MB then); {phases}")
                    elif cmd == 'load':
                        figure, cpu, peak, save, save_cpu, size = load_save(tree, path)
                        for key, x in (('load CPU', cpu), ('load peak MB', peak), ('save', save),
                                       ('save CPU', save_cpu), ('saved MB', size / 1e6)):
                            got.setdefault((tree, path, key), []).append(x)
                        said = (f"{figure:.1f} s (CPU {cpu:.1f} s, peak {peak:.0f} MB); saving it {save:.1f} s "
                                f"(CPU {save_cpu:.1f} s, {size / 1e6:.1f} MB)")
                    else:
                        args = [cmd, '--trace', path] + (['-o', str(Path(tmp) / 'v.svg')] if cmd == 'render' else [])
                        figure, cpu = command(tree, args)
                        got.setdefault((tree, path, f'{cmd} CPU'), []).append(cpu)
                        said = f"{figure:.1f} s (CPU {cpu:.1f} s)"
                    got.setdefault((tree, path, cmd), []).append(figure)
                    print(f"{cmd} {Path(path).name} ({tree}): {said}; load {os.getloadavg()[0]:.1f}", flush=True)
    print('\nmedians (s; MB):')
    for (tree, path, cmd), xs in got.items():
        print(f"  {cmd:16s} {Path(path).name:28s} {tree}: {statistics.median(xs):.1f} "
              f"({', '.join(f'{x:.1f}' for x in xs)}), {os.path.getsize(path) / 1e6:.1f} MB")


if __name__ == '__main__':
    main()
