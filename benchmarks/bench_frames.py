"""Figures of issues 13 and 20: frames of a ~150-node view (and with the edge labels placed on
its SVG, as the explorer and the tours ask for them), one frame step in the browser, a 10-stop
tour's size.

    PYTHONPATH=. python benchmarks/bench_frames.py [--browser]

Medians of 7 runs on a warm trace (the recording and the fold are not timed:
the frames are computed from a View that is already built).
"""

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from graphviz_export.steps.frames import frames
from graphviz_export.view import build_view, render_view
from graphviz_export.web.tour import build_tour_html, load_tour
from microgpt.data import Tokenizer
from microgpt.model import GPTConfig, init_params
from microgpt.recording import record_step
from microgpt.train import SEED, fresh_model

ROOT = Path(__file__).resolve().parent.parent


def median_ms(fn, n=7):
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1000)
    return statistics.median(ts)


def get_trace(doc, checkpoint, seed):
    return record_step(*fresh_model(seed), doc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--browser', action='store_true', help='also time one frame step in headless chromium')
    args = ap.parse_args()
    tok = Tokenizer([chr(c) for c in range(97, 123)])
    cfg = GPTConfig(vocab_size=tok.vocab_size)
    trace = record_step(init_params(cfg, random.Random(SEED)), cfg, tok, 'christopher')
    for kw in ({'layer': 0, 'level': 'vector', 'budget': 400, 'edge_budget': 2000}, {'layer': 0}, {'token': 11},
               {'token': 3, 'level': 'vector'}, {'param': 'wte'}):
        view = build_view(trace, **kw)
        svg = render_view(view).decode('utf-8')
        ms = median_ms(lambda v=view: frames(v))
        placed = median_ms(lambda v=view: frames(v, svg=svg))     # + the edge labels' places (what pages get)
        print(f"frames {kw}: {view.stats['nodes']} nodes, {len(frames(view)['frames'])} frames: {ms:.1f} ms, "
              f"with label places {placed:.1f} ms")
    tour = load_tour(ROOT / 'examples' / 'backprop_tour.toml')
    t0 = time.perf_counter()
    html = build_tour_html(tour, get_trace)
    print(f"examples/backprop_tour.toml: {len(tour.stops)} stops, {len(html.encode()) / 1e6:.2f} MB, "
          f"built in {time.perf_counter() - t0:.1f} s")
    if args.browser:
        from playwright.sync_api import sync_playwright
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / 'lecture.html'
            path.write_text(html, encoding='utf-8')
            with sync_playwright() as p:
                b = p.chromium.launch(executable_path='/usr/bin/chromium', args=['--no-sandbox', '--disable-gpu'])
                page = b.new_page(viewport={'width': 1400, 'height': 900})
                page.goto(path.as_uri())
                for k in range(len(tour.stops)):
                    page.evaluate(f'tour.go({k})')
                    # the step with the layout the browser does after it, and the player's script alone
                    # (a player that reads the layout, getBBox, pays for it inside the script)
                    ms = page.evaluate("""(() => { const p = tour.player(); if (!p) return null;
                        const ts = [], js = [];
                        for (let i = 0; i < 41; i++) { const t0 = performance.now(); p.seek(i % (p.count + 1));
                        const t1 = performance.now(); document.body.getBoundingClientRect();
                        ts.push(performance.now() - t0); js.push(t1 - t0); }
                        ts.sort((a, b) => a - b); js.sort((a, b) => a - b); return [ts[20], js[20], p.count]; })()""")
                    if ms:
                        print(f"stop {k + 1}: one frame step {ms[0]:.2f} ms, its script {ms[1]:.2f} ms "
                              f"(medians of 41, {ms[2]} frames)")
                b.close()


if __name__ == '__main__':
    main()
