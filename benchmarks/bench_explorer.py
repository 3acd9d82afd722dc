"""Explorer benchmark: drives a real browser (Debian's chromium via Playwright); prints figures, asserts nothing.

    python benchmarks/bench_explorer.py [--reps 7] [--doc emma] [--renderer auto]

Each figure is a median over --reps runs, timed in the page (performance.now()):
  first load      a fresh server (started per run, so nothing is cached) and a fresh
                  tab: navigation start -> the first view drawn (the 'explorer:view' event)
  new view        explorer.setState(...) -> the view drawn, for views the server has not
                  seen (a position's vector view, then one head's attention weights expanded)
  cached (server) from another view (the head view), back to the whole state of each new view
                  with a search highlight this tab has not asked for: the page's own cache misses
                  and the server's LRU answers (checked: the server's X-View-Cache header says
                  'hit', one request per sample; a miss stops the benchmark)
  cached (page)   the very states this tab has drawn (its own cache: back/forward; checked: no
                  request to the server)
Every wait has a time limit and a failure stops the run with the page's message; a target
equal to the view shown is refused (no 'view' event would come).
  doc switch      setState({doc: <a new 12-character name>}): record + fold + layout + draw
  frame step      the step-through (issue 13): one frame forward (stepthrough.step(1)) until
                  the class switch and text changes are laid out (a forced layout read), and
                  until the next painted frame (two requestAnimationFrames), on the token view
                  (block level) and on a position's vector view of layer 0
  longest task    the longest main-thread task (PerformanceObserver 'longtask') and the
                  longest gap between animation frames while any of the above loaded
Targets (issue 12): first load <= 1 s, new view <= 500 ms, cached <= 100 ms, doc switch
<= 2 s, no frame longer than 200 ms; (issue 13) one frame step <= 50 ms, no relayout.
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

from microgpt.recording import DEFAULT_DOC
from tests.explorer_helpers import opened

ROOT = Path(__file__).resolve().parent.parent
ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--no-first-run']
DOCS12 = ['christophers', 'maximiliansa', 'alexandrinas', 'jacquelynnes', 'bartholomewa', 'constantinos',
          'gwendolynnes', 'evangelinaaa', 'marguerittes', 'fredericksen', 'wilhelminaaa', 'throckmorton']

# Installed before the page's own script: timestamps of drawn views, long tasks, frame gaps.
PROBE = """
window.__drawn = [];
document.addEventListener('explorer:view', () => window.__drawn.push(performance.now()));
window.__long = 0;
try { new PerformanceObserver(l => { for (const e of l.getEntries()) window.__long = Math.max(window.__long, e.duration); })
        .observe({type: 'longtask', buffered: true}); } catch (e) {}
