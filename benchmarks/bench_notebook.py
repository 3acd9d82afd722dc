"""Notebook widget benchmark: the explorer in a cell; prints figures, asserts nothing.

    python -m benchmarks.bench_notebook [--reps 5] [--frontend harness|jupyterlab|both]

Figures (medians over --reps):
  first view    the cell `w = explorer_widget(doc='emma'); w` runs -> the first view drawn in the cell.
                harness: the kernel's part timed in Python (record 'emma', draw the first view, the
                output's static copy: explorer_widget + _repr_mimebundle_) plus the front end's part
                timed in the page (anywidget's render() -> the view drawn, every request answered by
                the Python widget through tests/notebook_harness.py; no comm, no websocket).
                jupyterlab (when installed): Shift+Enter -> the view drawn in the cell, wall clock, in
                a real JupyterLab with its kernel (imports done by an earlier cell)
  view change   explorer.setState(...) -> the new view drawn, for views not seen before (positions
                0..3 at vector level), timed in the page: in the widget, and on the HTTP page of
                `microgpt-graph explore` (a server in this process) in the same browser
  static copy   the bytes of the cell's output as saved (all its formats), and gzip-compressed
Target (issue 27): first view <= 1 s; a view change as fast as the page's; static copy <= 50 kB compressed.
"""

import argparse
import gzip
import json
import statistics
import tempfile
import threading
import time

from playwright.sync_api import sync_playwright

from graphviz_export import explorer_widget
from graphviz_export.web.explorer import make_server
from tests.notebook_harness import open_widget

CHROMIUM = '/usr/bin/chromium'
ARGS = ['--no-sandbox', '--disable-gpu']
VIEWS = [{'token': t, 'level': 'vector'} for t in range(4)]
DRAWN = ('() => { if (window.explorer && explorer.view && document.querySelector("#graph svg g.node")) '
         '{ return window.__drawn = window.__drawn || performance.timeOrigin + performance.now(); } }')


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
    first, kernel, front, change, sizes = [], [], [], [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        w = explorer_widget(doc='emma')
        data, metadata = w._repr_mimebundle_()
        k = time.perf_counter() - t0
        page = browser.new_page(viewport={'width': 1100, 'height': 900})
        frame = open_widget(page, w)
        f = (frame.wait_for_function(DRAWN, polling='raf').json_value() - page.evaluate('harness.t0')) / 1000
        kernel.append(k * 1000)
        front.append(f * 1000)
        first.append((k + f) * 1000)
        change += view_changes(frame)
        page.close()
        saved = json.dumps({'output_type': 'display_data', 'data': data, 'metadata': metadata}).encode()
        sizes = (len(saved), len(gzip.compress(saved, 9)), len(data['image/svg+xml']), len(data['text/html']))
    return first, kernel, front, change, sizes


def http_page(browser, reps):
    server = make_server(doc='emma')
    thread = threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
    thread.start()
    out = []
    try:
        for _ in range(reps):
            server.api._views.clear()        # the same views are new again (the widget's are new too)
            page = browser.new_page(viewport={'width': 1100, 'height': 900})
            page.goto(server.link())
            page.wait_for_function(DRAWN, polling='raf')
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
            t0 = time.perf_counter()
            page.keyboard.press('Control+Enter')
            frame = page.wait_for_selector('.microgpt-explorer iframe:not([data-old])', timeout=60000).content_frame()
            frame.wait_for_function(DRAWN, polling='raf', timeout=60000)
            first.append((time.perf_counter() - t0) * 1000)
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
                first, kernel, front, change, sizes = harness(browser, args.reps)
                page = http_page(browser, args.reps)
                print(f"harness: first view {med(first)} (kernel {med(kernel)} + front end {med(front)}); "
                      f"view change {med(change)} in the widget, {med(page)} on the HTTP page")
                print(f"static copy: {sizes[0] / 1000:.1f} kB as saved, {sizes[1] / 1000:.1f} kB gzip-compressed "
                      f"(SVG {sizes[2] / 1000:.1f} kB, HTML with the packed stepper {sizes[3] / 1000:.1f} kB)")
            if args.frontend in ('jupyterlab', 'both'):
                first, change = jupyterlab(browser, args.reps)
                print(f"jupyterlab: first view {med(first)} (Ctrl+Enter -> drawn); view change {med(change)}")
        finally:
            browser.close()


if __name__ == '__main__':
    main()
