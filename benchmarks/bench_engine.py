"""Engine and recording benchmark: prints figures, asserts nothing.

    python -m benchmarks.bench_engine [--reps 7]

For a 5-, 7- and 12-character document on the default config (a-z vocabulary):
forward and backward time of
  bare      the reference algorithm with no recording support at all
            (tests/reference_impl.py: recursive topological sort, GC on as the
            reference script runs it)
  bare-nogc the same with Python's cyclic GC paused, to isolate engine costs
  off       this engine, recording off (as train_step runs it: GC paused)
  on        this engine inside record(); 'trace' is detaching the tape into a Trace
Runs alternate (bare, bare-nogc, off, on, bare, ...) and medians are printed,
with ratios against both baselines. Then: memory per node of a recorded
12-character step vs the bare engine, the latency of each Trace query, and
loading a saved trace (JSON, binary) against recording the step again.

Then training as it really runs, step after step (the collector's cost depends
on what the previous step left alive): the reference's own loop (GC on, as the
script runs), microgpt.train.train_step, and train_step as it was before it
freed the step's graph inside the GC pause. Blocks of --steps consecutive steps
on the names data ($MICROGPT_DATA) or, without it, a built-in list; ms per step.
"""

import argparse
import gc
import random
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

from microgpt.data import Tokenizer, data_path_from_env, read_docs
from microgpt.engine import gc_paused
from microgpt.model import GPTConfig, doc_loss, init_params
from microgpt.recording.step import record_step
from microgpt.recording.tape import record
from microgpt.train import SEED, start_run, train_step
from tests.reference_impl import make_reference

ROOT = Path(__file__).resolve().parent.parent

AZ = [chr(c) for c in range(97, 123)]
DOCS = {5: 'emily', 7: 'abigail', 12: 'maximilliano'}


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def bench_doc(doc, reps):
    tok = Tokenizer(AZ)
    config = GPTConfig(vocab_size=tok.vocab_size)
    params = init_params(config, random.Random(SEED))
    ref = make_reference(AZ, seed=SEED)
    tokens = tok.encode(doc)
    rows = {k: {'fwd': [], 'bwd': [], 'trace': []} for k in ('bare', 'bare-nogc', 'off', 'on')}

    def bare():
        tf, loss = timed(lambda: ref.loss_of(doc))
        tb, _ = timed(loss.backward)
        return tf, tb, 0.0

    def bare_nogc():
        with gc_paused():
            return bare()

    def off():
        with gc_paused():
            tf, (loss, _) = timed(lambda: doc_loss(params, config, tokens))
            tb, _ = timed(loss.backward)
        return tf, tb, 0.0

    def on():
        with record(params) as tape:
            tf, (loss, _) = timed(lambda: doc_loss(params, config, tokens))
            tb, _ = timed(loss.backward)
        with gc_paused():
            tt, _ = timed(lambda: tape.to_trace(loss))
        return tf, tb, tt

    kinds = {'bare': bare, 'bare-nogc': bare_nogc, 'off': off, 'on': on}
    for _ in range(reps):
        for name, fn in kinds.items():
            tf, tb, tt = fn()
            rows[name]['fwd'].append(tf)
            rows[name]['bwd'].append(tb)
            rows[name]['trace'].append(tt)
            gc.collect()
    med = {k: {m: statistics.median(v) for m, v in r.items()} for k, r in rows.items()}
    print(f"\n{len(doc)}-character document {doc!r} ({len(doc) + 1} positions), median of {reps}:")
    print(f"  {'engine':10s} {'forward':>9s} {'backward':>9s} {'trace':>9s} {'step':>9s}  vs bare  vs bare-nogc")
    for k, m in med.items():
        step = m['fwd'] + m['bwd'] + m['trace']
        base = med['bare']['fwd'] + med['bare']['bwd']
        base2 = med['bare-nogc']['fwd'] + med['bare-nogc']['bwd']
        print(f"  {k:10s} {m['fwd'] * 1e3:8.1f}ms {m['bwd'] * 1e3:8.1f}ms {m['trace'] * 1e3:8.1f}ms "
              f"{step * 1e3:8.1f}ms  {step / base:6.2f}x  {step / base2:6.2f}x")
    on = med['on']
    print(f"  recording on, forward+backward only (no Trace): "
          f"{(on['fwd'] + on['bwd']) / (med['bare-nogc']['fwd'] + med['bare-nogc']['bwd']):.2f}x bare-nogc")


