"""Scale benchmark (issue 25): a big step, from its binary file to its views. Prints figures,
asserts nothing.

    python -m benchmarks.bench_scale [--layers 2] [--embd 32] [--doc christopher] [--reps 3] [--json]

Records one step of a model of --layers blocks x --embd wide (4 heads, block size 16,
a-z vocabulary, seed 42) on --doc, saves it as a binary trace, then, in this process:
  record       record_step (s), and the peak resident memory while recording (B/node)
  save         to_binary: seconds, MB, bytes per node
  load         Trace.load of the binary file (s)
  index        the indexes and run records a view needs, built once per load (s)
  first view   select + fold + draw of the last token's view (the explorer's default),
               server-side before layout (ms)
  view change  select + fold + draw of other views, each median over --reps (ms)
  at rest      resident memory after load + index + the views (MB, bytes per node)
With --json: `export --format json` of the file in a child process (its peak memory, the
file's size, or the refusal when the loader could not read it back).
The issue's cases: 2 x 32 (cheap, CI) and 4 x 64 on 'christopher' (5.5 M nodes, by hand).
State the machine's load (printed) with the figures.
"""

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from graphviz_export.view import build_view
from microgpt.data import Tokenizer
from microgpt.model import GPTConfig, init_params
from microgpt.recording import Trace
from microgpt.recording.step import record_step

ROOT = Path(__file__).resolve().parent.parent
AZ = [chr(c) for c in range(97, 123)]


def rss_mb():
    """Resident memory now (MB), from /proc (Linux)."""
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2 ** 20


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def views(trace):
    last = trace.positions()[-1]
    return [
        (f'token {last - 1}', {'token': last - 1}),
        ('token 0', {'token': 0}),
        ('layer 0, every position', {'layer': 0}),
        (f'layer 0 at token {last}', {'layer': 0, 'token': last}),
        ('layer 0 head 1, every position', {'layer': 0, 'head': 1}),
        ('whole document', {'document': True}),
        ('cell layer0.attn_wq[3][5]', {'param': 'layer0.attn_wq[3][5]'}),
        ('matrix layer0.mlp_fc1', {'param': 'layer0.mlp_fc1'}),
    ]


def json_export(path, out):
    """Peak memory (MB) of a child that loads `path` and exports it as JSON to `out`, and its
    last line (the export's one-line message or refusal)."""
    code = ("import os, resource, sys\n"
            "from microgpt.recording import Trace\n"
            "from microgpt.errors import InputError\n"
            "t = Trace.load(sys.argv[1])\n"
            "try:\n    size = os.path.getsize(t.to_json(sys.argv[2])); msg = f'wrote {size / 2 ** 20:.0f} MiB'\n"
            "except InputError as e:\n    msg = f'refused: {e}'\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, msg)\n")
    r = subprocess.run([sys.executable, '-c', code, str(path), str(out)], capture_output=True, text=True, cwd=ROOT)
    if r.returncode:
        return None, r.stderr.strip().splitlines()[-1]
    peak, msg = r.stdout.strip().split(' ', 1)
    return float(peak), msg


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--layers', type=int, default=2)
    ap.add_argument('--embd', type=int, default=32)
    ap.add_argument('--doc', default='christopher')
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--json', action='store_true', help='also export the trace as JSON (in a child process)')
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    tok = Tokenizer(AZ)
    config = GPTConfig(vocab_size=tok.vocab_size, n_layer=args.layers, n_embd=args.embd)
    params = init_params(config, random.Random(42))
    before = rss_mb()
    t_rec, trace = timed(lambda: record_step(params, config, tok, args.doc))
    n = len(trace)
    rec_peak = peak_mb() - before
    print(f"model {args.layers} x {args.embd}, doc {args.doc!r}: {n:,} nodes, {len(trace.child):,} edges")
    print(f"record        {t_rec:8.1f} s   peak while recording {rec_peak:,.0f} MB ({rec_peak * 2 ** 20 / n:,.0f} B/node)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / 'big.mgtrace'
        t_save, _ = timed(lambda: trace.to_binary(path))
        size = path.stat().st_size
        print(f"save binary   {t_save:8.1f} s   {size / 1e6:,.1f} MB ({size / n:.1f} B/node)")
        del trace
        at_start = rss_mb()
        t_load, trace = timed(lambda: Trace.load(path))
        t_index, _ = timed(trace.build_indexes)
        print(f"load          {t_load:8.1f} s")
        print(f"index         {t_index:8.1f} s   (once per load; the file does not store them yet)")
        last = trace.positions()[-1]
        t_first, _ = timed(lambda: build_view(trace, token=last))
        print(f"first view    {t_first * 1000:8.0f} ms  token {last}: select + fold + draw, before layout; "
              f"{t_load + t_index + t_first:.1f} s from the cold file")
        for name, q in views(trace):
            times = [timed(lambda q=q: build_view(trace, **q))[0] for _ in range(args.reps)]
            print(f"view change   {statistics.median(times) * 1000:8.0f} ms  {name} (median of {args.reps})")
        rest = rss_mb() - at_start
        print(f"at rest       {rss_mb():8,.0f} MB  process; {rest:,.0f} MB for the trace and its indexes "
              f"({rest * 2 ** 20 / n:,.0f} B/node)")
        if args.json:
            peak, msg = json_export(path, Path(tmp) / 'big.json')
            shown = f"{peak:8,.0f} MB peak" if peak is not None else '    failed'
            print(f"json export   {shown}  (child: load + export) {msg}")


if __name__ == '__main__':
    main()
