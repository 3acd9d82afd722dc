"""Export benchmark: prints figures, asserts nothing.

    python -m benchmarks.bench_export [--reps 5] [--cap 60] [--doc christopher]

On a recorded step of `doc` (default 'christopher', 12 positions, ~104k nodes)
with the default model, for each default view (token 11, layer 0 at every
position, layer 0 at token 11, a parameter cell, a matrix, ...):
  select, fold, draw   the three pure steps (ms)
  layout               Graphviz, DOT -> SVG, through graphviz_export.render
                       (native `dot` when on PATH, else the WebAssembly build)
  view                 select + fold + draw + layout: a view of a recorded trace
  e2e                  record + index + view: from the document to the SVG
  SVG size, and the nodes / edges drawn, level auto chose
Targets (issue 4): e2e <= 1 s, SVG <= 300 KB, select + fold <= 100 ms.
`record` is record_step; `index` is the trace's reverse-edge index and
contribution column, built once per trace on first use (every view needs them).

Then the naive way, micrograd's draw_dot: one record per scalar plus one op
node per op, every node of the last position and the nodes feeding it, laid
out by the same renderer with a time cap (reported as "> cap (capped)").
Medians over --reps runs; the renderer's one-time warm-up is reported apart.
"""

import argparse
import random
import statistics
import time
from pathlib import Path

import graphviz

from graphviz_export import render as render_mod
from graphviz_export.draw import draw
from graphviz_export.fold import fold
from graphviz_export.select import select
from microgpt.data import Tokenizer
from microgpt.model import GPTConfig, init_params
from microgpt.recording.step import record_step
from microgpt.train import SEED

ROOT = Path(__file__).resolve().parent.parent

AZ = [chr(c) for c in range(97, 123)]


def views(trace):
    last = trace.positions()[-1]
    return [
        (f'token {last} (default)', {'token': last}),
        ('layer 0, every position', {'layer': 0}),
        (f'layer 0 at token {last}', {'layer': 0, 'token': last}),
        ('head 2, every position', {'head': 2}),
        ('cell layer0.attn_wq[3][5]', {'param': 'layer0.attn_wq[3][5]'}),
        ('matrix layer0.attn_wq', {'param': 'layer0.attn_wq'}),
        ('matrix layer0.mlp_fc1', {'param': 'layer0.mlp_fc1'}),
        ('node loss, depth 3', {'node': 'loss', 'depth': 3}),
    ]


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def fresh_trace(doc):
    tok = Tokenizer(AZ)
    config = GPTConfig(vocab_size=tok.vocab_size)
    params = init_params(config, random.Random(SEED))
    return record_step(params, config, tok, doc)


def build_index(trace):
    trace.parents_index()
    trace.contrib
    trace.backward_rank


