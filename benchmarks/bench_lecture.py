"""Lecture benchmark (issue 23): stepping with the camera following, in a real browser; prints
figures, asserts nothing.

    python -m benchmarks.bench_lecture [--steps 40] [--gap-ms 120] [--doc emma]

For the token view of --doc (block and vector level), normal and presentation mode, at 1024x768
and 1920x1080, and for the example tour's player in presentation mode:
  step to paint   one key press (ArrowRight: the page's own key path) -> the frame's classes,
                  texts and the camera's first move painted (two requestAnimationFrames);
                  median and 95th percentile of --steps steps, one every --gap-ms ms, so each
                  step lands while the previous pan (240 ms, eased) is still under way
  longest gap     the longest time between two animation frames while stepping (the page
                  never stops painting for longer)
  in view         frames whose lit node is inside the window once the camera has settled
Then the layout times behind the explorer's ceiling (web/explorer/fallback.py: LAYOUT_NODES):
views just over the budget and far over it, laid out by each renderer.
Targets (issue 23): step to paint <= 50 ms median, no gap > 200 ms, the lit node in view 100%.
"""

import argparse
import statistics
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from graphviz_export import build_view, render_view
from graphviz_export.render import available_renderers
from graphviz_export.web.tour import build_tour_html, load_tour
from microgpt.recording import DEFAULT_DOC, record_step
from microgpt.train import fresh_model
from tests.explorer_helpers import running_server

ROOT = Path(__file__).resolve().parent.parent
ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run']

# installed before the page's scripts: the gaps between animation frames
PROBE = """
window.__gap = 0;
window.__gapOn = false;
let __last = performance.now();
(function tick(t) { if (window.__gapOn) window.__gap = Math.max(window.__gap, t - __last); __last = t;
  requestAnimationFrame(tick); })(__last);
"""

# press → on `target` (the key path a lecturer uses) `steps` times, one every `gap` ms:
# [key to paint ms per step], and whether each frame's lit node was in view once the camera settled
STEPS = """async ([steps, gap, sel]) => {
  const paint = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const wait = (ms) => new Promise(r => setTimeout(r, ms));
  const out = [];
  window.__gap = 0; window.__gapOn = true;
  for (let k = 0; k < steps; k++) {
    const t0 = performance.now();
    document.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowRight', bubbles: true}));
    await paint();
    out.push(performance.now() - t0);
    await wait(gap);
  }
  window.__gapOn = false;
  // in view: each frame again, the camera settled (animation off), the lit node's box in the window
  const box = document.querySelector(sel).getBoundingClientRect();
  MicrogptCamera.animateMs = 0;
  let seen = 0, n = 0;
  const p = (PLAYER)();
  const count = p.count();
  for (let f = 1; f <= count; f++) {
    p.seek(f);
    await paint();
    const id = p.frames().frames[f - 1].svg;
    // the one drawn: a tour's hidden stops hold the same node ids
    const g = [...document.querySelectorAll(sel + ' svg [id="' + id + '"]')].find(e => e.getBoundingClientRect().width);
    const r = g ? g.getBoundingClientRect() : {left: -1e9, right: -1e9, top: 0, bottom: 0};
    n += 1;
    if (r.left >= box.left - 1 && r.right <= box.right + 1 && r.top >= box.top - 1 && r.bottom <= box.bottom + 1) seen += 1;
  }
  MicrogptCamera.animateMs = 240;
  return {ms: out, gap: window.__gap, seen, n};
}"""

EXPLORER_PLAYER = "() => ({count: stepthrough.count, seek: stepthrough.seek, frames: stepthrough.frames})"
TOUR_PLAYER = "() => ({count: () => tour.player().count, seek: (f) => tour.player().seek(f), " \
              "frames: () => JSON.parse(document.getElementById('tour-data').textContent).stops[tour.stop()].frames})"


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def run(pg, steps, gap, sel, player):
    return pg.evaluate(STEPS.replace('PLAYER', player), [steps, gap, sel])


