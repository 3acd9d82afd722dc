"""Notebook widget benchmark: the explorer in a cell; prints figures, asserts nothing.

    python -m benchmarks.bench_notebook [--reps 5] [--frontend harness|jupyterlab|both]

Figures (medians over --reps):
  first view    the cell `w = explorer_widget(doc='emma'); w` runs -> the first view painted in the cell.
                harness: the kernel's part timed in Python (record 'emma', draw the first view, the
                output: explorer_widget + _repr_mimebundle_, which also gives the widget the first view's
                answers and its static copy) plus the front end's part timed in the page (anywidget's
                render() -> the first paint after the page drew the view, every request answered by the
                Python widget through tests/notebook_harness.py; no comm, no websocket).
                jupyterlab (when installed): Ctrl+Enter -> that paint in the cell, in a real JupyterLab
                with its kernel (imports done by an earlier cell)
  where it goes the kernel's part by phase (recording, the trace's indexes, folding, layout, the view
                cache measuring its entry, the first answers, the static copy, the rest; and what it does
                once the cell is done, while the page draws: made-by's replay, widget.after_cell,
                played here as the page loads), and the front
                end's as times since render(): the page parsed (its DOMContentLoaded), the first view's
                answer in hand (the page's 'explorer:first-answer' mark), drawn (its 'explorer:view'
                event) and painted (the task after the next frame's rendering)
  view change   explorer.setState(...) -> the new view drawn, for views not seen before (positions
                0..3 at vector level), timed in the page: in the widget, and on the HTTP page of
                `microgpt-graph explore` (a server in this process) in the same browser
  static copy   the bytes of the cell's output as saved (all its formats), and gzip-compressed
Target (issue 27): first view <= 1 s; a view change as fast as the page's; static copy <= 50 kB compressed.
"""

import argparse
import contextlib
import gzip
import json
import statistics
import tempfile
import threading
import time
from collections import defaultdict

from playwright.sync_api import sync_playwright

import graphviz_export.web.explorer.cache as cache
import graphviz_export.web.explorer.drawing as drawing
import graphviz_export.web.notebook.widget as widget
import microgpt.recording.session as session
import microgpt.recording.trace as trace
from graphviz_export import explorer_widget
from graphviz_export.web.explorer import make_server
from tests.notebook_harness import open_widget

CHROMIUM = '/usr/bin/chromium'
ARGS = ['--no-sandbox', '--disable-gpu']
VIEWS = [{'token': t, 'level': 'vector'} for t in range(4)]
# the front end's moments: the page parsed (its DOMContentLoaded), and explorer.js's User Timing marks
FRONT = ('parsed', 'answered', 'drawn', 'painted')
MOMENTS = '''() => {
  const at = (name) => {
    const m = performance.getEntriesByName(name)[0];
    return m ? performance.timeOrigin + m.startTime : null;
  };
  const nav = performance.getEntriesByType('navigation')[0];
  return {parsed: nav ? performance.timeOrigin + nav.domContentLoadedEventEnd : null, answered: at('explorer:first-answer'),
          drawn: at('explorer:first-drawn'), painted: at('explorer:first-painted')};
}'''
PAINTED = "() => performance.getEntriesByName('explorer:first-painted').length > 0"
# the kernel's phases: (owner, attribute, name); time inside one is not counted in the ones around it
PHASES = [(session.Models, 'record', 'recording'), (trace.Trace, 'build_indexes', 'indexes'),
          (drawing, 'build_view', 'folding'), (drawing, 'render_view', 'layout'),
          (cache.ViewCache, 'put', 'view cache'), (cache.ViewCache, 'settle', 'view cache'),
          (widget.Explorer, '_first_answers', 'first answers'),
          (widget, 'snapshot', 'static copy')]


@contextlib.contextmanager
def phases():
    """Time the kernel's PHASES while inside: yields {name: seconds}, each phase's own time (a phase
    called inside another is taken out of the outer one's)."""
    spent, stack = defaultdict(float), []

    def timed(fn, name):
        def run(*a, **k):
            t = time.perf_counter()
            stack.append(0.0)
            try:
                return fn(*a, **k)
            finally:
                took = time.perf_counter() - t
                inner = stack.pop()
                spent[name] += took - inner
                if stack:
                    stack[-1] += took
        return run

    saved = [(owner, attr, getattr(owner, attr)) for owner, attr, _ in PHASES if hasattr(owner, attr)]
    for owner, attr, name in PHASES:
        if hasattr(owner, attr):
            setattr(owner, attr, timed(getattr(owner, attr), name))
    try:
        yield spent
    finally:
        for owner, attr, fn in saved:
            setattr(owner, attr, fn)


def timed_call(fn):
    """ms fn() takes."""
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def view_changes(frame):
    """ms of each view change (setState -> the 'view' event), timed in the page."""
    out = []
    for v in VIEWS:
        ms = frame.evaluate('''v => new Promise((done) => {
            const t = performance.now();
            explorer.on('view', () => done(performance.now() - t));
            explorer.setState(v);
        })''', v)
        out.append(ms)
        frame.wait_for_timeout(50)
    return out