def naive_dot(trace, pos):
    """micrograd's draw_dot on one position: a record per value, an op node per op,
    every node of the position and every node feeding it (names from ids, not id())."""
    inner = trace.nodes(pos=pos)
    ids = set(inner)
    for i in inner:
        ids.update(trace.children(i))
    g = graphviz.Digraph(format='svg', graph_attr={'rankdir': 'LR'})
    for i in sorted(ids):
        g.node(f'v{i}', graphviz.nohtml(f'{{ {trace.op_name(i)} | data {trace.data[i]:.4f} | '
                                        f'grad {trace.grad[i]:.4f} }}'), shape='record')
    for i in inner:
        kids = trace.children(i)
        if kids:
            g.node(f'o{i}', trace.op_name(i))
            g.edge(f'o{i}', f'v{i}')
            for c in kids:
                g.edge(f'v{c}', f'o{i}')
    return g.source, len(ids)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--reps', type=int, default=5, help='runs per figure; medians are printed')
    ap.add_argument('--cap', type=float, default=60.0, help='seconds allowed to the naive layout')
    ap.add_argument('--doc', default='christopher', help='the document (a-z)')
    ap.add_argument('--skip-naive', action='store_true', help='leave out the naive rendering')
    ap.add_argument('--renderer', choices=render_mod.RENDERERS, default='auto',
                    help='native: the `dot` program; wasm: the WebAssembly build; auto: native if present')
    args = ap.parse_args()
    backends = render_mod.available_renderers()
    backend = args.renderer if args.renderer != 'auto' else backends[0] if backends else 'none'

    def layout(source, timeout=60.0):
        return render_mod.render(source, 'svg', renderer=args.renderer, timeout=timeout)

    rec, idx = [], []
    for _ in range(args.reps):
        t, trace = timed(lambda: fresh_trace(args.doc))
        rec.append(t)
        idx.append(timed(lambda: build_index(trace))[0])
    warm, _ = timed(lambda: layout('digraph { a -> b }'))
    med = statistics.median
    print(f"document {args.doc!r}: {len(trace):,} nodes, {len(trace.positions())} positions; "
          f"renderer: {backend}; medians of {args.reps} runs")
    print(f"record {med(rec) * 1000:.0f} ms, index {med(idx) * 1000:.0f} ms (once per trace); "
          f"renderer warm-up {warm * 1000:.0f} ms (once per process)\n")
    head = (f"{'view':28} {'level':>6} {'nodes':>5} {'edges':>5} {'select':>7} {'fold':>7} {'draw':>7} "
            f"{'layout':>7} {'view':>7} {'e2e':>7} {'SVG':>8}")
    print(head)
    print('-' * len(head))
    for name, q in views(trace):
        rows = {k: [] for k in ('select', 'fold', 'draw', 'layout')}
        for _ in range(args.reps):
            ts, sel = timed(lambda: select(trace, **q))
            tf, folded = timed(lambda: fold(trace, sel))
            td, g = timed(lambda: draw(trace, folded))
            tl, svg = timed(lambda: layout(g.source))
            for k, v in zip(rows, (ts, tf, td, tl)):
                rows[k].append(v)
        m = {k: med(v) * 1000 for k, v in rows.items()}
        view = sum(m.values())
        st = folded.stats
        print(f"{name:28} {st['level']:>6} {st['nodes']:>5} {st['edges']:>5} {m['select']:>5.1f}ms "
              f"{m['fold']:>5.1f}ms {m['draw']:>5.1f}ms {m['layout']:>5.0f}ms {view:>5.0f}ms "
              f"{view + (med(rec) + med(idx)) * 1000:>5.0f}ms {len(svg) / 1024:>6.0f}KB")
    print("\ntargets: e2e <= 1000 ms, SVG <= 300 KB, select + fold <= 100 ms")

    if args.skip_naive:
        return
    last = trace.positions()[-1]
    source, n = naive_dot(trace, last)
    print(f"\nnaive draw_dot of position {last}: {n:,} values + their op nodes, "
          f"{source.count(' -> '):,} edges, DOT {len(source) / 1024:.0f} KB")
    try:
        t, svg = timed(lambda: layout(source, timeout=args.cap))
        shown = f"{t:.1f} s, SVG {len(svg) / 1024 / 1024:.1f} MB"
    except render_mod.LayoutTimeout:
        t, shown = None, f"> {args.cap:g} s (capped)"
    print(f"naive layout: {shown}")
    folded = fold(trace, select(trace, token=last))
    default = draw(trace, folded).source
    svg = layout(default)
    tl = med([timed(lambda: layout(default))[0] for _ in range(args.reps)])
    ratio = f"{t / tl:,.0f}x" if t else f"> {args.cap / tl:,.0f}x"
    print(f"default token view layout: {tl * 1000:.0f} ms, SVG {len(svg) / 1024:.0f} KB, "
          f"{folded.stats['nodes']} nodes: naive / default layout time = {ratio}")


if __name__ == '__main__':
    main()
