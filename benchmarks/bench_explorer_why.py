""""Why is this grad what it is" benchmark (issue 24): prints figures (medians over --reps), asserts nothing.

    python benchmarks/bench_explorer_why.py [--reps 5] [--doc emma] [--fault exp-x2]

  record             record_step of the doc, plain, and with lines=True (the chains "made by"
                     reads, captured as the explorer records), and the replay a loaded trace needs
                     instead (madeby.replay_chains)
  node check         microgpt.checks.diagnose.node_check_data on the step recorded under --fault
  paths              decompose (top 5 + remainder) of every parameter cell, per cell
  identities         identities(trace): every badge of the step, once per trace
  page: marked       a fresh server under --fault (its check started at recording, as `explore
                     --inject` does) and a fresh tab of Debian's chromium: navigation start -> the
                     first view drawn, and -> the first failing node marked red (performance.now())
Target (issue 24): the failing node marked within 2 s of the page being drawn.
"""

import argparse
import statistics
import threading
import time

from microgpt.checks.diagnose import node_check_data
from microgpt.checks.faults import inject
from microgpt.recording import record_step
from microgpt.recording.identities import identities
from microgpt.recording.madeby import replay_chains
from microgpt.recording.paths import decompose
from microgpt.train import fresh_model

CHROMIUM = '/usr/bin/chromium'
ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run']


def timed(f, reps):
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def page_marks(doc, fault, reps):
    """(median ms to the first view, median ms to the first failing node marked) in a fresh tab."""
    from playwright.sync_api import sync_playwright

    from graphviz_export.web.explorer import make_server
    drawn, marked = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for _ in range(reps):
                with inject(fault):
                    server = make_server(doc=doc, check=node_check_data)
                    th = threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
                    th.start()
                    try:
                        ctx = browser.new_context(viewport={'width': 1024, 'height': 768}, bypass_csp=True)
                        pg = ctx.new_page()
                        pg.add_init_script("""
                            document.addEventListener('explorer:view', () => { window.__drawn ??= performance.now(); });
                            new MutationObserver(() => {
                              if (!window.__marked && document.querySelector('#graph g.node.failing'))
                                window.__marked = performance.now();
                            }).observe(document, {subtree: true, attributes: true, childList: true});""")
                        pg.goto(server.link(''))
                        pg.wait_for_function('window.__drawn && window.__marked', timeout=60000)
                        drawn.append(pg.evaluate('window.__drawn'))
                        marked.append(pg.evaluate('window.__marked'))
                        ctx.close()
                    finally:
                        server.shutdown()
                        server.server_close()
                        th.join(5)
        finally:
            browser.close()
    return statistics.median(drawn), statistics.median(marked), statistics.median(m - d for d, m in zip(drawn, marked))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--doc', default='emma')
    ap.add_argument('--fault', default='exp-x2')
    a = ap.parse_args()
    model = fresh_model(42)
    plain = timed(lambda: record_step(*model, a.doc), a.reps)
    lines = timed(lambda: record_step(*model, a.doc, lines=True), a.reps)
    trace = record_step(*model, a.doc)
    replay = timed(lambda: replay_chains(trace), a.reps)
    print(f"record {a.doc}: {plain * 1000:.0f} ms plain, {lines * 1000:.0f} ms with lines=True "
          f"(+{(lines / plain - 1) * 100:.0f}%); replay of a loaded trace {replay * 1000:.0f} ms")
    with inject(a.fault):
        bent = record_step(*model, a.doc)
    check = timed(lambda: node_check_data(bent), a.reps)
    print(f"node check under {a.fault}: {check * 1000:.0f} ms")
    cells = [i for n in trace.param_names for i in trace.param_nodes(n)]
    t0 = time.perf_counter()
    for i in cells:
        decompose(trace, i)
    t = time.perf_counter() - t0
    print(f"paths: decompose of {len(cells)} cells {t:.2f} s ({t / len(cells) * 1e6:.0f} us per cell, "
          f"the first builds the per-trace tables)")
    def fresh_identities():
        trace._cache.pop('identities', None)
        identities(trace)
    print(f"identities: {timed(fresh_identities, a.reps) * 1000:.0f} ms for {len(identities(trace))} badges")
    drawn, marked, gap = page_marks(a.doc, a.fault, a.reps)
    print(f"page under {a.fault}: first view drawn {drawn:.0f} ms, first failing node marked {marked:.0f} ms "
          f"after navigation start; marked {gap:.0f} ms after the view (target <= 2000 ms)")


if __name__ == '__main__':
    main()
