"""Gradient-check benchmark: prints figures, asserts nothing.

    python -m benchmarks.bench_gradcheck [--reps 5] [--skip-params]

1. Node-level check of a recorded 12-character step ('christopher', default
   config, a-z, seed 42) against one recorded step (record_step): medians over
   --reps runs, run alternately, and their ratio (target: <= 5x). Also the parts
   (forward + local derivatives, grad sums), one d loss/d node replay and the
   health report.
2. Health extremes of that trace, against which the flag thresholds were set.
3. Full parameter-level check of the default model on a 5-character document
   ('emily'): all 4,192 parameters, 8,385 forward passes; the time and the error
   distribution that the default tolerances are set from. Takes a few minutes.
"""

import argparse
import random
import statistics
import time
from pathlib import Path

from microgpt.checks.health import health_report
from microgpt.checks.nodes import check_trace
from microgpt.checks.params import check_params
from microgpt.checks.replay import numeric_dloss
from microgpt.data import Tokenizer
from microgpt.model import GPTConfig, init_params
from microgpt.recording.step import record_step
from microgpt.train import SEED

ROOT = Path(__file__).resolve().parent.parent

AZ = [chr(c) for c in range(97, 123)]


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def model():
    tok = Tokenizer(AZ)
    config = GPTConfig(vocab_size=tok.vocab_size)
    return init_params(config, random.Random(SEED)), config, tok


def bench_nodes(reps, doc='christopher'):
    params, config, tok = model()
    rec, chk, loc, sums = [], [], [], []
    for _ in range(reps):
        t, trace = timed(lambda: record_step(params, config, tok, doc))
        rec.append(t)
        t, result = timed(lambda: check_trace(trace))
        chk.append(t)
        loc.append(timed(lambda: check_trace(trace, sums=False))[0])
        sums.append(timed(lambda: check_trace(trace, local=False))[0])
    r, c = statistics.median(rec), statistics.median(chk)
    print(f"node-level check, '{doc}' ({len(trace):,} nodes, {len(trace.child):,} edges), "
          f"median of {reps}:")
    print(f"  record_step (forward + backward + trace)   {r * 1e3:8.0f} ms")
    print(f"  check_trace (forward, local, sums)         {c * 1e3:8.0f} ms   = {c / r:.2f}x one recorded step"
          f"  (target <= 5x)")
    print(f"    forward + local derivatives only         {statistics.median(loc) * 1e3:8.0f} ms")
    print(f"    grad sums only                           {statistics.median(sums) * 1e3:8.0f} ms")
    print(f"  result: ok={result.ok}, checked {result.checked}, worst local rel err "
          f"{result.worst['local_rel_err']:.2e}, worst tolerance use {result.worst['local_score']:.2e}")
    early = trace.param_nodes('wte[26][0]')[0]         # BOS row: almost the whole graph depends on it
    log_node = trace.children(trace.meta['position_loss_ids'][-1])[0]
    late = trace.children(log_node)[0]                  # the last position's target probability
    for name, node in (('a wte cell (most of the graph downstream)', early), ('the last target probability', late)):
        t, (num, h, _) = timed(lambda: numeric_dloss(trace, node))
        print(f"  d loss/d node by replay, {name:<42} {t * 1e3:6.0f} ms  "
              f"(grad {trace.grad[node]:+.6e}, numeric {num:+.6e})")
    t, report = timed(lambda: health_report(trace))
    print(f"  health report                              {t * 1e3:8.0f} ms, {len(report.groups)} groups, "
          f"flags: {report.flags or 'none'}")
    return trace, report


def print_health(report):
    norms = sorted(report.groups, key=lambda g: g.grad_norm)
    top_grad = max(report.groups, key=lambda g: g.max_abs_grad)
    top_data = max(report.groups, key=lambda g: g.max_abs_data)
    print("health extremes of that trace (fresh model):")
    print(f"  smallest group grad norm {norms[0].grad_norm:.2e} ({norms[0].scope}); largest "
          f"{norms[-1].grad_norm:.2e} ({norms[-1].scope})")
    print(f"  largest |grad| {top_grad.max_abs_grad:.3g} ({top_grad.scope}); "
          f"largest |data| {top_data.max_abs_data:.3g} ({top_data.scope})")


def quantile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def bench_params(doc='emily'):
    params, config, tok = model()
    print(f"full parameter-level check, '{doc}' (default config, 4,192 parameters):", flush=True)
    result = check_params(params, config, tok, doc)
    rows = result.rows
    per = result.seconds / result.forward_passes
    print(f"  {result.seconds:.1f} s for {result.forward_passes:,} forward passes ({per * 1e3:.1f} ms each); "
          f"ok={result.ok}, {len(result.failures)} failures")
    errs = [r.abs_err for r in rows]
    print(f"  abs error: max {max(errs):.2e}, p99 {quantile(errs, .99):.2e}, median {quantile(errs, .5):.2e}")
    for floor in (1e-2, 1e-3, 1e-4, 1e-5):
        big = [r.rel_err for r in rows if max(abs(r.analytic), abs(r.numeric)) > floor]
        print(f"  rel error, |grad| > {floor:g} ({len(big):>4} params): max {max(big):.2e}, "
              f"p99 {quantile(big, .99):.2e}, median {quantile(big, .5):.2e}")
    zero = sum(1 for r in rows if r.analytic == 0 and r.numeric == 0)
    w = result.worst
    print(f"  exactly 0 both ways: {zero}; worst score (abs err / allowance) {w.score:.3f} at {w.cell} "
          f"(analytic {w.analytic:.6e}, numeric {w.numeric:.6e})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--reps', type=int, default=5, help='runs of record_step and check_trace (medians)')
    ap.add_argument('--skip-params', action='store_true', help='skip the full parameter check (minutes)')
    args = ap.parse_args()
    _, report = bench_nodes(args.reps)
    print_health(report)
    if not args.skip_params:
        bench_params()


if __name__ == '__main__':
    main()