def bench_memory(doc):
    tok = Tokenizer(AZ)
    config = GPTConfig(vocab_size=tok.vocab_size)
    params = init_params(config, random.Random(SEED))
    ref = make_reference(AZ, seed=SEED)
    gc.collect()
    tracemalloc.start()
    loss = ref.loss_of(doc)
    loss.backward()
    _, ref_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    n_ref = len(_reachable(loss))
    del loss
    gc.collect()
    tracemalloc.start()
    trace = record_step(params, config, tok, doc)
    _, rec_peak = tracemalloc.get_traced_memory()
    kept = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    n = len(trace)
    print(f"\nmemory, {len(doc)}-character document {doc!r}:")
    print(f"  bare step:     peak {ref_peak / 2**20:6.1f} MiB for {n_ref} reachable Values "
          f"= {ref_peak / n_ref:5.0f} B/node")
    print(f"  recorded step: peak {rec_peak / 2**20:6.1f} MiB for {n} recorded nodes "
          f"= {rec_peak / n:5.0f} B/node (peak incl. live Values while recording)")
    print(f"  the Trace kept afterwards: {kept / 2**20:6.1f} MiB = {kept / n:5.0f} B/node")
    return trace


def _reachable(root):
    seen, stack = {root}, [root]
    while stack:
        for c in stack.pop()._children:
            if c not in seen:
                seen.add(c)
                stack.append(c)
    return seen


def bench_queries(trace, reps):
    loss = trace.meta['loss_id']
    (cell,) = trace.param_nodes('layer0.attn_wq[3][5]')
    queries = {
        'nodes(pos=11)': lambda: trace.nodes(pos=11),
        'nodes(layer=0)': lambda: trace.nodes(layer=0),
        'nodes(layer=0, head=2)': lambda: trace.nodes(layer=0, head=2),
        "nodes_matching('pos3/*/attn/*')": lambda: trace.nodes_matching('pos3/*/attn/*'),
        "param_nodes('layer0.attn_wq')": lambda: trace.param_nodes('layer0.attn_wq'),
        'uses(layer0.attn_wq[3][5])': lambda: trace.uses(cell),
        'ancestors(loss, depth=6)': lambda: trace.ancestors([loss], 6),
        'descendants(wq[3][5], depth=6)': lambda: trace.descendants([cell], 6),
        'scope_stats()': trace.scope_stats,
        'summary()': trace.summary,
    }
    print(f"\nquery latency on a {len(trace)}-node trace (first call builds any index; then median of {reps}):")
    for name, q in queries.items():
        first, out = timed(q)
        again = statistics.median(timed(q)[0] for _ in range(reps))
        size = len(out) if hasattr(out, '__len__') else ''
        print(f"  {name:34s} first {first * 1e3:7.1f} ms   warm {again * 1e3:7.2f} ms   ({size} results)")
    from microgpt.recording import Trace
    t_dump, text = timed(trace.to_json)
    t_load, _ = timed(lambda: Trace.from_json(text))
    print(f"  JSON dump {t_dump * 1e3:.0f} ms, load {t_load * 1e3:.0f} ms, {len(text) / 2**20:.1f} MiB")
    raw = trace.to_binary()
    t_bdump = statistics.median(timed(trace.to_binary)[0] for _ in range(reps))
    t_bload = statistics.median(timed(lambda: Trace.from_binary(raw))[0] for _ in range(reps))
    print(f"  binary dump {t_bdump * 1e3:.0f} ms, load {t_bload * 1e3:.0f} ms, {len(raw) / 2**20:.1f} MiB")


