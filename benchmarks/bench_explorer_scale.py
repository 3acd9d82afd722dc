"""End-to-end new views of a big step in the browser (issue 25: any new view <= 1 s at 4 x 64, request
to drawn SVG in Chromium). Prints figures, asserts nothing.

    python -m benchmarks.bench_explorer_scale [--layers 4] [--embd 64] [--doc anna] [--reps 2] [--record christopher]

Saves a checkpoint of a --layers x --embd model (4 heads, block size 16, a-z, seed 42: bench_scale's
model), starts `explore --checkpoint` on it (its own process, as a user runs it; the step from the user
cache when it was recorded before, so --no-cache for a cold start), opens the page in Debian's
chromium and times new views the server has not seen, each split where it goes:
  server      the server's own time for the view (Api.view: select + fold + draw, then the Graphviz
              layout), from the answer's ms
  wait        the request sent -> its first byte, less the server's time (HTTP, the request thread)
  transfer    first byte -> last byte of the answer (its size in kB, uncompressed JSON + SVG)
  page        last byte -> the view drawn ('explorer:view'): JSON parse, the SVG put in, decorated,
              the camera set (the page's layout and paint)
  total       explorer.setState -> the view drawn (performance.now() in the page)
The views are timed once the work after the first view has ended (the store of a step recorded at
start, a big step's routes walk, contributions ranked and Adam stepped on every cell: `settle`, its seconds
printed). Each round also asks a matrix's uses
at every position (layer r's mlp_fc1), its median apart.
and then the server's resident memory at rest after those views (budget 1 GB) and its peak, each
also in bytes a node of the step.
With --extra: once each, everything else a user asks of the step that draws or answers (not timed
above): the other matrices' uses (wte, wpe, lm_head, attn_wq/wk/wv/wo, mlp_fc2), cells, the loss's
neighbourhood, the whole document, a vector view's expand clicks (and one too big, which falls back),
a node's neighbourhood (a why path's stop); then requests timed request -> JSON parsed in the page
(fetch, no drawing): the step-through's frames (backward, forward), the Adam update (a token view, a
matrix), a node's panel with its "why" (a node near the loss, one deep in the step: the first walks
the routes), search (max:grad, max:contrib, max:dw, a word) and a heat-map row's tooltip.
With --record DOC: that document recorded from the page in the background (recording.js), the
progress bar read meanwhile, and a view of the document on screen asked while it records.
Times are wall-clock on a shared machine: state the load (printed at the start and the end).
"""

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from benchmarks.bench_explorer import ARGS, LIMIT_MS
from microgpt.checkpoint import save_checkpoint
from microgpt.data import Tokenizer
from microgpt.model import GPTConfig, init_params
from tests.explorer_helpers import opened

ROOT = Path(__file__).resolve().parent.parent
AZ = [chr(c) for c in range(97, 123)]
BUDGET_MS = 1000

# setState(target) -> drawn, with the /api/view request's resource timing and the server's ms
TIMED = """async ([target, limit]) => {
  performance.clearResourceTimings();
  const t0 = performance.now();
  let timer = null;
  const drawn = new Promise((res) => window.explorer.on('view', () => res(performance.now())));
  const late = new Promise((_, rej) => { timer = setTimeout(() => rej(new Error('no view drawn; page message: ' +
    document.getElementById('msg').textContent)), limit); });
  window.explorer.setState(target);
  const t1 = await Promise.race([drawn, late]);
  clearTimeout(timer);
  const [e] = performance.getEntriesByType('resource').filter((x) => x.name.includes('/api/view'));
  const v = window.explorer.view;
  return {total: t1 - t0, start: e.startTime - t0, first: e.responseStart - e.startTime,
          transfer: e.responseEnd - e.responseStart, page: t1 - e.responseEnd, kb: e.decodedBodySize / 1024,
          server: v.ms.total, build: v.ms.build, layout: v.ms.render, cached: v.cached, title: v.title,
          nodes: v.stats.nodes};
}"""