window.__gap = 0;
let __last = performance.now();
(function tick(t) { window.__gap = Math.max(window.__gap, t - __last); __last = t; requestAnimationFrame(tick); })(__last);
// every /api/view request the page makes, with the server's X-View-Cache answer (hit | miss)
window.__views = [];
const __fetch = window.fetch;
window.fetch = async (...a) => {
  const r = await __fetch(...a);
  const u = String(a[0]);
  if (u.startsWith('/api/view')) window.__views.push({q: u.slice(10), cache: r.headers.get('X-View-Cache')});
  return r;
};
"""

# Go to a view state, then wait for it to be drawn: [elapsed ms, /api/view requests made, the server's
# answers (hit | miss), the drawn URL]. `replace`: the target is a whole state (every other field is
# cleared), else a partial one merged into the current state. Refuses (throws) a target equal to the
# view shown (nothing to time), and fails loudly when no view is drawn within `limit` ms (a refused or
# failed load shows a message instead of drawing: that message is in the error).
TIMED = """async ([target, replace, limit]) => {
  const cur = window.explorer.state;
  const partial = {};
  if (replace) for (const k of Object.keys(cur)) partial[k] = null;
  Object.assign(partial, target);
  const next = Object.assign({}, cur);
  for (const [k, v] of Object.entries(partial)) {
    if (v === null || (Array.isArray(v) && !v.length)) delete next[k]; else next[k] = Array.isArray(v) ? v : String(v);
  }
  const q = window.explorer.query(next);
  if (q === window.explorer.query(cur)) throw new Error('target state equals the view shown: ' + q);
  const before = window.__views.length;
  const t0 = performance.now();
  let timer = null, off = false;
  const done = new Promise((res) => window.explorer.on('view', () => { if (!off) res(performance.now() - t0); }));
  const late = new Promise((_, rej) => { timer = setTimeout(() => {
    const m = document.getElementById('msg');
    rej(new Error(`no view drawn ${limit} ms after going to ?${q}; page message: ` +
                  (m && !m.hidden ? m.textContent : '(none)')));
  }, limit); });
  window.explorer.setState(partial);
  try {
    const ms = await Promise.race([done, late]);
    const got = window.__views.slice(before);
    return [ms, got.length, got.map((x) => x.cache), window.explorer.view.url];
  } finally { off = true; clearTimeout(timer); }
}"""
LIMIT_MS = 60000


def timed(page, target, replace=False):
    """[ms, requests, server answers, url] of one navigation (see TIMED)."""
    return page.evaluate(TIMED, [target, replace, LIMIT_MS])


def full_state(page):
    """The whole state of the view shown (every field, lists as lists)."""
    return page.evaluate('window.explorer.state')


# one frame step, timed: [sync ms], [to next paint ms] over the first 12 frames of the view
STEP = '''async () => {
  const raf = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const sync = [], paint = [];
  stepthrough.seek(0);
  await raf();
  for (let k = 0; k < Math.min(12, stepthrough.count()); k++) {
    const t0 = performance.now();
    stepthrough.step(1);
    document.body.offsetHeight;
    sync.push(performance.now() - t0);
    await raf();
    paint.push(performance.now() - t0);
  }
  return [sync, paint];
}'''


def start_server(doc, renderer):
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED='1')
    p = subprocess.Popen([sys.executable, str(ROOT / 'cli.py'), 'explore', '--no-browser', '--doc', doc,
                          '--renderer', renderer], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = p.stdout.readline()
    if not line.startswith('microgpt-graph explorer:'):
        p.kill()
        raise SystemExit(f"server did not start: {line}{p.stderr.read()}")
    opened(line.split()[2])         # it records the step in the background: measured once it is in
    return p, line.split()[2]


def stop_server(p):
    """Ctrl-C, then SIGKILL if it is still up (a shell that started us in the background ignores
    SIGINT, and the server inherits that)."""
    p.send_signal(signal.SIGINT)
    try:
        p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()


def expect(ok, message):
    """A benchmark that measured the wrong thing stops, saying what."""
    if not ok:
        raise SystemExit(f"bench_explorer: {message}")


def med(xs):
    return statistics.median(xs) if xs else float('nan')


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--reps', type=int, default=7)
    ap.add_argument('--doc', default=DEFAULT_DOC)
    ap.add_argument('--renderer', default='auto', choices=['auto', 'native', 'wasm'])
    a = ap.parse_args()
    first, new, cached_srv, cached_page, switch, longest, gaps = [], [], [], [], [], [], []
    step_sync, step_paint, step_nodes = [], [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path='/usr/bin/chromium', args=ARGS)
        for rep in range(a.reps):
            server, url = start_server(a.doc, a.renderer)
            try:
                ctx = browser.new_context(viewport={'width': 1600, 'height': 900})
                ctx.add_init_script(PROBE)
                page = ctx.new_page()
                page.goto(url)
                page.wait_for_function('() => window.__drawn.length > 0', timeout=LIMIT_MS)
                first.append(page.evaluate('window.__drawn[0]'))
                n_pos = page.evaluate('window.explorer.view.crumbs[1].to.token') + 1
                p = rep % n_pos
                steps = [{'view': 'token', 'token': p, 'level': 'vector', 'expand': None},
                         {'expand': [f'pos{p}/layer0/attn/head{rep % 4}/attn_weights']}]
                states = []                     # the whole state of each new view, as drawn
                for s in steps:
                    ms, n, answers, _ = timed(page, s)
                    expect(n == 1 and answers == ['miss'], f"a new view {s} was not built by the server: {answers}")
                    new.append(ms)
                    states.append(full_state(page))
                head = {'view': 'head', 'layer': 0, 'head': 0, 'token': p, 'level': 'auto'}
                for k, st in enumerate(states):
                    # from another view (the head view, not timed) back to a whole state drawn above, with a
                    # search highlight this tab has not asked for: the page's cache misses, the server's hits
                    timed(page, head, replace=True)
                    ms, n, answers, url = timed(page, dict(st, hl=f'{1000 + 10 * rep + k}'), replace=True)
                    expect(n == 1 and answers == ['hit'], f"not a server cache hit: {answers} for {url}")
                    cached_srv.append(ms)
                timed(page, head, replace=True)
                for st in states:                   # the very states this tab has drawn: its own cache
                    ms, n, answers, url = timed(page, st, replace=True)
                    expect(n == 0, f"the page asked the server again for {url}: {answers}")
                    cached_page.append(ms)
                switch.append(timed(page, {'doc': DOCS12[rep % len(DOCS12)]}, replace=True)[0])
                for st in ({'view': 'token', 'token': p, 'level': 'block'},
                           {'view': 'layer', 'layer': 0, 'token': p, 'level': 'vector'}):
                    timed(page, dict(st, doc=None, frame=0, expand=None, hl=None, sel=None, head=None))
                    page.wait_for_function('() => window.stepthrough && stepthrough.open()', timeout=LIMIT_MS)
                    step_nodes.append(page.evaluate('stepthrough.count()'))
                    got = page.evaluate(STEP)
                    step_sync.extend(got[0])
                    step_paint.extend(got[1])
                longest.append(page.evaluate('window.__long'))
                gaps.append(page.evaluate('window.__gap'))
                ctx.close()
            finally:
                stop_server(server)
        browser.close()
    print(f"explorer benchmark: doc {a.doc!r}, renderer {a.renderer}, {a.reps} runs, medians (ms)")
    rows = [('first load (fresh server, fresh tab)', first, 1000), ('new view (expand / navigate)', new, 500),
            ('cached view (server LRU)', cached_srv, 100), ('cached view (page, back/forward)', cached_page, 100),
            ('doc switch (12-character name)', switch, 2000)]
    for name, xs, target in rows:
        print(f"  {name:40s} {med(xs):8.1f}   max {max(xs):8.1f}   target <= {target}")
    print(f"  {'frame step, class switch + layout':40s} {med(step_sync):8.2f}   max {max(step_sync):8.2f}   "
          f"target <= 50  ({min(step_nodes)}..{max(step_nodes)} frames per view)")
    print(f"  {'frame step, to the next painted frame':40s} {med(step_paint):8.2f}   max {max(step_paint):8.2f}")
    print(f"  {'longest long task (max over runs)':40s} {max(longest):8.1f}")
    print(f"  {'longest frame gap (max over runs)':40s} {max(gaps):8.1f}   target <= 200")
    print(f"  checked: {len(new)} new views answered 'X-View-Cache: miss', {len(cached_srv)} server-cached samples "
          f"'hit' (one /api/view request each), {len(cached_page)} page-cached samples made no request")


if __name__ == '__main__':
    main()