def harness(browser, reps):
    first, kernel, parts, front, change, sizes = [], [], defaultdict(list), defaultdict(list), [], None
    for _ in range(reps):
        with phases() as spent:
            t0 = time.perf_counter()
            w = explorer_widget(doc='emma')
            data, metadata = w._repr_mimebundle_()
            k = (time.perf_counter() - t0) * 1000
        for name, s in spent.items():
            parts[name].append(s * 1000)
        parts['rest'].append(k - sum(spent.values()) * 1000)
        page = browser.new_page(viewport={'width': 1100, 'height': 900})
        after = []      # the kernel's work once the cell is done (widget.after_cell), while the page draws
        frame = open_widget(page, w, displayed=True, meanwhile=lambda: after.append(timed_call(w._made_by_ready)))
        frame.wait_for_function(PAINTED)
        parts['after the cell'].append(after[0])
        marks = frame.evaluate(MOMENTS)
        t_render = page.evaluate('harness.t0')
        for name in FRONT:
            if marks.get(name) is not None:
                front[name].append(marks[name] - t_render)
        kernel.append(k)
        first.append(k + marks['painted'] - t_render)
        change += view_changes(frame)
        page.close()
        saved = json.dumps({'output_type': 'display_data', 'data': data, 'metadata': metadata}).encode()
        sizes = (len(saved), len(gzip.compress(saved, 9)), len(data['image/svg+xml']), len(data['text/html']))
    return first, kernel, parts, front, change, sizes


def http_page(browser, reps):
    server = make_server(doc='emma')
    thread = threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
    thread.start()
    out = []
    try:
        for _ in range(reps):
            server.api.views.clear()        # the same views are new again (the widget's are new too)
            page = browser.new_page(viewport={'width': 1100, 'height': 900})
            page.goto(server.link())
            page.wait_for_function('() => window.explorer && explorer.view && document.querySelector("#graph svg g.node")')
            out += view_changes(page)
            page.close()
    finally:
        server.shutdown()
        server.server_close()
    return out


def jupyterlab(browser, reps):
    from tests.jupyterlab_helpers import notebook_file, open_notebook, run_cell, running_jupyterlab
    first, change = [], []
    with tempfile.TemporaryDirectory() as root, running_jupyterlab(root) as base:
        notebook_file(f'{root}/bench.ipynb', ['from graphviz_export import explorer_widget',
                                              "w = explorer_widget(doc='emma')\nw"])
        page = browser.new_page(viewport={'width': 1400, 'height': 1100})
        open_notebook(page, base, 'bench.ipynb')
        run_cell(page, 0)
        cell = page.locator('.jp-Notebook .jp-Cell').nth(1)
        for _ in range(reps):
            page.evaluate('document.querySelectorAll(".microgpt-explorer iframe").forEach(f => f.dataset.old = 1)')
            cell.locator('.cm-content').click()
            t0 = page.evaluate('performance.timeOrigin + performance.now()')
            page.keyboard.press('Control+Enter')
            frame = page.wait_for_selector('.microgpt-explorer iframe:not([data-old])', timeout=60000).content_frame()
            frame.wait_for_function(PAINTED, timeout=60000)
            first.append(frame.evaluate(MOMENTS)['painted'] - t0)
            change += view_changes(frame)
        page.close()
    return first, change


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--frontend', choices=('harness', 'jupyterlab', 'both'), default='harness')
    args = ap.parse_args()
    med = lambda xs: f'{statistics.median(xs):.0f} ms' if xs else '-'    # noqa: E731
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            if args.frontend in ('harness', 'both'):
                first, kernel, parts, front, change, sizes = harness(browser, args.reps)
                page = http_page(browser, args.reps)
                print(f"harness: first view {med(first)} (kernel {med(kernel)} + front end {med(front['painted'])}); "
                      f"view change {med(change)} in the widget, {med(page)} on the HTTP page")
                print('  kernel: ' + ', '.join(f'{name} {med(xs)}' for name, xs in parts.items()
                                               if name != 'after the cell') +
                      f"; once the cell is done, while the page draws: {med(parts['after the cell'])}")
                print('  front end, since render(): ' + ', '.join(f'{name} +{med(front[name])}' for name in FRONT))
                print(f"static copy: {sizes[0] / 1000:.1f} kB as saved, {sizes[1] / 1000:.1f} kB gzip-compressed "
                      f"(SVG {sizes[2] / 1000:.1f} kB, HTML with the packed stepper {sizes[3] / 1000:.1f} kB)")
            if args.frontend in ('jupyterlab', 'both'):
                first, change = jupyterlab(browser, args.reps)
                print(f"jupyterlab: first view {med(first)} (Ctrl+Enter -> painted); view change {med(change)}")
        finally:
            browser.close()


if __name__ == '__main__':
    main()