def big_checkpoint(folder, layers, embd):
    """The path of a checkpoint saved in `folder`: a `layers` x `embd` model, 4 heads, block size 16, a-z,
    seed 42 (bench_scale's model)."""
    tok = Tokenizer(AZ)
    config = GPTConfig(vocab_size=tok.vocab_size, n_layer=layers, n_embd=embd)
    ckpt = folder / 'big.json'
    save_checkpoint(ckpt, init_params(config, random.Random(42)), config, tok)
    return ckpt


def start(ckpt, doc, no_cache):
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED='1')
    t0 = time.monotonic()
    p = subprocess.Popen([sys.executable, str(ROOT / 'cli.py'), 'explore', '--no-browser', '--no-check', '--doc', doc,
                          '--checkpoint', str(ckpt), '--max-nodes', '0', *(['--no-cache'] if no_cache else [])],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = p.stdout.readline()
    if not line.startswith('microgpt-graph explorer:'):
        p.kill()
        raise SystemExit(f"server did not start: {line}{p.stderr.read()}")
    opened(line.split()[2])         # it records the step in the background, then draws the first view
    return p, line.split()[2], time.monotonic() - t0


def memory_mb(pid):
    """(resident, peak resident) MB of process `pid`, from /proc (Linux)."""
    with open(f'/proc/{pid}/status') as f:
        fields = dict(line.split(':', 1) for line in f if line.startswith(('VmRSS', 'VmHWM')))
    return tuple(int(fields[k].split()[0]) / 1024 for k in ('VmRSS', 'VmHWM'))


def load():
    return ' '.join(f'{x:.1f}' for x in os.getloadavg())


def row(name, t):
    print(f"{name:34s} total {t['total']:6.0f} ms = server {t['server']:5.0f} (build {t['build']:.0f} + layout "
          f"{t['layout']:.0f}) + wait {t['first'] - t['server']:4.0f} + transfer {t['transfer']:4.0f} "
          f"({t['kb']:,.0f} kB) + page {t['page']:4.0f}; {t['nodes']} nodes drawn"
          f"{'  OVER 1 s' if t['total'] > BUDGET_MS else ''}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--layers', type=int, default=4)
    ap.add_argument('--embd', type=int, default=64)
    ap.add_argument('--doc', default='anna')
    ap.add_argument('--reps', type=int, default=2, help='rounds of new views (each round its own views)')
    ap.add_argument('--no-cache', action='store_true', help='record the step at start, not from the user cache')
    ap.add_argument('--record', metavar='DOC', help='also record DOC from the page in the background')
    ap.add_argument('--extra', action='store_true', help="also every other kind once (see --help's text)")
    a = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = big_checkpoint(Path(tmp), a.layers, a.embd)
        server, url, started = start(ckpt, a.doc, a.no_cache)
        try:
            print(f"model {a.layers} x {a.embd}, doc {a.doc!r}: explore opened its step after {started:.1f} s "
                  f"(recording or the cached step, and the first view)")
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path='/usr/bin/chromium', args=ARGS)
                page = browser.new_context(viewport={'width': 1600, 'height': 900}, bypass_csp=True).new_page()
                t0 = time.monotonic()
                page.goto(url)
                page.wait_for_function('window.explorer && window.explorer.view', timeout=LIMIT_MS)
                print(f"{'first view (server had it)':34s} {1000 * (time.monotonic() - t0):6.0f} ms navigation -> drawn")
                settle(page)
                last = len(page.evaluate('explorer.info.tokens')) - 1
                totals, matrices = [], []
                for rep in range(a.reps):
                    targets = [(f'token {rep}', {'view': 'token', 'token': rep, 'level': None}),
                               (f'token {rep} vector level', {'view': 'token', 'token': rep, 'level': 'vector'}),
                               (f'layer {rep % a.layers} at token {last}',
                                {'view': 'layer', 'layer': rep % a.layers, 'token': last, 'level': None}),
                               (f'head {rep % 4} of layer 0 at {last}',
                                {'view': 'head', 'layer': 0, 'head': rep % 4, 'token': last, 'level': None})]
                    # a matrix's uses at every position (its own median: scattered ids, a heat-map)
                    targets.append((f'uses of layer{rep % a.layers}.mlp_fc1',
                                    {'view': 'param', 'param': f'layer{rep % a.layers}.mlp_fc1', 'level': None}))
                    for name, target in targets:
                        t = page.evaluate(TIMED, [target, LIMIT_MS])
                        if t['cached']:
                            print(f"{name:34s} (the server had it: not a new view; skipped)")
                            continue
                        row(name, t)
                        (matrices if name.startswith('uses of') else totals).append(t)
                for what, ts in (('new views', totals), ("matrices' uses", matrices)):
                    if ts:
                        med = {k: statistics.median(t[k] for t in ts) for k in ('total', 'server', 'first', 'transfer',
                                                                                  'page', 'build', 'layout', 'kb')}
                        med['nodes'] = '-'
                        row(f'median of {len(ts)} {what}', med)
                if a.extra:
                    extra(page, last, a.layers)
                rss, hwm = memory_mb(server.pid)
                n = page.evaluate('explorer.info.n_nodes')
                print(f"server memory at rest {rss:,.0f} MB after these views (budget 1 GB: "
                      f"{'met' if rss <= 1024 else 'NOT met'}), {rss * 2**20 / n:,.0f} B a node of the step's {n:,}; "
                      f"its peak {hwm:,.0f} MB, {hwm * 2**20 / n:,.0f} B a node (recording or loading the step)")
                if a.record:
                    record(page, a.record)
                browser.close()
        finally:
            server.send_signal(signal.SIGINT)
            try:
                _, err = server.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                _, err = server.communicate()
            reused = [line for line in err.splitlines() if line.startswith('reused the recorded step')]
            print(f"explore said: {reused[0] if reused else 'nothing reused (recorded at start)'}")
    print(f"machine at the end: load average {load()}")


AFTER_VIEW = """async () => {
  const r = await fetch('/api/progress');
  return (await r.json()).work.filter((j) => ['store', 'routes', 'extremes', 'adam'].includes(j.kind)).map((j) => j.what);
}"""


def settle(page, limit=300):
    """Wait for the work a step does after its first view (recordings.py: the store of a step recorded now
    into the user cache, a big step's walk of its routes from the loss, its ranking of contributions and Adam
    stepped on every cell: Recordings' AFTER_VIEW), so new views are timed at rest;
    bench_explorer_store times a view asked during the store."""
    t0, seen = time.monotonic(), set()
    while time.monotonic() - t0 < limit:
        running = page.evaluate(AFTER_VIEW)
        if not running:
            break
        seen.update(running)
        time.sleep(0.25)
    print(f"{'after the first view':34s} {time.monotonic() - t0:6.1f} s of background work: "
          f"{'; '.join(sorted(seen)) or 'none'}")


# /api/<endpoint>?<query> from the page (its token rides on fetch: token.js): request -> JSON parsed
FETCHED = """async ([endpoint, query]) => {
  const t0 = performance.now();
  const r = await fetch(`/api/${endpoint}?${query}`);
  const text = await r.text();
  const d = JSON.parse(text);
  return {ms: performance.now() - t0, status: r.status, kb: text.length / 1024, error: d.error || null};
}"""


CLEAN = {'token': None, 'layer': None, 'head': None, 'param': None, 'node': None, 'depth': None, 'dir': None,
         'expand': [], 'sel': None, 'hl': None, 'focus': None}     # setState merges: the fields of the view before


def linked(page, target, timed=True):
    """TIMED of `target` as a link to it gives it: the fields of the view before cleared (setState merges);
    not timed: a view seen before, back on screen (the page's own cache may answer: no request to time)."""
    if timed:
        return page.evaluate(TIMED, [dict(CLEAN, **target), LIMIT_MS])
    page.evaluate("(t) => new Promise((res) => { window.explorer.on('view', () => res()); window.explorer.setState(t); })",
                  dict(CLEAN, **target))
    return None


def extra(page, last, layers):
    """Every other kind once (see --extra), each a view or a request the server has not seen; each view's
    state as a link to it gives it (the old view's fields cleared), so its requests ask for the drawn view."""
    top = layers - 1
    views = [(f'uses of {m}', {'view': 'param', 'param': m, 'level': None})
             for m in ('wte', 'wpe', 'lm_head', f'layer{top}.attn_wq', f'layer{top}.attn_wk', f'layer{top}.attn_wv',
                       f'layer{top}.attn_wo', f'layer{top}.mlp_fc2')]
    views += [(f'cell {c}', {'view': 'param', 'param': c, 'level': None})
              for c in ('wte[3][5]', f'layer{top}.attn_wq[3][5]', 'lm_head[3][5]')]
    views += [('the loss (node view)', {'view': 'node', 'node': 'loss', 'level': None}),
              ('whole document', {'view': 'doc', 'level': None}),
              (f'token {last} vector level', {'view': 'token', 'token': last, 'level': 'vector'})]
    views += [(f'expand {x}', {'view': 'token', 'token': last, 'level': 'vector', 'expand': [f'pos{last}/{x}']})
              for x in ('embed/embed', 'layer0/attn/rmsnorm', 'loss/probs', 'layer0/attn')]
    scalars = "Object.values(explorer.view.nodes).filter((d) => d.k === 's').map((d) => d.id)"
    for name, target in views:
        t = linked(page, target)
        row(name + (' (fell back)' if page.evaluate('!!explorer.view.fallback') else ''), t)
        if name.endswith('rmsnorm'):
            ids = page.evaluate(scalars)
            deep = ids[len(ids) // 2]       # a scalar of layer 0 at the last position, expanded
    t = linked(page, {'view': 'node', 'node': deep, 'depth': 2, 'level': 'auto', 'sel': deep})
    row(f'node {deep} neighbourhood', t)
    linked(page, {'view': 'node', 'node': 'loss', 'level': None}, timed=False)
    near = page.evaluate(scalars)[-1]      # a scalar next to the loss
    linked(page, {'view': 'token', 'token': last, 'level': 'vector'}, timed=False)      # drawn above
    token = page.evaluate("explorer.view.url")      # the view on screen, as the page asks for its frames, panels
    print(f"requests of the view on screen: {token}")
    asks = [('step-through frames, backward', 'frames', token), ('forward', 'frames', f'{token}&mode=forward'),
            ('Adam update of the token view', 'update', token), ('Adam update of wte', 'update', 'view=param&param=wte'),
            (f'node {near} panel (by the loss)', 'node', f'{token}&id={near}'),
            (f'node {deep} panel (deep)', 'node', f'{token}&id={deep}'),
            *((f'search {q}', 'search', f'{token}&q={q}') for q in ('max:grad', 'max:contrib', 'max:dw', 'wte')),
            ('heat-map row tooltip (wte)', 'heatrow', 'view=param&param=wte&row=m0_d3')]
    for name, endpoint, query in asks:
        t = page.evaluate(FETCHED, [endpoint, query])
        print(f"{name:34s} {t['ms']:6.0f} ms /api/{endpoint} request -> parsed ({t['kb']:,.0f} kB, "
              f"{t['status']}{', ' + t['error'] if t['error'] else ''}){'  OVER 1 s' if t['ms'] > BUDGET_MS else ''}")


def record(page, doc):
    """`doc` recorded from the page: the progress bar's lines seen, and the view asked meanwhile."""
    t0 = time.monotonic()
    page.fill('#doc', doc)
    page.press('#doc', 'Enter')
    lines, during = [], None
    while time.monotonic() - t0 < 600:
        text = page.evaluate("document.querySelector('#recbar').hidden ? null : document.querySelector('#rectext').textContent")
        if text and (not lines or lines[-1][1] != text):
            lines.append((time.monotonic() - t0, text))
        if text and ': recording: ' in text and during is None:
            during = page.evaluate(TIMED, [{'view': 'token', 'token': 1, 'level': 'vector', 'hl': 'max:grad'}, LIMIT_MS])
        if page.evaluate(f"explorer.view.url.includes('doc={doc}')"):
            break
        time.sleep(0.2)
    print(f"record {doc!r} from the page: drawn after {time.monotonic() - t0:.1f} s; {len(lines)} progress lines, "
          f"the first of each phase and the last:")
    phase = lambda text: text.split(': ')[1] if ': ' in text else text     # noqa: E731 -- "what: phase: figures"
    for k, (at, text) in enumerate(lines):
        if k == 0 or k == len(lines) - 1 or phase(text) != phase(lines[k - 1][1]):
            print(f"    {at:5.1f} s  {text}")
    if during is not None:
        row('a view meanwhile (doc on screen)', during)


if __name__ == '__main__':
    main()
