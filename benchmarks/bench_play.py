"""Play-training benchmark (issue 26): drives the page in a real browser; prints figures, asserts nothing.

    python benchmarks/bench_play.py [--steps 30] [--doc emma] [--rss-steps 300]

  steps/s shown   ▶ in the page on the token view of --doc (block level, the page's default),
                  --steps optimizer steps of the reference run: steps shown on screen per second,
                  from the click to the last step drawn ('explorer:played' events, timed in the page);
                  once with the reference's document order (each step trains one name, then
                  records --doc: two forward+backward passes, one in a training process) and once
                  training on --doc itself
                  (tdoc: the recording is the step's backward, one pass)
  per step        median and max time between two shown steps, and the server's CPU time a step
                  (its process time: what a step costs on a core of its own, whatever the load);
                  in the reference's order the training runs a step ahead in a child process
                  (recording.ahead), whose CPU a step is printed beside it
  frame gaps      the longest gap between animation frames while playing (target <= 200 ms)
  layouts         Graphviz layouts the server made while playing (target: 0 after the run's first)
  RSS             the server-side Play alone (no browser): resident memory every 50 of --rss-steps
                  steps, recording --doc after each (flat: one Trace kept, the run's state every
                  50 steps)
The machine's load average is printed first: the figures are this shared machine's at that load.
Needs the names data ($MICROGPT_DATA).
"""

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from graphviz_export.web.explorer import make_server  # noqa: E402
from microgpt.recording.play import Play  # noqa: E402
from microgpt.recording.session import training_docs  # noqa: E402

ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--no-first-run']
PROBE = """
window.__played = [];
document.addEventListener('explorer:played', (e) => window.__played.push([e.detail.step, performance.now()]));
window.__gap = 0; window.__watch = false;
let __last = performance.now();
(function tick(t) { if (window.__watch) window.__gap = Math.max(window.__gap, t - __last); __last = t;
  requestAnimationFrame(tick); })(__last);
"""


def rss_mb(pid='self'):
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
    return float('nan')


def play_in_page(browser, server, doc, steps, tdoc):
    ctx = browser.new_context(viewport={'width': 1366, 'height': 768}, bypass_csp=True)
    ctx.add_init_script(PROBE)
    pg = ctx.new_page()
    query = f'doc={doc}&view=token&train=0' + (f'&tdoc={tdoc}' if tdoc else '')
    pg.goto(server.link(query))
    pg.wait_for_function('window.explorer && window.explorer.view && window.explorer.view.live', timeout=120_000)
    layouts = server.api.layouts
    cpu0 = time.process_time()      # the server runs in this process: its CPU time, whatever the load
    ahead0 = {pid: child_cpu(pid) for pid in _ahead_pids(server)}
    pg.fill('#playn', str(steps))
    pg.evaluate('window.__watch = true; window.__t0 = performance.now()')
    pg.click('#playbtn')
    pg.wait_for_function(f'window.__played.length && window.__played[window.__played.length - 1][0] === {steps}',
                         timeout=steps * 20_000)
    played, t0, gap = pg.evaluate('[window.__played, window.__t0, window.__gap]')
    cpu = (time.process_time() - cpu0) / steps
    ahead = sum(child_cpu(pid) - ahead0.get(pid, 0) for pid in _ahead_pids(server)) / steps
    ctx.close()
    times = [t for _, t in played]
    between = [b - a for a, b in zip(times, times[1:])]
    return {'rate': len(played) / ((times[-1] - t0) / 1000), 'median': statistics.median(between),
            'max': max(between), 'gap': gap, 'layouts': server.api.layouts - layouts, 'cpu': cpu, 'ahead': ahead}


def _ahead_pids(server):
    """The played runs' training processes (recording.ahead: the reference order's training)."""
    runs = [play for play, _ in server.api.plays._runs.values()]
    return [p._ahead.process.pid for p in runs if getattr(p, '_ahead', None) is not None]


def child_cpu(pid):
    """A live child's CPU seconds so far (its utime + stime in /proc)."""
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--steps', type=int, default=30)
    ap.add_argument('--doc', default='emma')
    ap.add_argument('--rss-steps', type=int, default=300)
    a = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} "
          f"on {os.cpu_count()} cores")
    server = make_server(doc=a.doc)
    thread = threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
    thread.start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path='/usr/bin/chromium', args=ARGS)
            for label, tdoc in (('reference order', None), (f"trained on '{a.doc}'", a.doc)):
                r = play_in_page(browser, server, a.doc, a.steps, tdoc)
                print(f"{label:>20}: {r['rate']:.2f} steps/s shown over {a.steps} steps; between steps "
                      f"median {r['median']:.0f} ms, max {r['max']:.0f} ms; longest frame gap {r['gap']:.0f} ms; "
                      f"layouts while playing {r['layouts']}; server CPU {r['cpu'] * 1000:.0f} ms a step "
                      f"(= {1 / r['cpu']:.1f} steps/s on a free core)"
                      + (f" + its training process {r['ahead'] * 1000:.0f} ms a step (on the other core)"
                         if r['ahead'] else ''))
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    if a.rss_steps:
        play = Play(training_docs(None), a.doc)
        play.trace()
        marks = [(0, rss_mb())]
        t0 = time.perf_counter()
        for k in range(1, a.rss_steps + 1):
            play.advance()
            if k % 50 == 0:
                marks.append((k, rss_mb()))
                if play._ahead is not None:
                    marks[-1] = (k, marks[-1][1], rss_mb(play._ahead.process.pid))
        print(f"RSS over {a.rss_steps} played steps ({(time.perf_counter() - t0) / a.rss_steps * 1000:.0f} ms a "
              f"step, recording '{a.doc}' each): " + ', '.join(f'{k}: {m[0]:.0f} MB' + (f' (+ training process {m[1]:.0f} MB)'
                                                                     if m[1:] else '') for k, *m in marks))
        play.close()


if __name__ == '__main__':
    main()