def bench_load_vs_record(doc, reps):
    from microgpt.recording import Trace
    tok = Tokenizer(AZ)
    config = GPTConfig(vocab_size=tok.vocab_size)
    params = init_params(config, random.Random(SEED))
    trace = record_step(params, config, tok, doc)
    raw, text = trace.to_binary(), trace.to_json()
    rows = {'record the step': lambda: record_step(params, config, tok, doc),
            'load the binary trace': lambda: Trace.from_binary(raw),
            'load the JSON trace': lambda: Trace.from_json(text)}
    times = {k: [] for k in rows}
    for _ in range(reps):
        for k, fn in rows.items():
            times[k].append(timed(fn)[0])
            gc.collect()
    print(f"\na trace of {doc!r} ({len(trace)} nodes), median of {reps}:")
    for k, v in times.items():
        print(f"  {k:24s} {statistics.median(v) * 1e3:7.0f} ms")


def train_step_before(run, step, num_steps):
    """microgpt.train.train_step as it was: the graph still alive when the GC resumes."""
    doc = run.docs[step % len(run.docs)]
    for p in run.optimizer.params:
        p.grad = 0
    with gc_paused():
        loss, _ = doc_loss(run.params, run.config, run.tokenizer.encode(doc))
        loss.backward()
    run.optimizer.step(step, num_steps)
    run.losses.append(loss.data)
    return loss.data


def bench_training(steps, reps):
    named = data_path_from_env()
    docs = read_docs(named[0]) if named else ['emma', 'olivia', 'ava', 'isabella', 'sophia', 'charlotte',
                                               'mia', 'amelia', 'harper', 'evelyn', 'abigail', 'emily']
    total = steps * reps
    runs = {'reference loop (GC on, as the script runs)': make_reference(docs, seed=SEED),
            'train_step before (graph alive at GC resume)': start_run(docs, seed=SEED),
            'train_step now (graph freed in the pause)': start_run(docs, seed=SEED)}
    fns = {name: (run.step if hasattr(run, 'step') else
                  (lambda k, n, run=run, f=(train_step_before if 'before' in name else train_step): f(run, k, n)))
           for name, run in runs.items()}
    per_step = {k: [] for k in runs}
    losses = {k: [] for k in runs}
    for block in range(reps):
        for name, fn in fns.items():
            t = time.perf_counter()
            for k in range(block * steps, (block + 1) * steps):
                losses[name].append(fn(k, total))
            per_step[name].append((time.perf_counter() - t) / steps)
    same = len({tuple(v) for v in losses.values()}) == 1
    print(f"\ntraining, {reps} blocks of {steps} consecutive steps on {len(docs)} documents "
          f"({'same losses in all three' if same else 'LOSSES DIFFER'}), median ms per step:")
    ref = statistics.median(per_step[next(iter(per_step))])
    for name, v in per_step.items():
        m = statistics.median(v)
        print(f"  {name:46s} {m * 1e3:7.1f} ms  {m / ref:5.2f}x reference")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--reps', type=int, default=7)
    ap.add_argument('--steps', type=int, default=20, help='consecutive training steps per block')
    ap.add_argument('--only', choices=('steps', 'memory', 'load', 'training'), help='run one section')
    args = ap.parse_args()
    if args.only == 'training':
        bench_training(args.steps, args.reps)
        return
    if args.only == 'load':
        bench_load_vs_record(DOCS[12], args.reps)
        return
    print(f"python {sys.version.split()[0]}; default config (n_layer 1, n_embd 16, n_head 4, block 16)")
    for doc in DOCS.values():
        bench_doc(doc, args.reps)
    trace = bench_memory(DOCS[12])
    bench_queries(trace, args.reps)
    bench_load_vs_record(DOCS[12], args.reps)
    bench_training(args.steps, args.reps)


if __name__ == '__main__':
    main()
