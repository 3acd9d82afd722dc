"""Recording a user's script (microgpt.recording.script): prints figures, asserts nothing.

    python benchmarks/bench_record_script.py [--reps 5]

1. Overhead. tests/scripts/microgpt_style.py (the reference's conventions, default
   config) run in this process with runpy, once bare and once under the recorder,
   both with the same hook that only notes the time at each backward() return.
   Step 2 is timed in CPU seconds of this process (the machine is shared; wall
   time is noisier) from the end of backward 1 to the end of backward 2 ( forward, loss,
   backward, and the script's own Adam update and print of step 1): bare, with
   the recorder's provenance on every node, and the capture's build of the
   trace columns. Target: recorded step <= 2x the bare step.
2. A 100k-node step recorded and saved, end to end from the parent: record_script
   (child start, the script's setup, the recorded step, the columns handed back)
   plus trace.to_json(path). Target: <= 5 s.
3. The hand-off of that step from the child to the parent (recording.script.transfer:
   the binary trace codec), uncompressed and with level-1 zlib: the child's write
   (columns to arrays, encode, write the file) and the parent's read (read, decode,
   the one validator), CPU seconds, and the file's size. transfer.COMPRESSION is the
   faster of the two.
Medians of --reps runs, alternated.
"""

import argparse
import builtins
import gc
import json
import os
import runpy
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from microgpt.recording.script import record_script  # noqa: E402
from microgpt.recording.script.build import build_columns  # noqa: E402
from microgpt.recording.script.recorder import Recorder  # noqa: E402
from microgpt.recording.script.transfer import COMPRESSION, read_columns, write_columns  # noqa: E402

SCRIPT = ROOT / 'tests' / 'scripts' / 'microgpt_style.py'


class _Stop(Exception):
    pass


def run_in_process(folder, recorded, nogc=False):
    """Seconds of step 2 (bare or recorded) and of building the columns."""
    script = str(folder / 'microgpt_style.py')
    marks = []
    out = {}
    saved_build = builtins.__build_class__

    def note_backward(cls):
        orig = cls.backward

        def backward(self):
            orig(self)
            marks.append(time.process_time())
            if nogc:
                gc.disable()
            if len(marks) == 2:
                raise _Stop
        cls.backward = backward

    if recorded:
        def capture(rec, root):
            marks.append(time.process_time())
            t = time.process_time()
            cols = build_columns(rec, root, sys.modules['__main__'].__dict__)
            out['build'] = time.process_time() - t
            out['nodes'] = len(cols['op'])
            raise _Stop
        rec = Recorder(script, 2, None, capture, exclude=(str(ROOT / 'microgpt'),))
        step = rec.backward

        def backward(root, orig, args, kw):   # the same time mark as the bare run's
            out = step(root, orig, args, kw)
            marks.append(time.process_time())
            return out
        rec.backward = backward
        rec.install()
    else:
        def build_class(func, name, *bases, **kw):
            cls = saved_build(func, name, *bases, **kw)
            if 'backward' in cls.__dict__:
                note_backward(cls)
            return cls
        builtins.__build_class__ = build_class
    cwd, argv, path0 = os.getcwd(), sys.argv, sys.path[0]
    os.chdir(folder)
    sys.argv, sys.path[0] = [script, '5'], str(folder)
    stdout = sys.stdout
    sys.stdout = open(os.devnull, 'w')
    try:
        runpy.run_path(script, run_name='__main__')
    except _Stop:
        pass
    finally:
        sys.stdout.close()
        sys.stdout = stdout
        builtins.__build_class__ = saved_build
        os.chdir(cwd)
        sys.argv, sys.path[0] = argv, path0
        if recorded:
            rec.uninstall()
    out['step'] = marks[1] - marks[0]
    return out


