"""Scale benchmark (issue 25): a big step, from its binary file to its views. Prints figures
against the issue's budgets, asserts nothing.

    python -m benchmarks.bench_scale [--layers 2] [--embd 32] [--doc christopher] [--reps 3] [--max-nodes N] [--json]

Records one step of a model of --layers blocks x --embd wide (4 heads, block size 16,
a-z vocabulary, seed 42) on --doc, saves it as a binary trace, then, in this process:
  record       record_step (s), and the peak resident memory while recording (B/node)
  save         to_binary: the indexes built once (s), the file written (s, MB, B/node)
  load         Trace.load of the file (version 2: the indexes stored, none built)
  v1 path      a file without indexes (as version 1 wrote): load + the indexes built once
               (what every load cost before issue 25), and its ratio to the stored load
  first view   select + fold + draw of the last token's view (the explorer's default),
               server-side before layout (ms), and the same from the cold file (load + view)
  view change  select + fold + draw of other views, each median over --reps (ms), against
               the budget (300 ms; the whole document 1 s), and one more build split into
               its three steps (where the budget goes)
  at rest      resident memory after load + the views (MB, bytes per node; budget 1 GB)
With --json: the streaming JSON writer (codecs.json.chunks) called directly on the loaded
trace in a child process, past the loader's cap that `export --format json` refuses up
front: its peak memory over the loaded trace, and the text's size.
The issue's cases: 2 x 32 (cheap, CI) and 4 x 64 on 'anna' / 'christopher' (by hand).
Times are this process's CPU seconds (time.process_time: what a free core takes; the
machine is shared); state the machine's load (printed) with the figures.
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

from graphviz_export.draw import draw
from graphviz_export.fold import fold
from graphviz_export.select import select
from graphviz_export.view import build_view
from microgpt.data import Tokenizer
from microgpt.model import GPTConfig, init_params
from microgpt.recording import Trace
from microgpt.recording.budget import DEFAULT_MAX_NODES
from microgpt.recording.codecs.validate import COLUMNS
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
    """(seconds of this process's CPU, fn()): on a shared machine the CPU a step costs is what a
    free core would take (wall-clock time there also counts other sessions' turns)."""
    t0 = time.process_time()
    out = fn()
    return time.process_time() - t0, out


def held_mb(trace):
    """MB of the trace's columns, stored indexes and cached columns (arrays only)."""
    arrays = [getattr(trace, name) for name, _ in COLUMNS]
    arrays += [a for a in (*trace._index.values(), *trace._cache.values()) if hasattr(a, 'buffer_info')]
    return sum(a.buffer_info()[1] * a.itemsize for a in arrays) / 2 ** 20


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
    """(peak MB of a child while loading `path`, its peak while writing, the MB the streaming
    writer added over the loaded trace, the text's MiB): codecs.json.chunks written to `out` chunk by chunk, as
    `Trace.to_json(path)` writes (its up-front refusal of a text over the loader's cap skipped)."""
    code = ("import resource, sys\n"
            "from microgpt.recording import Trace\n"
            "from microgpt.recording.codecs import plain_of\n"
            "from microgpt.recording.codecs.json import chunks\n"
            "def hwm():\n"
            "    with open('/proc/self/status') as f:\n"
            "        return next(int(x.split()[1]) for x in f if x.startswith('VmHWM')) / 1024\n"
            "t = Trace.load(sys.argv[1]); size = 0; loaded = hwm()\n"
            "with open('/proc/self/clear_refs', 'w') as f:\n"
            "    f.write('5')      # the peak restarts from what the loaded trace holds now\n"
            "with open('/proc/self/statm') as f:\n"
            "    now = int(f.read().split()[1]) * resource.getpagesize() / 2 ** 20\n"
            "with open(sys.argv[2], 'wb') as f:\n"
            "    for chunk in chunks(plain_of(t)):\n"
            "        raw = chunk.encode('utf-8'); size += len(raw); f.write(raw)\n"
            "print(loaded, hwm(), hwm() - now, size / 2 ** 20)\n")
    r = subprocess.run([sys.executable, '-c', code, str(path), str(out)], capture_output=True, text=True, cwd=ROOT)
    if r.returncode:
        raise SystemExit(r.stderr.strip().splitlines()[-1])
    return tuple(map(float, r.stdout.split()))


def split(trace, q):
    """'select a + fold b + draw c ms': where one more build of view `q` spends its time (build_view's
    three steps with its defaults)."""
    t_sel, sel = timed(lambda: select(trace, **q))
    t_fold, folded = timed(lambda: fold(trace, sel))
    t_draw, _ = timed(lambda: draw(trace, folded, fields={}))
    return f"select {t_sel * 1000:.0f} + fold {t_fold * 1000:.0f} + draw {t_draw * 1000:.0f} ms"


VIEW_BUDGET, DOCUMENT_BUDGET, FIRST_BUDGET, COLD_BUDGET, REST_BUDGET = 0.3, 1.0, 3.0, 10.0, 1024


def verdict(x, budget):
    return f"{'met' if x <= budget else 'NOT met'}: budget {budget:g}, {x / budget:.2f}x of it"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--layers', type=int, default=2)
    ap.add_argument('--embd', type=int, default=32)
    ap.add_argument('--doc', default='christopher')
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--max-nodes', type=int, default=DEFAULT_MAX_NODES,
                    help="the recording's node limit (4 x 64 on 'christopher' needs 5,596,899)")
    ap.add_argument('--json', action='store_true', help='also run the streaming JSON writer (child process)')
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    tok = Tokenizer(AZ)
    config = GPTConfig(vocab_size=tok.vocab_size, n_layer=args.layers, n_embd=args.embd)
    params = init_params(config, random.Random(42))
    before = rss_mb()
    t_rec, trace = timed(lambda: record_step(params, config, tok, args.doc, max_nodes=args.max_nodes))
    n = len(trace)
    rec_peak = peak_mb() - before
    print(f"model {args.layers} x {args.embd}, doc {args.doc!r}: {n:,} nodes, {len(trace.child):,} edges")
    print(f"record        {t_rec:8.1f} s   peak while recording {rec_peak:,.0f} MB ({rec_peak * 2 ** 20 / n:,.0f} B/node)")
    with tempfile.TemporaryDirectory() as tmp:
        path, old = Path(tmp) / 'big.mgtrace', Path(tmp) / 'v1.mgtrace'
        t_build, _ = timed(trace.build_indexes)
        t_save, _ = timed(lambda: trace.to_binary(path))
        trace.to_binary(old, indexes=False)
        size, size_old = path.stat().st_size, old.stat().st_size
        print(f"save binary   {t_save:8.1f} s   {size / 1e6:,.1f} MB ({size / n:.1f} B/node; without the indexes "
              f"{size_old / n:.1f}); the indexes built once before: {t_build:.1f} s")
        del trace
        at_start = rss_mb()
        t_load, trace = timed(lambda: Trace.load(path))
        print(f"load          {t_load:8.1f} s   (stored indexes, none built)")
        last = trace.positions()[-1]
        t_first, _ = timed(lambda: build_view(trace, token=last))
        print(f"first view    {t_first * 1000:8.0f} ms  token {last}: select + fold + draw, before layout "
              f"({verdict(t_first, FIRST_BUDGET)})")
        print(f"cold file     {t_load + t_first:8.1f} s   load + first view ({verdict(t_load + t_first, COLD_BUDGET)})")
        for name, q in views(trace):
            times = [timed(lambda q=q: build_view(trace, **q))[0] for _ in range(args.reps)]
            t = statistics.median(times)
            budget = DOCUMENT_BUDGET if q.get('document') else VIEW_BUDGET
            print(f"view change   {t * 1000:8.0f} ms  {name} (median of {args.reps}; first {times[0] * 1000:.0f} ms; "
                  f"{verdict(t, budget)}; {split(trace, q)})")
        rest, held = rss_mb() - at_start, held_mb(trace)
        print(f"at rest       {rss_mb():8,.0f} MB  process ({verdict(rss_mb(), REST_BUDGET)}); {rest:,.0f} MB more than "
              f"before the load ({rest * 2 ** 20 / n:,.0f} B/node); its arrays {held:,.0f} MB ({held * 2 ** 20 / n:,.0f} B/node)")
        del trace
        t_old, trace = timed(lambda: Trace.load(old))
        t_old_index, _ = timed(trace.build_indexes)
        print(f"v1 path       {t_old + t_old_index:8.1f} s   load {t_old:.1f} + indexes built {t_old_index:.1f} (every load "
              f"before issue 25): the stored load is {(t_old + t_old_index) / t_load:.1f}x faster; cold file + first "
              f"view {t_old + t_old_index + t_first:.1f} s")
        if args.json:
            loaded, peak, added, text = json_export(path, Path(tmp) / 'big.json')
            print(f"json writer   {peak:8,.0f} MB peak while writing {text:,.0f} MiB of text (the writer's own: "
                  f"{added:,.0f} MB over the loaded trace; the child's peak while loading {loaded:,.0f} MB)")
    print(f"machine at the end: load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == '__main__':
    main()
