"""`explore` recording a big step at start and storing it in the user cache: how soon its first view is
there, and the store after it in the background (Recordings.drawn: the use records, then the file).
Prints figures, asserts nothing.

    python -m benchmarks.bench_explorer_store [--layers 4] [--embd 64] [--doc christopher] [--reps 1] [--no-cache]

Each rep starts `explore --checkpoint` (its own process, as a user runs it: bench_explorer_scale's model)
with $MICROGPT_CACHE pointing at a fresh folder of its own (the user's cache is neither read nor written),
so the step is recorded at start, then stored. Printed per rep: start -> first view drawn (the opening job
gone from /api/progress), wall-clock and the server's CPU seconds; start -> stored (no store job left, the
entry on disk); a matrix's uses (the last layer's mlp_fc1, every position) asked during the store, and
layer0's after it (one layer: the same, cached): end to end over HTTP and the server's ms; the server's memory. With --no-cache:
one more start that never stores (the floor the first view is compared with). Wall-clock on a shared
machine: state the load (printed at the start and the end); CPU seconds are the steadier figure.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from benchmarks.bench_explorer import stop_server
from benchmarks.bench_explorer_scale import ROOT, big_checkpoint, load, memory_mb


def cpu_s(pid):
    """User + system CPU seconds of process `pid` so far (/proc, Linux)."""
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def one(ckpt, doc, cache, no_cache, last):
    """The figures of one start of explore with the user cache at `cache`."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED='1', MICROGPT_CACHE=str(cache))
    env.pop('MICROGPT_NO_STEP_CACHE', None)
    t0 = time.monotonic()
    p = subprocess.Popen([sys.executable, str(ROOT / 'cli.py'), 'explore', '--no-browser', '--no-check', '--doc', doc,
                          '--checkpoint', str(ckpt), '--max-nodes', '0', *(['--no-cache'] if no_cache else [])],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    url = urlsplit(p.stdout.readline().split()[2])
    origin, token = f'{url.scheme}://{url.netloc}', url.fragment[len('token='):]

    def api(path):
        req = urllib.request.Request(origin + path, headers={'X-Explorer-Token': token})
        t1 = time.monotonic()
        with urllib.request.urlopen(req, timeout=600) as r:
            return json.loads(r.read()), time.monotonic() - t1

    def kinds():
        return {job['kind'] for job in api('/api/progress')[0]['work']}
    out = {}
    try:
        while 'open' in kinds():
            time.sleep(0.1)
        out['first'] = (time.monotonic() - t0, cpu_s(p.pid))
        if 'store' in kinds():
            view, took = api(f'/api/view?view=param&param=layer{last}.mlp_fc1')
            out['during'] = (took, view['ms']['total'])
        while 'store' in kinds():
            time.sleep(0.1)
        out['stored'] = (time.monotonic() - t0, cpu_s(p.pid))
        out['entries'] = [e.stat().st_size for e in (cache / 'steps').glob('*.mgtrace')] if not no_cache else []
        view, took = api('/api/view?view=param&param=layer0.mlp_fc1')
        out['after'] = (took, view['ms']['total'])
        out['memory'] = memory_mb(p.pid)
    finally:
        stop_server(p)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--layers', type=int, default=4)
    ap.add_argument('--embd', type=int, default=64)
    ap.add_argument('--doc', default='christopher')
    ap.add_argument('--reps', type=int, default=1)
    ap.add_argument('--no-cache', action='store_true', help='also one start with --no-cache (never stored)')
    a = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = big_checkpoint(Path(tmp), a.layers, a.embd)
        runs = [(f'rep {k + 1}', False) for k in range(a.reps)] + ([('--no-cache', True)] if a.no_cache else [])
        for k, (name, no_cache) in enumerate(runs):
            f = one(ckpt, a.doc, Path(tmp) / f'cache{k}', no_cache, a.layers - 1)
            during = (f"a matrix's uses during the store {f['during'][0]:.2f} s (server {f['during'][1]:.0f} ms)"
                      if 'during' in f else 'nothing stored after the first view')
            print(f"{name:10s} first view {f['first'][0]:5.1f} s (CPU {f['first'][1]:5.1f} s); stored "
                  f"{f['stored'][0]:5.1f} s (CPU {f['stored'][1]:5.1f} s, {sum(f['entries']) / 1e6:.0f} MB); {during}; "
                  f"after it {f['after'][0]:.2f} s (server {f['after'][1]:.0f} ms); memory {f['memory'][0]:,.0f} MB "
                  f"(peak {f['memory'][1]:,.0f})")
    print(f"machine at the end: load average {load()}")


if __name__ == '__main__':
    main()