def bench_overhead(reps):
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        shutil.copy(SCRIPT, folder)
        (folder / 'input.txt').write_text('emma\nolivia\nava\nisabella\nsophia\nmia\n')
        bare, nogc, rec, build = [], [], [], []
        for _ in range(reps):   # each run in a fresh process, alternated
            bare.append(_one(folder, 'bare')['step'])
            nogc.append(_one(folder, 'bare-nogc')['step'])
            r = _one(folder, 'recorded')
            rec.append(r['step'])
            build.append(r['build'])
        b, s, c = statistics.median(bare), statistics.median(rec), statistics.median(build)
        g = statistics.median(nogc)
        print(f"1. microgpt-style script, step 2 ({r['nodes']:,} nodes), CPU seconds, median of {reps}:")
        print(f"   bare step                 {b * 1e3:8.1f} ms")
        print(f"   bare step, GC paused      {g * 1e3:8.1f} ms   (the recorder pauses it in the recorded step)")
        print(f"   recorded step             {s * 1e3:8.1f} ms   {s / b:.2f}x bare (target <= 2x), "
              f"{s / g:.2f}x bare with GC paused")
        print(f"   + building the columns    {c * 1e3:8.1f} ms   {(s + c) / b:.2f}x bare with the build")


def _one(folder, mode):
    out = subprocess.run([sys.executable, __file__, '--one', mode, str(folder)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def bench_100k(reps):
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        shutil.copy(SCRIPT, folder)
        (folder / 'input.txt').write_text('alexandrina\n')
        times, rec_times = [], []
        for _ in range(reps):
            t = time.perf_counter()
            trace = record_script(folder / 'microgpt_style.py', args=['1'], env=dict(os.environ))
            t1 = time.perf_counter()
            trace.to_json(folder / 'trace.json')
            times.append(time.perf_counter() - t)
            rec_times.append(t1 - t)
        size = (folder / 'trace.json').stat().st_size
        print(f"2. one step of 'alexandrina' ({len(trace):,} nodes), median of {reps}:")
        print(f"   record_script             {statistics.median(rec_times):8.2f} s")
        print(f"   recorded and saved        {statistics.median(times):8.2f} s   (target <= 5 s; "
              f"trace.json {size / 1e6:.1f} MB)")
        bench_handoff(trace, folder, reps)


def bench_handoff(trace, folder, reps):
    """The child's write and the parent's read of `trace`, per compression."""
    cols = {name: getattr(trace, name).tolist() for name in
            ('op', 'data', 'grad', 'scope', 'source', 'child_ptr', 'child', 'local', 'backward_order')}
    cols.update(op_names=list(trace.op_names), scopes=trace.scopes, sources=trace.sources, meta=trace.meta,
                param_names=trace.param_names, param_shapes=trace.param_shapes, param_base=trace.param_base,
                pow_exponent=trace.pow_exponent, probes=trace.probes)
    path = folder / 'trace.bin'
    rows = {c: {'write': [], 'read': []} for c in ('none', 'zlib')}
    sizes = {}
    for _ in range(reps):
        for c, row in rows.items():
            t = time.process_time()
            write_columns(path, cols, c)
            t1 = time.process_time()
            read_columns(path)
            row['write'].append(t1 - t)
            row['read'].append(time.process_time() - t1)
            sizes[c] = path.stat().st_size
    print(f"3. the hand-off of those {len(trace):,} nodes, CPU seconds, median of {reps} "
          f"(transfer.COMPRESSION = {COMPRESSION!r}):")
    for c, row in rows.items():
        w, r = statistics.median(row['write']), statistics.median(row['read'])
        print(f"   {c:5s} write {w * 1e3:6.1f} ms, read {r * 1e3:6.1f} ms, total {(w + r) * 1e3:6.1f} ms, "
              f"{sizes[c] / 1e6:.1f} MB")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--one', nargs=2, metavar=('MODE', 'FOLDER'), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        mode, folder = args.one
        print(json.dumps(run_in_process(Path(folder), mode == 'recorded', nogc=mode == 'bare-nogc')))
        return
    bench_overhead(args.reps)
    bench_100k(max(3, args.reps // 2))


if __name__ == '__main__':
    main()