def report(what, got):
    ms = got['ms']
    print(f"{what:52s} {statistics.median(ms):7.1f} {pct(ms, 0.95):7.1f} {got['gap']:9.1f} "
          f"{got['seen']:4d}/{got['n']:<4d}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--steps', type=int, default=40)
    ap.add_argument('--gap-ms', type=int, default=120)
    ap.add_argument('--doc', default=DEFAULT_DOC)
    a = ap.parse_args()
    trace = record_step(*fresh_model(42), a.doc)
    last = trace.positions()[-1]
    print(f"{'stepping (' + a.doc + ')':52s} {'median':>7s} {'p95':>7s} {'max gap':>9s} {'in view':>9s}   (ms)")
    with running_server(doc=a.doc, seed=42) as server, sync_playwright() as p:
        b = p.chromium.launch(executable_path='/usr/bin/chromium', args=ARGS)
        for size in ((1024, 768), (1920, 1080)):
            for level in ('block', 'vector'):
                for present in (False, True):
                    ctx = b.new_context(viewport={'width': size[0], 'height': size[1]}, bypass_csp=True)   # the probes' evaluate
                    ctx.add_init_script(PROBE)
                    pg = ctx.new_page()
                    q = f'view=token&token={last}&level={level}&frame=0' + ('&present=1' if present else '')
                    pg.goto(server.link(q))
                    pg.wait_for_function('window.stepthrough && stepthrough.open()', timeout=60000)
                    pg.wait_for_timeout(300)
                    got = run(pg, min(a.steps, pg.evaluate('stepthrough.count()')), a.gap_ms, '#canvas',
                              EXPLORER_PLAYER)
                    report(f"explorer {size[0]}x{size[1]} {level}{' presenting' if present else ''}", got)
                    ctx.close()
        page = Path('/tmp') / f'bench-lecture-{time.time_ns()}.html'
        page.write_text(build_tour_html(load_tour(ROOT / 'examples' / 'backprop_tour.toml'),
                                        lambda doc, ck, seed: record_step(*fresh_model(seed), doc)), encoding='utf-8')
        try:
            for size in ((1024, 768), (1920, 1080)):
                ctx = b.new_context(viewport={'width': size[0], 'height': size[1]}, bypass_csp=True)   # the probes' evaluate
                ctx.add_init_script(PROBE)
                pg = ctx.new_page()
                pg.goto(page.as_uri() + '#stop=5&frame=0&present=1')
                pg.wait_for_function('window.tour && tour.player()')
                got = run(pg, min(a.steps, pg.evaluate('tour.player().count')), a.gap_ms, '#stage', TOUR_PLAYER)
                report(f"tour stop 5 {size[0]}x{size[1]} presenting", got)
                ctx.close()
        finally:
            page.unlink()
        b.close()

    print(f"\n{'layout (the explorer draws up to 600 nodes)':52s} {'nodes':>6s} {'edges':>6s} " +
          ' '.join(f'{r:>9s}' for r in available_renderers()))
    for kw in (dict(layer=0, head=2, token=last, level='scalar'),
               dict(token=last, level='vector', expand=tuple(f'pos{last}/layer0/attn/head2/{r}' for r in
                                                           ('attn_logits', 'attn_weights', 'head_out'))),
               dict(layer=0, head=2, level='scalar'),
               dict(token=last, level='vector', expand=(f'pos{last}/layer0/mlp/*',))):
        view = build_view(trace, budget=5000, edge_budget=20000, **kw)
        times = []
        for r in available_renderers():
            t0 = time.perf_counter()
            render_view(view, 'svg', renderer=r, timeout=120)
            times.append(time.perf_counter() - t0)
        name = ', '.join(f'{k}={v if not isinstance(v, tuple) else len(v)}' for k, v in kw.items())
        print(f"{name:52s} {view.stats['nodes']:6d} {view.stats['edges']:6d} " + ' '.join(f'{t:8.2f}s' for t in times))


if __name__ == '__main__':
    main()
